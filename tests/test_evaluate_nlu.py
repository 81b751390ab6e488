"""`crowddesk evaluate nlu` on a tiny synthetic set whose right answers are known."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.evaluation.data import load_labelled_messages
from crowddesk.bot.evaluation.nlu import NluEvaluator, NluSettings
from crowddesk.bot.evaluation.open_set import training_point
from crowddesk.bot.project.config import ProjectConfig
from crowddesk.bot.training.trainer import intent_classifier
from crowddesk.nlu.encoders import Encoder

FIXTURES = Path(__file__).parent / "fixtures" / "evaluate"
TRAIN = FIXTURES / "train_nlu.yml"

# Clear-cut messages (training texts, so the model is sure of them) with two deliberate label
# mistakes whose outcome is known: "hey" is a greeting, "what's my current balance" in scope.
TEST_CSV = """text,intent
hello,greet
hi there,greet
good morning,greet
what is my account balance,check_balance
how much money do I have,check_balance
show me my balance,check_balance
block my card,block_card
freeze my debit card,block_card
hey,block_card
what's the weather tomorrow,out_of_scope
recommend a good pizza place,out_of_scope
who won the football match,out_of_scope
what's my current balance,out_of_scope
"""


@pytest.fixture(scope="module")
def evaluator(minilm_encoder: Encoder) -> NluEvaluator:
    return NluEvaluator(NluSettings.from_config(ProjectConfig()), encoder=minilm_encoder)


@pytest.fixture(scope="module")
def report(evaluator: NluEvaluator, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    test_file = tmp_path_factory.mktemp("nlu") / "test.csv"
    test_file.write_text(TEST_CSV, encoding="utf-8")
    return evaluator.train_test(load_labelled_messages(TRAIN), load_labelled_messages(test_file))


def test_scores_follow_the_documented_definitions(report: dict[str, Any]) -> None:
    # 13 messages, 11 top intents right; of the 9 in-scope ones, 8 (the "hey" label is wrong).
    assert report["intent"]["accuracy"] == pytest.approx(11 / 13, abs=1e-4)
    assert report["in_scope_accuracy"] == pytest.approx(8 / 9, abs=1e-4)
    # 3 of the 4 out-of-scope messages are handed off; nothing in scope is.
    assert report["out_of_scope"] == {"intent": "out_of_scope", "support": 4, "recall": 0.75, "precision": 1.0}
    # Answered: the 9 in-scope messages + the balance question labelled out of scope; 8 are right.
    point = report["operating_point"]
    assert (point["answered"], point["total"]) == (10, 13)
    assert point["answered_share"] == pytest.approx(10 / 13, abs=1e-4)
    assert point["answer_precision"] == pytest.approx(0.8)
    greet = report["intent"]["per_intent"]["greet"]
    assert greet == {"precision": 0.75, "recall": 1.0, "f1": pytest.approx(6 / 7, abs=1e-4), "support": 3}
    # F1: greet 6/7, check_balance 6/7, block_card 4/5, out_of_scope 6/7.
    assert report["intent"]["macro_f1"] == pytest.approx((3 * 6 / 7 + 4 / 5) / 4, abs=1e-4)
    assert {(p["intent"], p["predicted"], p["count"]) for p in report["most_confused"]} == {
        ("block_card", "greet", 1),
        ("out_of_scope", "check_balance", 1),
    }
    assert {(e["text"], e["predicted"], e["answered"]) for e in report["errors"]} == {
        ("hey", "greet", True),
        ("what's my current balance", "check_balance", True),
    }
    labels = report["confusion_matrix"]["labels"]
    matrix = np.array(report["confusion_matrix"]["matrix"])
    assert matrix.sum() == 13 and matrix[labels.index("block_card"), labels.index("greet")] == 1
    assert report["train_seconds"] > 0 and report["definitions"]["out_of_scope.recall"]


def test_threshold_is_chosen_on_training_folds_and_never_on_test(
    report: dict[str, Any], evaluator: NluEvaluator, minilm_encoder: Encoder
) -> None:
    train = load_labelled_messages(TRAIN)
    texts, labels = [e.text for e in train], [e.intent for e in train]
    policy = ProjectConfig().policy
    classifier = intent_classifier(ProjectConfig().classifier)
    never = frozenset({"out_of_scope", "human_handoff"})
    out_of_fold = classifier.fit(
        texts, minilm_encoder.encode(texts), labels, unseen_topic_share=policy.unseen_topic_share, always_trained=never
    )
    expected = training_point(classifier.classes, labels, out_of_fold, 0.95, never)
    assert report["operating_point"]["threshold"] == pytest.approx(expected.threshold, abs=1e-4)

    # Another test set leaves the threshold alone.
    other = evaluator.train_test(train, train[:6])
    assert other["operating_point"]["threshold"] == report["operating_point"]["threshold"]


def test_curve_covers_every_answerable_confidence_strictest_first(report: dict[str, Any]) -> None:
    curve = report["curve"]
    thresholds = [p["threshold"] for p in curve]
    assert thresholds == sorted(thresholds, reverse=True)
    # The loosest point answers every message whose top intent may be answered (10 of 13).
    assert curve[-1]["answered_share"] == pytest.approx(10 / 13, abs=1e-4)
    assert curve[-1]["answer_precision"] == pytest.approx(0.8)


def test_cross_validation_predicts_every_message_once(evaluator: NluEvaluator) -> None:
    train = load_labelled_messages(TRAIN)
    report = evaluator.cross_validate(train, folds=4)
    assert (report["mode"], report["folds"]) == ("cross-validation", 4)
    assert report["data"]["test_messages"] == len(train) == 32
    assert sum(s["support"] for s in report["intent"]["per_intent"].values()) == 32
    assert len(report["operating_point"]["fold_thresholds"]) == 4
    assert report["operating_point"]["total"] == 32
    assert report["intent"]["accuracy"] > 0.6


def test_cli_writes_json_and_a_self_contained_html_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_file = tmp_path / "test.csv"
    test_file.write_text(TEST_CSV.replace("text,intent", "text,category"), encoding="utf-8")
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
            "--out",
            str(out),
        ]
    )
    assert code == 0
    printed = capsys.readouterr().out
    assert "intent accuracy" in printed and "84.6%" in printed

    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["intent"]["accuracy"] == pytest.approx(11 / 13, abs=1e-4)
    html = (out / "report.html").read_text(encoding="utf-8")
    assert html.count("<svg") == 3
    assert '<polyline id="curve"' in html and '<circle id="operating-point"' in html
    assert f"threshold {report['operating_point']['threshold']:.3f}" in html
    assert "<script" not in html and "src=" not in html and "href=" not in html


def test_out_of_scope_intent_can_be_renamed(evaluator: NluEvaluator, tmp_path: Path) -> None:
    # CLINC150 calls it `oos`: with that name, "out_of_scope" is just another intent.
    renamed = NluEvaluator(NluSettings.from_config(ProjectConfig(), "oos"), encoder=evaluator.encoder)
    train = load_labelled_messages(TRAIN)
    report = renamed.train_test(train, train[-8:])
    assert report["out_of_scope"]["intent"] == "oos" and report["out_of_scope"]["support"] == 0
    assert report["out_of_scope"]["recall"] is None
    assert report["operating_point"]["answered"] > 0


def test_impossible_fold_counts_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        [
            "evaluate",
            "nlu",
            "--project",
            str(tmp_path),
            "--train",
            str(TRAIN),
            "--folds",
            "1",
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert "error: folds must be between 2 and the number of messages (32), got 1" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
