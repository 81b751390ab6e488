"""The dialogue policies follow stories and rules as Rasa 3.6 does: on the corpus projects' own
stories (`rasa test core`: the story's intents given, every action predicted) and on small rule
sets that pin RulePolicy's semantics one at a time."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.dialogue.policies.problems import rule_conflicts
from crowddesk.bot.dialogue.policies.training_events import story_events
from crowddesk.bot.dialogue.tracker import DialogueTracker, Event, applied_events, slot_features
from crowddesk.bot.project.domain import Domain, load_domain
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.story_graph import linear_stories
from crowddesk.bot.project.training_data import Story, load_test_stories, load_training_data
from crowddesk.bot.project.validation import validate_project
from tests.rasa_corpus import RASA_STORIES_PASSED, RASA_TEST_STORIES_PASSED
from tests.test_project_loading import write

NLU = """\
nlu:
- intent: goodbye
  examples: |
    - bye
    - see you
- intent: greet
  examples: |
    - hi
    - hello
"""

DOMAIN = """\
version: "3.1"
intents: [greet, goodbye, affirm, deny, ask_balance, inform, chitchat, restart]
entities: [account]
slots:
  account:
    type: text
    mappings:
    - type: from_entity
      entity: account
  verified:
    type: bool
    mappings:
    - type: custom
forms:
  verify_form:
    required_slots: [account]
responses:
  utter_greet: [{text: hi}]
  utter_goodbye: [{text: bye}]
  utter_welcome_back: [{text: welcome back}]
  utter_balance: [{text: your balance}]
  utter_verify_first: [{text: verify first}]
  utter_chitchat: [{text: chitchat}]
  utter_ask_account: [{text: which account?}]
  utter_anything_else: [{text: anything else?}]
actions: [action_check_balance]
"""


def project_policies(tmp_path: Path, rules: str, stories: str = "") -> tuple[Domain, DialoguePolicies]:
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/rules.yml", rules)
    files = [tmp_path / "data/rules.yml"]
    if stories:
        write(tmp_path, "data/stories.yml", stories)
        files.append(tmp_path / "data/stories.yml")
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data(files, root=tmp_path)
    return domain, DialoguePolicies.train(domain, data.stories, data.rules)


def user(intent: str, **entities: str) -> list[Event]:
    listed = [{"entity": name, "value": value} for name, value in entities.items()]
    return [
        {"event": "action", "name": "action_listen"},
        {"event": "user", "text": f"/{intent}", "parse_data": {"intent": {"name": intent}, "entities": listed}},
    ]


def start() -> list[Event]:
    return [{"event": "action", "name": "action_session_start"}, {"event": "session_started"}]


def action(name: str) -> Event:
    return {"event": "action", "name": name}


def next_action(policies: DialoguePolicies, events: list[Event]) -> str | None:
    chosen = policies.predict(events)
    return None if chosen is None else chosen.action


def passed_stories(policies: DialoguePolicies, domain: Domain, stories: list[Story]) -> tuple[int, int]:
    """`rasa test core`: replay each story, predicting every action before it happens."""
    passed = 0
    for story in linear_stories(stories).stories:
        events = story_events(domain, story.steps)
        predictions = [
            next_action(policies, events[:index]) == (event.get("name") or event.get("action_text"))
            for index, event in enumerate(events)
            if index and event["event"] == "action"
        ]
        passed += all(predictions)
    return passed, len(linear_stories(stories).stories)


@pytest.mark.parametrize("name", sorted(RASA_STORIES_PASSED))
def test_corpus_stories_pass_as_often_as_with_rasa(corpus: Path, name: str) -> None:
    project = load_project(corpus / name, environ={})
    policies = DialoguePolicies.train(
        project.domain, project.data.stories, project.data.rules, max_history=project.config.story_max_history
    )
    passed, total = passed_stories(policies, project.domain, project.data.stories)
    rasa_passed, rasa_total = RASA_STORIES_PASSED[name]
    assert total == rasa_total
    assert passed >= rasa_passed


@pytest.mark.parametrize("name", sorted(RASA_TEST_STORIES_PASSED))
def test_corpus_test_stories_pass_as_often_as_with_rasa(corpus: Path, name: str) -> None:
    project = load_project(corpus / name, environ={})
    policies = DialoguePolicies.train(
        project.domain, project.data.stories, project.data.rules, max_history=project.config.story_max_history
    )
    tests, _ = load_test_stories(next((corpus / name / "tests").glob("test_stories.*")), root=corpus / name)
    passed, total = passed_stories(policies, project.domain, tests)
    assert (total, passed >= RASA_TEST_STORIES_PASSED[name][0]) == (RASA_TEST_STORIES_PASSED[name][1], True)


def test_a_rule_applies_anywhere_in_the_conversation(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path, "rules:\n- rule: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    )
    later = [*start(), *user("goodbye"), action("utter_goodbye"), *user("greet")]
    assert next_action(policies, later) == "utter_greet"
    assert next_action(policies, [*later, action("utter_greet")]) == "action_listen"
    assert next_action(policies, [*start(), *user("deny")]) is None


def test_a_conversation_start_rule_applies_only_at_the_start(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path,
        """\
