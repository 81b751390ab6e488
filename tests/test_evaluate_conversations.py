"""`crowddesk evaluate conversations`: Rasa test stories run through an engine, step by step as
`rasa test` checks them; the demo bot's own stories run end to end."""

from __future__ import annotations

import asyncio
import json
import textwrap
from pathlib import Path
from typing import Any, cast

import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.evaluation.data import load_conversation_tests
from crowddesk.bot.evaluation.story_report import failed_stories_yaml, summary_lines
from crowddesk.bot.evaluation.story_run import StoryResult, StoryRun
from crowddesk.bot.project.domain import Domain, load_domain
from crowddesk.bot.project.training_data import load_test_stories
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.types import InboundMessage
from tests.demo_bot import REPO, copy_demo_project, free_port

FORM_DOMAIN = """\
version: "3.1"
intents: [request_card, inform]
entities: [card_type]
slots:
  card_type:
    type: text
    mappings:
    - type: from_entity
      entity: card_type
forms:
  card_form:
    required_slots: [card_type]
responses:
  utter_ask_card_type:
  - text: Which card?
  utter_card_ordered:
  - text: Your card is on its way.
"""
ASK = [
    {"event": "action", "name": "card_form"},
    {"event": "active_loop", "name": "card_form"},
    {"event": "slot", "name": "requested_slot", "value": "card_type"},
    {"event": "bot", "text": "Which card?"},
]
FILLED = [
    {"event": "action", "name": "card_form"},
    {"event": "slot", "name": "card_type", "value": "visa"},
    {"event": "slot", "name": "requested_slot", "value": None},
    {"event": "active_loop", "name": None},
    {"event": "action", "name": "utter_card_ordered"},
    {"event": "bot", "text": "Your card is on its way."},
]
VISA = {"entity": "card_type", "value": "visa", "start": 2, "end": 6}
# What the engine stores for each message: the parse, then the bot's events.
REPLIES: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]] = {
    "/request_card": ({"intent": {"name": "request_card"}, "entities": []}, ASK),
    '/request_card{"card_type": "visa", "card_number": null}': (
        {"intent": {"name": "request_card"}, "entities": [VISA, {"entity": "card_number", "value": None}]},
        ASK,
    ),
    "a visa card please": ({"intent": {"name": "inform"}, "entities": [VISA]}, FILLED),
    "a mastercard card please": ({"intent": {"name": "inform"}, "entities": [VISA]}, FILLED),
}


class ScriptedEngine:
    """Stores the scripted events for every message, as the engine's conversation store would."""

    def __init__(self, domain: Domain) -> None:
        self.domain = domain
        self.store = self
        self.received: list[str] = []
        self.conversations: dict[str, list[dict[str, Any]]] = {}

    async def handle(self, message: InboundMessage) -> None:
        self.received.append(message.text)
        parse, bot_events = REPLIES[message.text]
        user = {"event": "user", "text": message.text, "parse_data": parse}
        listen = {"event": "action", "name": "action_listen"}
        self.conversations.setdefault(message.sender_id, []).extend([user, *bot_events, listen])

    def events(self, sender_id: str) -> list[dict[str, Any]]:
        return list(self.conversations.get(sender_id, []))


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def play(tmp_path: Path, stories: str) -> tuple[list[StoryResult], ScriptedEngine]:
    engine = ScriptedEngine(load_domain(write(tmp_path / "domain.yml", FORM_DOMAIN)))
    tests = load_conversation_tests(write(tmp_path / "test_stories.yml", stories), root=tmp_path)

    async def run_all() -> list[StoryResult]:
        runs = [StoryRun(cast(Engine, engine), story, f"story-{n}") for n, story in enumerate(tests.stories)]
        return [await run.play() for run in runs]

    return asyncio.run(run_all()), engine


def test_a_form_story_with_intent_only_steps_active_loop_and_bot_steps_passes(tmp_path: Path) -> None:
    [result], engine = play(
        tmp_path,
        """\
        stories:
        - story: a card is ordered with a form
          steps:
          - intent: request_card
          - action: card_form
          - active_loop: card_form
          - slot_was_set:
            - requested_slot: card_type
          - user: |
              a [visa](card_type) card please
            intent: inform
          - action: card_form
          - slot_was_set:
            - card_type: visa
          - active_loop: null
          - bot: Your card is on its way.
        """,
    )
    assert result.failures == ()
    assert (result.actions, result.correct_actions) == (3, 3)
    # The intent-only step skips NLU as Rasa's payload; the text step is sent as written, unannotated.
    assert engine.received == ["/request_card", "a visa card please"]


