"""benchmarks/open_set.py's own logic: carving unseen intents, out-of-fold thresholds, summaries."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.baselines import tfidf_logreg
from benchmarks.datasets import LabelledTexts
from benchmarks.open_set import aligned, banking77_run, first_per_intent, summarise, without_intents
from crowddesk.nlu.encoders import Encoder

WORDS = {"card": "card", "transfer": "transfer", "balance": "balance", "atm": "atm"}


def _synthetic(per_intent: int, offset: int = 0) -> LabelledTexts:
    """Each intent's texts share its keyword and differ by a number."""
    texts, labels = [], []
    for label, word in WORDS.items():
        for i in range(offset, offset + per_intent):
            texts.append(f"my {word} question number {i}")
            labels.append(label)
    return LabelledTexts(texts, labels)


def test_unseen_intents_leave_training_and_subsets_keep_file_order() -> None:
    data = _synthetic(3)
    kept = without_intents(data, frozenset({"atm", "card"}))
    assert set(kept.labels) == {"transfer", "balance"} and len(kept) == 6
    small = first_per_intent(data, 2)
    assert small.texts[:2] == data.texts[:2] and small.labels.count("atm") == 2 and len(small) == 8


def test_probabilities_are_laid_out_on_the_full_class_list() -> None:
    probabilities = np.array([[0.25, 0.75]])
    assert aligned(probabilities, ["b", "d"], ["a", "b", "c", "d"]).tolist() == [[0.0, 0.25, 0.0, 0.75]]


def test_summary_is_mean_and_spread_over_seeds_skipping_undefined_values() -> None:
    runs = [
        {
            "realised_precision": 0.9,
            "claimed_precision": 0.95,
            "unseen_handed_off": 0.5,
            "in_scope_answered_correctly": 0.8,
            "answered_share": 0.7,
        },
        {
            "realised_precision": 1.0,
            "claimed_precision": 0.95,
            "unseen_handed_off": None,
            "in_scope_answered_correctly": 0.6,
            "answered_share": 0.5,
        },
    ]
    summary = summarise(runs)
    assert summary["mean"] == {
        "realised_precision": 0.95,
        "claimed_precision": 0.95,
        "unseen_handed_off": 0.5,
        "in_scope_answered_correctly": 0.7,
        "answered_share": 0.6,
    }
    assert summary["std"]["realised_precision"] == pytest.approx(0.05)
    assert summary["std"]["unseen_handed_off"] == 0.0


def test_threshold_comes_from_training_folds_and_unseen_messages_count_as_wrong_answers(
    minilm_encoder: Encoder,
) -> None:
    train, test = _synthetic(10), _synthetic(3, offset=100)
    run = banking77_run(tfidf_logreg(), minilm_encoder, train, test, frozenset({"atm"}))
    # The three trained intents are keyword-clear: everything in scope is answered, and right.
    assert run["in_scope_answered_correctly"] == 1.0
    # "atm" was never learned: each of its answered messages is a wrong answer.
    answered_unseen = (1 - run["unseen_handed_off"]) * 3
    assert run["answered_share"] == pytest.approx((9 + answered_unseen) / 12, abs=1e-4)
    assert run["realised_precision"] == pytest.approx(9 / (9 + answered_unseen), abs=1e-4)
    assert run["claimed_precision"] == 1.0
    # Another test set leaves the training-chosen threshold alone.
    other = banking77_run(tfidf_logreg(), minilm_encoder, train, _synthetic(1, offset=500), frozenset({"atm"}))
    assert other["threshold"] == run["threshold"]