rules:
- rule: greet first
  conversation_start: true
  steps:
  - intent: greet
  - action: utter_greet
- rule: greet again
  steps:
  - intent: greet
  - action: utter_welcome_back
""",
    )
    assert next_action(policies, [*start(), *user("greet")]) == "utter_greet"
    again = [*start(), *user("greet"), action("utter_greet"), *user("greet")]
    assert next_action(policies, again) == "utter_welcome_back"


def test_slot_conditions_choose_between_rules(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path,
        """\
rules:
- rule: balance when verified
  condition:
  - slot_was_set:
    - verified: true
  steps:
  - intent: ask_balance
  - action: action_check_balance
- rule: balance before verifying
  condition:
  - slot_was_set:
    - verified: null
  steps:
  - intent: ask_balance
  - action: utter_verify_first
""",
    )
    assert next_action(policies, [*start(), *user("ask_balance")]) == "utter_verify_first"
    verified = [*start(), {"event": "slot", "name": "verified", "value": True}, *user("ask_balance")]
    assert next_action(policies, verified) == "action_check_balance"


def test_without_waiting_for_the_user_another_rule_continues(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path,
        """\
rules:
- rule: balance, then more
  steps:
  - intent: ask_balance
  - action: utter_balance
  wait_for_user_input: false
- rule: offer more after the balance
  steps:
  - action: utter_balance
  - action: utter_anything_else
""",
    )
    events = [*start(), *user("ask_balance"), action("utter_balance")]
    assert next_action(policies, events) == "utter_anything_else"


def test_the_most_specific_rule_wins_and_contradictions_are_reported(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path,
        """\
rules:
- rule: any balance
  steps:
  - intent: ask_balance
  - action: utter_verify_first
- rule: balance of a named account
  steps:
  - intent: ask_balance
    entities:
    - account
  - action: action_check_balance
- rule: bye
  steps:
  - intent: goodbye
  - action: utter_goodbye
- rule: bye, said differently
  steps:
  - intent: goodbye
  - action: utter_greet
""",
    )
    assert next_action(policies, [*start(), *user("ask_balance")]) == "utter_verify_first"
    named = [
        *start(),
        *user("ask_balance", account="savings"),
        {"event": "slot", "name": "account", "value": "savings"},
    ]
    assert next_action(policies, named) == "action_check_balance"
    conflicts = [(c.rule.name, c.other, c.actions) for c in policies.rule_conflicts]
    assert conflicts == [("bye, said differently", "rule 'bye'", ("utter_greet", "utter_goodbye"))]
    assert next_action(policies, [*start(), *user("goodbye")]) is None


def test_an_active_form_runs_until_rejected_and_an_interruption_returns_to_it(tmp_path: Path) -> None:
    _, policies = project_policies(
        tmp_path,
        """\
rules:
- rule: activate
  steps:
  - intent: ask_balance
  - action: verify_form
  - active_loop: verify_form
- rule: chitchat inside the form
  condition:
  - active_loop: verify_form
  steps:
  - intent: chitchat
  - action: utter_chitchat
  - action: verify_form
  - active_loop: verify_form
""",
    )
    opened = [*start(), *user("ask_balance")]
    assert next_action(policies, opened) == "verify_form"
    active = [*opened, action("verify_form"), {"event": "active_loop", "name": "verify_form"}]
    assert next_action(policies, active) == "action_listen"
    assert next_action(policies, [*active, *user("inform", account="savings")]) == "verify_form"
    rejected = [*active, *user("chitchat"), {"event": "action_execution_rejected", "name": "verify_form"}]
    assert next_action(policies, rejected) == "utter_chitchat"
    assert next_action(policies, [*rejected, action("utter_chitchat")]) == "verify_form"


def test_a_story_going_on_where_a_rule_listens_drops_that_listen_and_other_clashes_are_reported(
    tmp_path: Path,
) -> None:
    _, policies = project_policies(
        tmp_path,
        "rules:\n- rule: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
        "- rule: bye\n  steps:\n  - intent: goodbye\n  - action: utter_goodbye\n",
        """\