def test_intent_step_entities_are_sent_in_the_payload(tmp_path: Path) -> None:
    [result], engine = play(
        tmp_path,
        """\
        stories:
        - story: the card type comes with the request
          steps:
          - intent: request_card
            entities:
            - card_type: visa
            - card_number
          - action: card_form
        """,
    )
    assert result.failures == ()
    # An entity named without a value still reaches the dialogue, as null (Rasa's policies see it).
    assert engine.received == ['/request_card{"card_type": "visa", "card_number": null}']


STORY_WITH_FAILURES = """\
stories:
- story: the form is expected to stay
  steps:
  - intent: request_card
  - action: card_form
  - user: |
      a [mastercard](card_type) card please
    intent: inform
  - action: card_form
  - active_loop: card_form
  - bot: Sorry, no cards today.
- story: the bot acts where the customer speaks
  steps:
  - intent: request_card
"""


def test_every_failing_step_is_reported_and_later_actions_still_count(tmp_path: Path) -> None:
    results, _ = play(tmp_path, STORY_WITH_FAILURES)
    form, early_end = results
    assert [(f.kind, f.step, f.expected, f.actual) for f in form.failures] == [
        ("entities", 3, "entities card_type='mastercard'", "entities card_type='visa'"),
        ("active_loop", 5, "active_loop card_form", "active_loop null"),
        (
            "action",
            6,
            "bot message 'Sorry, no cards today.'",
            "bot message 'Your card is on its way.' (utter_card_ordered)",
        ),
    ]
    assert (form.actions, form.correct_actions) == (3, 2)
    assert [(f.kind, f.expected, f.actual) for f in early_end.failures] == [
        ("listen", "the story to end", "action card_form")
    ]
    assert summary_lines(results) == [
        (
            "FAILED test_stories.yml:6: story 'the form is expected to stay', step 3: "
            "expected entities card_type='mastercard', got entities card_type='visa'"
        ),
        (
            "FAILED test_stories.yml:14: story 'the bot acts where the customer speaks', step 1: "
            "expected the story to end, got action card_form"
        ),
        "0 of 2 conversation tests passed",
        "2 of 3 actions correct",
    ]


def test_failed_stories_are_written_as_rasa_test_stories_with_predictions(tmp_path: Path) -> None:
    results, _ = play(tmp_path, STORY_WITH_FAILURES)
    written = failed_stories_yaml(results)
    assert written == (
        'version: "3.1"\n'
        "stories:\n"
        '- story: "the form is expected to stay (test_stories.yml)"\n'
        "  steps:\n"
        "  - intent: request_card\n"
        "  - action: card_form\n"
        "  - user: \"a mastercard card please\"  # predicted: card_type='visa'\n"
        "    intent: inform\n"
        "  - action: card_form\n"
        "  - active_loop: card_form  # predicted: active_loop null\n"
        '  - bot: "Sorry, no cards today."  # predicted: utter_card_ordered\n'
        '- story: "the bot acts where the customer speaks (test_stories.yml)"\n'
        "  steps:\n"
        "  - intent: request_card\n"
        "  - action: action_listen  # predicted: card_form\n"
    )
    # What is written reads back as test stories.
    stories, _ = load_test_stories(write(tmp_path / "failed.yml", written))
    assert [len(story.steps) for story in stories] == [6, 2]
    assert failed_stories_yaml([r for r in results if not r.failures]) == (
        "# None of the test stories failed - all good!\n"
    )


STORIES = """\
stories:
- story: track a card order
  steps:
  - user: |
      please track my card order
    intent: track_card_delivery
  - action: action_card_delivery_status
  - user: |
      the order number is CD-562173
    intent: inform_order_number
  - action: action_card_delivery_status
  - slot_was_set:
    - order_number: CD-562173

- story: a greeting is not a goodbye
  steps:
  - user: |
      hello there
    intent: greet
  - action: utter_goodbye
"""
DEMO_GOODBYE = "Goodbye, and thanks for banking with Northwind!"
FAILING_STEP_LINE = STORIES.splitlines().index("  - action: utter_goodbye") + 1


