"""Public Rasa 3.x projects load and validate as Rasa 3.6 takes them, read in place from the
corpus in CROWDDESK_RASA_PROJECTS (by default `../shared/rasa_projects` next to the repository);
plus the story syntax the corpus lacks (`or:`, checkpoints), in small projects of their own."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.credentials import load_credentials
from crowddesk.bot.project.domain import load_domain
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.story_graph import linear_stories
from crowddesk.bot.project.story_steps import (
    ActionStep,
    BotStep,
    CheckpointStep,
    OrStep,
    SlotStep,
    StepEntity,
    UserStep,
)
from crowddesk.bot.project.training_data import load_test_stories, load_training_data
from crowddesk.bot.project.validation import Problem, validate_project
from crowddesk.bot.project.yaml_files import ProjectFileError
from tests.rasa_corpus import PROJECTS
from tests.test_project_loading import line_of, write


def errors(problems: list[Problem]) -> list[str]:
    return [str(problem) for problem in problems if problem.severity == "error"]


def warnings_at(problems: list[Problem], path: str, key: str) -> list[str]:
    return [p.message for p in problems if p.severity == "warning" and p.path == path and p.key == key]


@pytest.mark.parametrize("name", PROJECTS)
def test_every_project_validates_and_loads(corpus: Path, name: str) -> None:
    assert errors(validate_project(corpus / name)) == []
    # `train` and `run` read the project with load_project: it must take what validation accepts.
    load_project(corpus / name, environ={})


def test_data_validate_exits_zero(corpus: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crowddesk.bot.cli", "data", "validate", "--project", str(corpus / "concertbot")],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s)" in result.stdout
    assert "Project files are valid." in result.stdout


@pytest.mark.parametrize(
    ("name", "path", "key", "expected"),
    [
        (
            "concertbot",
            "config.yml",
            "pipeline[0].name",
            (
                "'WhitespaceTokenizer' is a Rasa NLU component; ignored with its options: CrowdDesk understands "
                "messages with its own NLU pipeline"
            ),
        ),
        (
            "concertbot",
            "config.yml",
            "policies[2].name",
            (
                "'RulePolicy' is a Rasa policy; its options are ignored: CrowdDesk runs the project's rules, "
                "stories and forms with its own dialogue policies (rules as RulePolicy"
            ),
        ),
        (
            "carbon-bot",
            "config.yml",
            "policies[2].name",
            "'rasa_plus.llm.llm_policy.LLMPolicy' is a custom Rasa policy; its options are ignored",
        ),
        (
            "envirocar",
            "data/nlu/nlu.yml",
            "nlu.overall_cancel_command",
            "intent 'overall_cancel_command' has examples but is not declared under `intents:` in the domain",
        ),
        (
            "carbon-bot",
            "data/nlu.yml",
            "nlu.why",
            (
                "example 'why?' is also an example of intent 'inquire-ask_clarification' (data/nlu.yml:1432); "
                "it is trained as an example of both"
            ),
        ),
        (
            "carbon-bot",
            "domain.yml",
            "slots.travel_departure.mappings[4].entity",
            "ignored: a from_text mapping does not use it",
        ),
        (
            "rules",
            "data",
            "nlu",
            "examples for 0 intent(s), fewer than 2: `crowddesk train` builds a model without an intent classifier",
        ),
    ],
)
def test_what_rasa_accepts_but_crowddesk_ignores_is_a_warning(
    corpus: Path, name: str, path: str, key: str, expected: str
) -> None:
    found = warnings_at(validate_project(corpus / name), path, key)
    assert any(message.startswith(expected) for message in found), found


def test_end_to_end_user_text_steps(corpus: Path) -> None:
    root = corpus / "e2ebot"
    data = load_training_data([root / "data/stories.yml"], root=root)
    assert data.stories[2].steps[4:] == (
        UserStep(None, "I can always go for sushi"),
        ActionStep("utter_search_restaurants"),
    )
    stories, warnings = load_test_stories(root / "tests/test_stories.yaml", root=root)
    assert (len(stories), warnings) == (4, [])
    assert stories[0].steps[:2] == (UserStep("greet", "hi"), ActionStep("utter_greet"))
    assert stories[0].steps[0].source == "tests/test_stories.yaml:5"


def test_slot_mappings_with_form_conditions_and_the_implicit_requested_slot(corpus: Path) -> None:
    domain = load_domain(corpus / "envirocar/domain.yml")
    mapping = domain.slots["car_number"].mappings[0]
    assert (mapping.type, mapping.entity) == ("from_entity", "car_selection_number")
    assert mapping.conditions == [{"active_loop": "car_selection_form", "requested_slot": "car_number"}]
    requested = domain.slots["requested_slot"]
    assert (requested.type, requested.influence_conversation, requested.mappings) == ("text", False, [])


def test_from_entity_mapping_with_a_role(corpus: Path) -> None:
    mapping = load_domain(corpus / "carbon-bot/domain.yml").slots["travel_departure"].mappings[0]
    assert mapping.as_rasa() == {
        "type": "from_entity",
        "entity": "city",
        "role": "from",
        "conditions": [{"active_loop": "airtravel_form"}],
    }


def test_story_steps_with_entities(corpus: Path) -> None:
    root = corpus / "pokedex"
    stories = load_training_data([root / "data/stories.yml"], root=root).stories
    steps = {step for story in stories for step in story.steps}
    assert UserStep("confirm_exists", entities=(StepEntity("pokemon_name", "charmander"),)) in steps
    assert SlotStep("pokemon_name", "charmander") in steps


ENTITY_FORMS = """
    stories:
      - story: every way to give entities
        steps:
          - intent: book
            entities:
              - city
              - city: Berlin
              - city: Paris
                role: to
                group: trip
              - entity: iata
                value: TXL
                role: from
          - user: "fly me to [Rome]{\\"entity\\": \\"city\\", \\"role\\": \\"to\\"} from [here](city:Berlin)"
          - bot: Where from?
          - slot_was_set:
              - cities: [Rome, Berlin]
              - city: null
              - airline
