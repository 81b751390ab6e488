"""`evaluate conversations --core` checks stories as `rasa test core` does: the story's own steps
are replayed, only its actions predicted."""

from __future__ import annotations

from pathlib import Path

from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.evaluation.story_replay import replay_stories
from crowddesk.bot.project.domain import load_domain
from crowddesk.bot.project.story_steps import StepEntity
from crowddesk.bot.project.training_data import load_test_stories, load_training_data
from tests.test_forms import DOMAIN, RULES
from tests.test_project_loading import write

SHORTHAND_STORY = """\
stories:
- story: balance, the form's turns left out as Rasa's test stories often do
  steps:
  - intent: ask_balance
  - action: verify_form
  - active_loop: verify_form
  - active_loop: null
  - action: utter_balance
- story: greeted by text
  steps:
  - user: hello there
  - action: utter_greet
- story: chitchat inside the form, answered by its rule
  steps:
  - intent: ask_balance
  - action: verify_form
  - active_loop: verify_form
  - intent: chitchat
  - action: utter_chitchat
  - action: verify_form
  - active_loop: verify_form
- story: the bot must not answer twice
  steps:
  - intent: greet
  - action: utter_greet
  - action: utter_balance
"""


def never_read(text: str) -> tuple[str, str, tuple[StepEntity, ...]]:
    return ("greet", text, ()) if text == "hello there" else ("nlu_fallback", text, ())


def test_a_story_is_replayed_and_only_its_actions_predicted(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/rules.yml", RULES)
    write(tmp_path, "tests/test_stories.yml", SHORTHAND_STORY)
    domain = load_domain(tmp_path / "domain.yml")
    data = load_training_data([tmp_path / "data/rules.yml"], root=tmp_path)
    stories, _ = load_test_stories(tmp_path / "tests/test_stories.yml", root=tmp_path)
    results = replay_stories(DialoguePolicies.train(domain, [], data.rules), domain, stories, never_read)
    # Inside the form, chitchat: the form is taken to refuse it, as Rasa's test does, and the rule answers.
    assert [(r.correct_actions, r.actions) for r in results] == [(2, 2), (1, 1), (3, 3), (1, 2)]
    assert [r.failure is None for r in results] == [True, True, True, False]
    failure = results[3].failure
    assert failure is not None
    assert (failure.expected, failure.actual) == ("action utter_balance", "action action_listen")