def test_failing_step_is_reported_with_story_step_and_file_line(
    demo_project: Path,
    demo_training: TrainResult,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    stories = tmp_path / "stories.yml"
    stories.write_text(STORIES, encoding="utf-8")
    # Nothing answers at the configured endpoint, so the project's own action server is started.
    monkeypatch.setenv("CROWDDESK_ACTION_ENDPOINT", f"http://127.0.0.1:{free_port()}/webhook")
    out_dir = tmp_path / "out"
    code = main(
        [
            "evaluate",
            "conversations",
            "--project",
            str(demo_project),
            "--stories",
            str(stories),
            "--model",
            str(demo_training.model_dir),
            "--out",
            str(out_dir),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert (
        f"FAILED {stories}:{FAILING_STEP_LINE}: story 'a greeting is not a goodbye', step 2: "
        "expected action utter_goodbye, got action utter_greet"
    ) in out
    assert "1 of 2 conversation tests passed" in out
    assert "2 of 3 actions correct" in out
    report = json.loads((out_dir / "story_report.json").read_text(encoding="utf-8"))
    assert report["stories"] == {"total": 2, "passed": 1, "failed": 1}
    assert report["actions"] == {"total": 3, "correct": 2, "accuracy": 2 / 3}
    assert report["results"][1]["failures"] == [
        {
            "story": "a greeting is not a goodbye",
            "step": 2,
            "source": f"{stories}:{FAILING_STEP_LINE}",
            "kind": "action",
            "expected": "action utter_goodbye",
            "actual": "action utter_greet",
        }
    ]
    failed = (out_dir / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "  - action: utter_goodbye  # predicted: utter_greet\n" in failed
    assert "track a card order" not in failed


def test_a_project_without_test_stories_yml_runs_every_story_file_under_tests(
    demo_training: TrainResult, action_server_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "project").mkdir()
    project = copy_demo_project(tmp_path / "project")
    write(
        project / "tests" / "test_payloads.yaml",
        f"""\
        version: "3.1"
        stories:
        - story: an order number given with the intent
          steps:
          - intent: inform_order_number
            entities:
            - order_number: CD-562173
          - action: action_card_delivery_status
          - slot_was_set:
            - order_number: CD-562173
          - active_loop: null
        - story: the goodbye's words
          steps:
          - intent: goodbye
          - bot: {DEMO_GOODBYE}
        """,
    )
    write(
        project / "tests" / "test_entities.yml",
        """\
        stories:
        - story: the order number is misread
          steps:
          - user: |
              the order number is [CD-562173]{"entity": "order_number", "value": "CD-000000"}
            intent: inform_order_number
          - action: action_card_delivery_status
        """,
    )
    write(project / "tests" / "nlu_cases.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    code = main(
        [
            "evaluate",
            "conversations",
            "--project",
            str(project),
            "--model",
            str(demo_training.model_dir),
            "--endpoint",
            action_server_url,
            "--out",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 1, out
    assert "No tests/test_stories.yml: running every test story file under tests/" in out
    assert "Test stories: tests/test_entities.yml, tests/test_payloads.yaml" in out
    assert (
        "FAILED tests/test_entities.yml:4: story 'the order number is misread', step 1: "
        "expected entities order_number='CD-000000', got entities order_number='CD-562173'"
    ) in out
    assert "2 of 3 conversation tests passed" in out, out
    assert "3 of 3 actions correct" in out
    failed = (tmp_path / "out" / "failed_test_stories.yml").read_text(encoding="utf-8")
    assert "# predicted: order_number='CD-562173'" in failed


def test_the_shipped_demo_conversation_tests_pass(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(
        [
            "evaluate",
            "conversations",
            "--project",
            str(demo_project),
            "--stories",
            str(REPO / "tests" / "test_stories.yml"),
            "--model",
            str(demo_training.model_dir),
            "--endpoint",
            action_server_url,
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "8 of 8 conversation tests passed" in out
