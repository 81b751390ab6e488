"""The accuracy benchmarks' own logic: carving validation data, choosing an operating point."""

from __future__ import annotations

import numpy as np

from benchmarks.clinc150 import ScoredSplit, choose_operating_point
from benchmarks.datasets import LabelledTexts, stratified_holdout


def test_holdout_takes_the_same_share_of_every_label_and_is_repeatable() -> None:
    data = LabelledTexts([f"text {i}" for i in range(130)], ["a"] * 100 + ["b"] * 30)
    rest, held_out = stratified_holdout(data, 0.1, seed=0)
    assert sorted(held_out.labels) == ["a"] * 10 + ["b"] * 3
    assert sorted(rest.texts + held_out.texts) == sorted(data.texts)
    assert stratified_holdout(data, 0.1, seed=0) == (rest, held_out)


def test_operating_point_balances_in_scope_accuracy_and_out_of_scope_recall() -> None:
    validation = ScoredSplit(
        predicted=np.array(["a", "b", "a", "b"], dtype=object),
        confidence=np.array([0.9, 0.4, 0.3, 0.8]),
        labels=np.array(["a", "b", "oos", "oos"], dtype=object),
    )
    point = choose_operating_point(validation)
    # Threshold 0.4 keeps both in-scope answers and catches the 0.3 out-of-scope message; a
    # higher one would lose an in-scope answer for nothing.
    assert (point.threshold, point.in_scope_accuracy, point.oos_recall) == (0.4, 1.0, 0.5)