stories:
- story: greet, then offer help
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_anything_else
- story: bye answered otherwise
  steps:
  - intent: goodbye
  - action: utter_greet
""",
    )
    greeted = [*start(), *user("greet"), action("utter_greet")]
    assert next_action(policies, greeted) == "utter_anything_else"
    conflicts = [(c.rule.name, c.other, c.actions) for c in policies.rule_conflicts]
    assert conflicts == [("bye", "story 'bye answered otherwise'", ("utter_goodbye", "utter_greet"))]


def test_a_form_comes_back_after_a_story_told_interruption_without_validating(tmp_path: Path) -> None:
    """Rasa's formbot 'stop, then continue': the story brings the form back, the rules' unhappy
    path says it was interrupted (so the answer to "continue?" isn't validated as a slot), and
    the form that just refused the message is never chosen again for it."""
    _, policies = project_policies(
        tmp_path,
        "rules:\n- rule: activate\n  steps:\n  - intent: ask_balance\n  - action: verify_form\n"
        "  - active_loop: verify_form\n",
        """\
stories:
- story: stop, then continue
  steps:
  - intent: ask_balance
  - action: verify_form
  - active_loop: verify_form
  - intent: deny
  - action: utter_anything_else
  - intent: affirm
  - action: verify_form
  - active_loop: null
""",
    )
    active = [*start(), *user("ask_balance"), action("verify_form"), {"event": "active_loop", "name": "verify_form"}]
    refused = [*active, *user("deny"), {"event": "action_execution_rejected", "name": "verify_form"}]
    assert next_action(policies, refused) == "utter_anything_else"
    resumed = policies.predict([*refused, action("utter_anything_else"), action("action_listen"), *user("affirm")[1:]])
    assert resumed is not None and (resumed.action, resumed.loop_was_interrupted) == ("verify_form", True)
    # Refused again, the form is not the next action whatever the stories remember.
    again = [
        *refused,
        action("utter_anything_else"),
        *user("affirm"),
        {"event": "action_execution_rejected", "name": "verify_form"},
    ]
    chosen = policies.predict(again)
    assert chosen is None or chosen.action != "verify_form"


def test_stories_are_remembered_within_max_history(tmp_path: Path) -> None:
    stories = """\
stories:
- story: balance then bye
  steps:
  - intent: greet
  - action: utter_greet
  - intent: ask_balance
  - action: action_check_balance
  - intent: goodbye
  - action: utter_goodbye
"""
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/stories.yml", stories)
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data([tmp_path / "data/stories.yml"], root=tmp_path)
    unbounded = DialoguePolicies.train(domain, data.stories, [])
    recent = DialoguePolicies.train(domain, data.stories, [], max_history=2)
    # Straight into the middle of the story: only the last two turns are remembered.
    events = [*start(), *user("ask_balance"), action("action_check_balance"), *user("goodbye")]
    assert next_action(unbounded, events) is None
    assert next_action(recent, events) == "utter_goodbye"


def test_a_rule_no_story_shows_does_not_break_a_story(tmp_path: Path) -> None:
    """Rasa hides such a rule's turns from the story-based policies: a greeting answered by a
    rule, then a conversation a story knows, still follows the story."""
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/rules.yml", "rules:\n- rule: greet\n  steps:\n  - intent: greet\n  - action: utter_greet\n")
    write(
        tmp_path,
        "data/stories.yml",
        """\
stories:
- story: balance then bye
  steps:
  - intent: ask_balance
  - action: action_check_balance
  - intent: goodbye
  - action: utter_goodbye
""",
    )
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data([tmp_path / "data/rules.yml", tmp_path / "data/stories.yml"], root=tmp_path)
    policies = DialoguePolicies.train(domain, data.stories, data.rules)
    events = [*start(), *user("greet")]
    for expected in ("utter_greet", "action_listen"):
        chosen = policies.predict(events)
        assert chosen is not None and (chosen.action, chosen.hide_rule_turn) == (expected, True)
        events.append({"event": "action", "name": expected, "hide_rule_turn": True})
    events += user("ask_balance")[1:]
    assert next_action(policies, events) == "action_check_balance"
    events += [action("action_check_balance"), *user("goodbye")]
    assert next_action(policies, events) == "utter_goodbye"
    # Without the hiding, the greeting's turns would not match the story's start.
    shown = [{**event, "hide_rule_turn": False} for event in events]
    assert next_action(policies, shown) is None


def test_replay_applies_rewinds_undos_restarts_and_resets(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    domain = load_domain(tmp_path / "domain.yml")
    events = [
        *start(),
        *user("greet"),
        action("utter_greet"),
        *user("ask_balance", account="savings"),
        {"event": "slot", "name": "account", "value": "savings"},
        {"event": "rewind"},
    ]
    tracker = DialogueTracker.replay(domain, events)
    assert tracker.latest_intent() == "greet"  # the rewound message is gone
    assert [e["event"] for e in applied_events(events)][-1] == "action"
    assert tracker.slots["account"] is None  # with everything that followed it
    assert DialogueTracker.replay(domain, [*events, {"event": "undo"}]).latest_action_name == "action_listen"
    assert DialogueTracker.replay(domain, [*events, {"event": "reset_slots"}]).slots["account"] is None
    assert DialogueTracker.replay(domain, [*events, {"event": "restart"}]).latest_message is None


def test_slots_are_featurized_as_rasa_types_do(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    slots = load_domain(tmp_path / "domain.yml").slots
    assert slot_features(slots["account"], None) == (0.0,)
    assert slot_features(slots["account"], "savings") == (1.0,)
    assert slot_features(slots["verified"], False) == (1.0, 0.0)
    assert slot_features(slots["verified"], None) == (0.0, 0.0)


def test_the_learned_policy_follows_a_conversation_no_story_tells_in_full(tmp_path: Path) -> None:
    """Stories that answer each request the same way, whatever came before: a new order of
    the same requests matches no story, and the learned policy still answers each, with a
    calibrated confidence that holds on the held-out conversations."""
    answers = {"ask_balance": "action_check_balance", "greet": "utter_greet", "goodbye": "utter_goodbye"}
    chance = random.Random(7)

    def story(name: str, intents: list[str]) -> str:
        steps = "".join(f"  - intent: {intent}\n  - action: {answers[intent]}\n" for intent in intents)
        return f"- story: {name}\n  steps:\n{steps}"

    sequences = [[chance.choice(list(answers)) for _ in range(chance.randint(2, 4))] for _ in range(40)]
    trained, held_out = sequences[:24], [s for s in sequences[24:] if s not in sequences[:24]]
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/stories.yml", "stories:\n" + "".join(story(f"s{i}", s) for i, s in enumerate(trained)))
    write(tmp_path, "tests/new.yml", "stories:\n" + "".join(story(f"t{i}", s) for i, s in enumerate(held_out)))
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data([tmp_path / "data/stories.yml"], root=tmp_path)
    tests, _ = load_test_stories(tmp_path / "tests/new.yml", root=tmp_path)

    remembered_only = DialoguePolicies.train(domain, data.stories, [], target_precision=1.1)
    assert remembered_only.learned is not None  # trained, but its bar can't be reached
    learned = DialoguePolicies.train(domain, data.stories, [], target_precision=0.9)
    assert passed_stories(remembered_only, domain, tests)[0] < len(held_out) / 2
    assert passed_stories(learned, domain, tests) == (len(held_out), len(held_out))
    chosen = [
        learned.predict(story_events(domain, t.steps)[:index])
        for t in tests
        for index, event in enumerate(story_events(domain, t.steps))
        if index and event["event"] == "action"
    ]
    claimed = [c.confidence for c in chosen if c is not None and c.policy == "LearnedPolicy"]
    assert claimed and min(claimed) >= 0.9


def test_too_few_stories_train_no_learned_policy(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    write(
        tmp_path, "data/stories.yml", "stories:\n- story: one\n  steps:\n  - intent: greet\n  - action: utter_greet\n"
    )
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data([tmp_path / "data/stories.yml"], root=tmp_path)
    assert DialoguePolicies.train(domain, data.stories, []).learned is None


def test_data_validate_reports_contradicting_rules_at_their_line(tmp_path: Path) -> None:
    project_policies(
        tmp_path,
        "rules:\n- rule: bye\n  steps:\n  - intent: goodbye\n  - action: utter_goodbye\n"
        "- rule: bye again\n  steps:\n  - intent: goodbye\n  - action: utter_greet\n",
    )
    write(tmp_path, "data/nlu.yml", NLU)
    found = [str(p) for p in validate_project(tmp_path, checks=[rule_conflicts]) if p.severity == "error"]
    expected = (
        "data/rules.yml:6: error: rules.bye again: contradicts rule 'bye': where it does 'utter_goodbye', "
        "this rule does 'utter_greet'"
    )
    assert found == [expected]
