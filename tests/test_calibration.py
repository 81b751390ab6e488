from __future__ import annotations

import numpy as np
import pytest

from crowddesk.nlu.calibration import (
    OperatingPoint,
    choose_threshold,
    expected_calibration_error,
    fit_temperature,
    precision_curve,
    softmax,
)


def _sample(true_logits: np.ndarray, seed: int) -> np.ndarray:
    """Labels drawn from softmax(true_logits): a model reporting these logits is calibrated."""
    rng = np.random.default_rng(seed)
    probs = softmax(true_logits)
    cumulative = probs.cumsum(axis=1)
    return (rng.random((len(probs), 1)) > cumulative).sum(axis=1)


def _true_logits(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(scale=2.0, size=(n, 4))


@pytest.mark.parametrize("distortion", [3.0, 0.5])
def test_temperature_undoes_over_and_under_confidence(distortion: float) -> None:
    truth = _true_logits(4000, seed=1)
    labels = _sample(truth, seed=2)
    temperature = fit_temperature(truth * distortion, labels)
    assert temperature == pytest.approx(distortion, rel=0.15)


def test_calibrated_probabilities_have_lower_error_on_held_out_data() -> None:
    truth = _true_logits(6000, seed=3)
    labels = _sample(truth, seed=4)
    over_confident = truth * 4.0
    fit, held_out = slice(0, 3000), slice(3000, None)
    temperature = fit_temperature(over_confident[fit], labels[fit])

    raw_error = expected_calibration_error(softmax(over_confident[held_out]), labels[held_out])
    calibrated_error = expected_calibration_error(softmax(over_confident[held_out], temperature), labels[held_out])
    assert temperature > 1.0
    assert calibrated_error < raw_error / 3


def test_expected_calibration_error_of_known_bins() -> None:
    # Four predictions at 0.9 confidence, three right: gap 0.15. Two at 0.6, both right: 0.4.
    probs = np.array([[0.9, 0.1]] * 4 + [[0.6, 0.4]] * 2)
    labels = np.array([0, 0, 0, 1, 0, 0])
    assert expected_calibration_error(probs, labels) == pytest.approx(4 / 6 * 0.15 + 2 / 6 * 0.4)


def test_softmax_gives_impossible_classes_zero() -> None:
    probs = softmax(np.array([[1.0, -np.inf, 1.0]]), temperature=2.0)
    np.testing.assert_allclose(probs, [[0.5, 0.0, 0.5]])


def test_precision_curve_groups_equal_confidences() -> None:
    curve = precision_curve(np.array([0.9, 0.5, 0.9, 0.7]), np.array([1, 0, 0, 1]))
    assert curve == [
        OperatingPoint(threshold=0.9, answered_share=0.5, precision=0.5, answered=2, total=4),
        OperatingPoint(threshold=0.7, answered_share=0.75, precision=2 / 3, answered=3, total=4),
        OperatingPoint(threshold=0.5, answered_share=1.0, precision=0.5, answered=4, total=4),
    ]


def test_choose_threshold_takes_the_lowest_threshold_meeting_the_target() -> None:
    confidences = np.linspace(1.0, 0.05, 20)
    correct = np.array([1] * 10 + [0, 1, 1, 1, 0, 1, 0, 0, 0, 0])
    point = choose_threshold(confidences, correct, target_precision=0.87, min_answered=1)
    # 14 answered with 13 right = 0.929; answering the 15th drops it to 13/15 = 0.867.
    assert point.answered == 14
    assert point.threshold == pytest.approx(confidences[13])
    assert point.precision == pytest.approx(13 / 14)
    assert point.answered_share == pytest.approx(14 / 20)


def test_a_lucky_region_below_a_failing_one_is_not_chosen() -> None:
    # Cumulative precision is 1.0 for the top 3, dips to 0.6 at 5 answered, then climbs back to
    # 13/15: a naive "lowest threshold with precision >= 0.8" would answer all 15.
    correct = np.array([1, 1, 1, 0, 0] + [1] * 10)
    confidences = np.linspace(0.99, 0.5, len(correct))
    point = choose_threshold(confidences, correct, target_precision=0.8, min_answered=1)
    assert point.answered == 3
    assert point.precision == 1.0


def test_min_answered_ignores_tiny_noisy_heads() -> None:
    # The single most confident prediction is wrong; with min_answered=5 it doesn't veto the rest.
    correct = np.array([0] + [1] * 19)
    confidences = np.linspace(0.99, 0.4, 20)
    assert choose_threshold(confidences, correct, 0.8, min_answered=1).answered == 0
    point = choose_threshold(confidences, correct, 0.8, min_answered=5)
    assert point.answered == 20
    assert point.precision == pytest.approx(0.95)


def test_unreachable_target_hands_everything_off() -> None:
    confidences = np.array([0.8, 0.7, 0.6, 0.5, 0.4, 0.3])
    correct = np.array([1, 0, 1, 0, 1, 0])
    point = choose_threshold(confidences, correct, target_precision=0.99, min_answered=2)
    assert point.answered == 0
    assert point.answered_share == 0.0
    assert point.total == 6
    assert point.threshold > confidences.max()
    assert not (confidences >= point.threshold).any()


def test_no_predictions_means_nothing_is_answered() -> None:
    # E.g. every training example was handed off by a rule, or none falls below the answer bar.
    assert precision_curve(np.array([]), np.array([])) == []
    point = choose_threshold(np.array([]), np.array([], dtype=bool), 0.9)
    assert (point.answered, point.total, point.answered_share) == (0, 0, 0.0)
    assert point.threshold > 1.0


def test_bad_inputs_are_rejected_clearly() -> None:
    with pytest.raises(ValueError, match="same length"):
        precision_curve(np.array([0.5, 0.4]), np.array([1]))
    with pytest.raises(ValueError, match="target_precision"):
        choose_threshold(np.array([0.5]), np.array([1]), 1.5)
    with pytest.raises(ValueError, match="true class must be finite"):
        fit_temperature(np.array([[0.0, -np.inf]]), np.array([1]))


def test_an_error_free_small_calibration_set_does_not_collapse_the_temperature() -> None:
    # 40 examples, all predicted right with a moderate margin: the likelihood alone would
    # sharpen without limit; the prior keeps T within reach of 1.
    logits = np.tile([2.0, 0.0, 0.0], (40, 1))
    temperature = fit_temperature(logits, np.zeros(40, dtype=np.int64))
    assert 0.2 < temperature < 1.0