"""


def test_every_rasa_form_of_step_entities(tmp_path: Path) -> None:
    path = write(tmp_path, "data/stories.yml", ENTITY_FORMS)
    book, fly, ask, *slots = load_training_data([path], root=tmp_path).stories[0].steps
    assert book == UserStep(
        "book",
        entities=(
            StepEntity("city"),
            StepEntity("city", "Berlin"),
            StepEntity("city", "Paris", "to", "trip"),
            StepEntity("iata", "TXL", "from"),
        ),
    )
    assert fly == UserStep(
        None,
        "fly me to Rome from here",
        (StepEntity("city", "Rome", "to"), StepEntity("city", "Berlin")),
    )
    assert ask == BotStep("Where from?")
    assert slots == [
        SlotStep("cities", ("Rome", "Berlin")),
        SlotStep("city", None),
        SlotStep("airline", any_value=True),
    ]
    assert len({book, fly, ask, *slots}) == 6  # steps are hashable


BRANCHES = """
    stories:
      - story: greet
        steps:
          - or:
              - intent: greet
              - intent: hello
          - action: utter_greet
          - checkpoint: greeted
      - story: then ask
        steps:
          - checkpoint: greeted
          - intent: ask
          - action: utter_answer
          - checkpoint: answered
      - story: then thank
        steps:
          - checkpoint: greeted
          - or:
              - intent: thanks
              - slot_was_set:
                  - happy: true
          - action: utter_welcome
      - story: loop back
        steps:
          - checkpoint: answered
          - intent: more
          - action: utter_more
          - checkpoint: greeted
"""


def test_linear_stories_expand_or_and_join_checkpoints(tmp_path: Path) -> None:
    path = write(tmp_path, "data/stories.yml", BRANCHES)
    stories = load_training_data([path], root=tmp_path).stories
    assert stories[2].steps[1] == OrStep((UserStep("thanks"), SlotStep("happy", True)))
    assert stories[0].steps[2] == CheckpointStep("greeted")
    linear = linear_stories(stories)
    assert linear.warnings == []
    paths = {(story.name, tuple(story.steps)) for story in linear.stories}
    greet, hello = UserStep("greet"), UserStep("hello")
    opened, ask = ActionStep("utter_greet"), (UserStep("ask"), ActionStep("utter_answer"))
    more = (UserStep("more"), ActionStep("utter_more"))
    thank = (UserStep("thanks"), ActionStep("utter_welcome"))
    happy = (SlotStep("happy", True), ActionStep("utter_welcome"))
    expected = set()
    for first in (greet, hello):
        for answer in (thank, happy):
            expected |= {
                ("greet > then thank", (first, opened, *answer)),
                # `loop back` returns to `greeted`, whose `then ask` part is not entered twice.
                ("greet > then ask > loop back > then thank", (first, opened, *ask, *more, *answer)),
            }
    assert paths == expected


def test_checkpoints_that_join_nothing_are_warnings(tmp_path: Path) -> None:
    text = """
        stories:
          - story: dangling
            steps:
              - intent: greet
              - action: utter_greet
              - checkpoint: nowhere
          - story: unreachable
            steps:
              - checkpoint: never_ended
              - intent: bye
              - action: utter_bye
        """
    path = write(tmp_path, "data/stories.yml", text)
    linear = linear_stories(load_training_data([path], root=tmp_path).stories)
    assert [story.steps for story in linear.stories] == [(UserStep("greet"), ActionStep("utter_greet"))]
    assert [(str(w.path), w.line, w.message) for w in linear.warnings] == [
        (
            "data/stories.yml",
            line_of(path, "nowhere"),
            "checkpoint 'nowhere' is used but no story starts with it; the story ends here",
        ),
        (
            "data/stories.yml",
            line_of(path, "never_ended"),
            "checkpoint 'never_ended' is never reached: no story ends with it",
        ),
    ]


SMALL_DOMAIN = """
    version: "3.1"
    recipe: default.v1
    language: en
    config:
      store_entities_as_slots: false
    intents: [greet, bye]
    slots:
      happy:
        type: bool
        mappings:
          - type: custom
    responses:
      utter_greet:
        - text: Hi!
    forms:
      q_form:
        required_slots: [happy]
