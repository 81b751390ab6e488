"""`crowddesk evaluate conversations`: Rasa test stories run through the demo bot's engine."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.training.trainer import TrainResult
from tests.demo_bot import REPO, free_port

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
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    out = capsys.readouterr().out
    assert (
        f"FAILED {stories}:{FAILING_STEP_LINE}: story 'a greeting is not a goodbye', step 2: "
        "expected action utter_goodbye, got action utter_greet"
    ) in out
    assert "1 of 2 conversation tests passed" in out
    report = json.loads((tmp_path / "out" / "report.json").read_text(encoding="utf-8"))
    assert report["passed"] == 1 and report["failures"] == [
        {
            "story": "a greeting is not a goodbye",
            "step": 2,
            "source": f"{stories}:{FAILING_STEP_LINE}",
            "expected": "action utter_goodbye",
            "actual": "action utter_greet",
        }
    ]


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
