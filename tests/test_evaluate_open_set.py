"""Open-set mode of `crowddesk evaluate nlu`: whole intents left out of training, their messages
scored as "should be handed off"."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.evaluation.data import load_labelled_messages
from crowddesk.bot.evaluation.nlu import NluEvaluator, NluSettings
from crowddesk.bot.evaluation.open_set import OpenSetScores, held_out
from crowddesk.bot.project.config import ProjectConfig
from crowddesk.nlu.encoders import Encoder

TRAIN = Path(__file__).parent / "fixtures" / "evaluate" / "open_set_nlu.yml"
NEVER = frozenset({"out_of_scope", "human_handoff"})
TEST_CSV = """text,intent
hello there,greet
hi bot,greet
how much do I have in my account,check_balance
tell me my balance,check_balance
please block my credit card,block_card
my wallet was stolen with my card,block_card
send 10 euros to my brother,transfer_money
I need to transfer money to another bank,transfer_money
are you open on saturday,opening_hours
what time does the branch open,opening_hours
what's the capital of peru,out_of_scope
translate hello into japanese,out_of_scope
"""


@pytest.fixture(scope="module")
def evaluator(minilm_encoder: Encoder) -> NluEvaluator:
    return NluEvaluator(NluSettings.from_config(ProjectConfig()), encoder=minilm_encoder)


@pytest.fixture(scope="module")
def test_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("open_set") / "test.csv"
    path.write_text(TEST_CSV, encoding="utf-8")
    return path


def test_unseen_intents_are_chosen_by_seed_and_never_the_out_of_scope_one() -> None:
    intents = [
        "greet",
        "check_balance",
        "block_card",
        "transfer_money",
        "opening_hours",
        "out_of_scope",
        "human_handoff",
    ]
    chosen = {seed: held_out(intents, 2, seed, NEVER) for seed in range(20)}
    assert chosen[3] == held_out(reversed(intents), 2, 3, NEVER)  # order of the input is moot
    assert all(len(unseen) == 2 and not unseen & NEVER for unseen in chosen.values())
    assert len(set(chosen.values())) > 1  # the seed matters
    with pytest.raises(ValueError, match=r"between 1 and 3 .* got 4"):
        held_out(intents, 4, 0, NEVER)


def test_scores_follow_their_definitions() -> None:
    # Six messages: two unseen (one answered: always wrong), three trained topics, one out of scope.
    correct = np.array([False, False, True, True, False, False])
    answered = np.array([True, False, True, False, True, False])
    unseen = np.array([True, True, False, False, False, False])
    in_scope = np.array([False, False, True, True, True, False])
    scores = OpenSetScores.of(
        correct=correct, answered=answered, unseen=unseen, in_scope=in_scope, claimed_precision=0.96
    )
    assert scores == OpenSetScores(
        answered_share=0.5,
        claimed_precision=0.96,
        realised_precision=1 / 3,
        unseen_handed_off=0.5,
        in_scope_answered_correctly=1 / 3,
    )
    nothing = OpenSetScores.of(
        correct=correct, answered=np.zeros(6, dtype=bool), unseen=unseen, in_scope=in_scope, claimed_precision=1.0
    )
    assert (nothing.realised_precision, nothing.unseen_handed_off) == (1.0, 1.0)


def _check_open_set_section(report: dict[str, Any], unseen: set[str]) -> None:
    """The open-set numbers, recomputed from the per-message outcomes the report lists."""
    open_set = report["open_set"]
    assert open_set["unseen_intents"] == sorted(unseen)
    assert report["unknown_test_intents"] == sorted(unseen)
    # A held-out intent is never learned, so never predicted: all its messages are errors.
    assert not {e["predicted"] for e in report["errors"]} & unseen
    unseen_errors = [e for e in report["errors"] if e["intent"] in unseen]
    assert len(unseen_errors) == open_set["unseen_support"] > 0
    handed_off = sum(not e["answered"] for e in unseen_errors)
    assert open_set["unseen_handed_off"] == pytest.approx(handed_off / len(unseen_errors), abs=1e-4)
    point = report["operating_point"]
    wrong_answers = sum(e["answered"] for e in report["errors"])
    assert open_set["answered_share"] == point["answered_share"]
    assert open_set["realised_precision"] == pytest.approx(1 - wrong_answers / point["answered"], abs=1e-4)
    assert open_set["claimed_precision"] == point["train_answer_precision"]
    # The curve without unseen topics only covers the trained topics' messages.
    assert open_set["curve_without_unseen"] != report["curve"]


def test_train_test_leaves_unseen_intents_out_of_training(evaluator: NluEvaluator, test_file: Path) -> None:
    train, test = load_labelled_messages(TRAIN), load_labelled_messages(test_file)
    report = evaluator.train_test(train, test, frozenset({"transfer_money"}))
    assert report["data"]["train_messages"] == 30 and report["data"]["intents"] == 5
    _check_open_set_section(report, {"transfer_money"})
    # Eight in-scope test messages (trained intents, not out of scope); the unseen two excluded.
    in_scope_right = sum(1 for e in test if e.intent not in {"transfer_money", "out_of_scope"}) - sum(
        1 for e in report["errors"] if e["intent"] not in {"transfer_money", "out_of_scope"}
    )
    answered_right = report["open_set"]["in_scope_answered_correctly"] * 8
    assert answered_right == pytest.approx(round(answered_right), abs=1e-3) and answered_right <= in_scope_right
    # Same model and threshold as training on the kept intents alone: nothing of the unseen leaks.
    kept = evaluator.train_test([e for e in train if e.intent != "transfer_money"], test)
    assert kept["operating_point"]["threshold"] == report["operating_point"]["threshold"]
    assert "open_set" not in kept


def test_cross_validation_predicts_unseen_messages_once_without_training_on_them(
    evaluator: NluEvaluator,
) -> None:
    examples = load_labelled_messages(TRAIN)
    report = evaluator.cross_validate(examples, folds=3, unseen=frozenset({"opening_hours", "greet"}))
    assert report["operating_point"]["total"] == len(examples) == 36
    assert report["data"]["train_messages"] == 24
    _check_open_set_section(report, {"opening_hours", "greet"})
    assert report["open_set"]["unseen_support"] == 12


def test_cli_reports_the_open_set_numbers_and_both_curves(
    test_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "report"
    code = main(
        [
            "evaluate",
            "nlu",
            "--project",
            str(tmp_path),
            "--train",
            str(TRAIN),
            "--test",
            str(test_file),
            "--unseen-intents",
            "2",
            "--seed",
            "7",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    open_set = report["open_set"]
    assert open_set["seed"] == 7
    assert open_set["unseen_intents"] == sorted(
        held_out([e.intent for e in load_labelled_messages(TRAIN)], 2, 7, NEVER)
    )
    assert "unseen-topic messages handed off (4)" in printed
    assert "answer precision claimed / realised" in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<polyline id="curve-without-unseen"' in html and '<polyline id="curve"' in html
    assert "Unseen-topic messages handed off (4)" in html


def test_too_many_unseen_intents_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "evaluate",
            "nlu",
            "--project",
            str(tmp_path),
            "--train",
            str(TRAIN),
            "--unseen-intents",
            "4",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert "unseen intents must be between 1 and 3" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