"""
SMALL_NLU = """
    nlu:
      - intent: greet
        examples: |
          - hi
      - intent: bye
        examples: |
          - bye
"""


def test_unknown_names_in_every_step_kind_are_errors(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", SMALL_DOMAIN)
    write(tmp_path, "data/nlu.yml", SMALL_NLU)
    stories = write(
        tmp_path,
        "data/stories.yml",
        """
        stories:
          - story: typos
            steps:
              - or:
                  - intent: greet
                  - intent: gret
              - action: utter_greet
              - checkpoint: later
                slot_was_set:
                  - hapy: true
          - story: later
            steps:
              - checkpoint: later
              - active_loop: q_frm
              - slot_was_set:
                  - requested_slot: happy
              - action: utter_bye
        """,
    )
    problems = [p for p in validate_project(tmp_path) if p.severity == "error"]
    assert [(p.line, p.key, p.message) for p in problems] == [
        (line_of(stories, "gret"), "stories.typos", "unknown intent 'gret' (not in the domain nor in the NLU data)"),
        (line_of(stories, "hapy") - 2, "stories.typos", "unknown slot 'hapy'"),
        (line_of(stories, "q_frm"), "stories.later", "unknown form 'q_frm'"),
        (line_of(stories, "utter_bye"), "stories.later", "no response named 'utter_bye' in the domain"),
    ]


def test_rasa_settings_and_channels_crowddesk_lacks_are_warnings(tmp_path: Path) -> None:
    domain = write(tmp_path, "domain.yml", SMALL_DOMAIN)
    write(tmp_path, "data/nlu.yml", SMALL_NLU)
    credentials = write(
        tmp_path,
        "credentials.yml",
        """
        rest:
        socketio:
          user_message_evt: user_uttered
        rasa:
          url: "http://localhost:5002/api"
        """,
    )
    problems = validate_project(tmp_path)
    assert errors(problems) == []
    found = {(p.path, p.line, p.key): p.message for p in problems if p.path in ("domain.yml", "credentials.yml")}
    assert found[("domain.yml", line_of(domain, "recipe"), "recipe")] == "belongs in config.yml; ignored in the domain"
    assert found[("domain.yml", line_of(domain, "store_entities"), "config.store_entities_as_slots")].startswith(
        "ignored: slots are filled only through their `mappings`"
    )
    for channel in ("socketio", "rasa"):
        message = found[("credentials.yml", line_of(credentials, f"{channel}:"), channel)]
        assert message.startswith(f"unknown channel {channel!r}; known channels: ")
        assert message.endswith("; this channel is ignored")
    assert list(load_credentials(credentials, root=tmp_path).blocks) == ["rest"]


def test_memoization_max_history_is_read_and_checked(tmp_path: Path) -> None:
    path = write(tmp_path, "config.yml", "policies:\n- name: RulePolicy\n- name: MemoizationPolicy\n  max_history: 3\n")
    assert load_config(path).story_max_history == 3
    write(tmp_path, "config.yml", "policies:\n- name: MemoizationPolicy\n  max_history: many\n")
    with pytest.raises(ProjectFileError, match=r"config.yml:3: policies\[0\].max_history"):
        load_config(path)


def test_rules_in_a_test_file_are_skipped_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tests/test_stories.yml",
        """\
        stories:
        - story: hi
          steps:
          - intent: greet
          - action: utter_greet
        rules:
        - rule: bye
          steps:
          - intent: goodbye
          - action: utter_goodbye
        """,
    )
    stories, warnings = load_test_stories(path, root=tmp_path)
    assert [story.name for story in stories] == ["hi"]
    assert [(w.key, w.message) for w in warnings] == [("rules", "ignored: a test file's rules are not run as tests")]
