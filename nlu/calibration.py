"""Scores to trustworthy confidences, and confidences to an answer-or-hand-off threshold."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

# Temperatures outside this range mean the logits carry no usable signal (or a bug upstream).
_MIN_TEMPERATURE = 0.05
_MAX_TEMPERATURE = 20.0
# Standard deviation of the normal prior on log T. Without a prior, a small calibration set with
# no mistakes drives T to the lower bound, and then even off-topic messages get ~0.9999.
_LOG_TEMPERATURE_PRIOR_SD = 0.5


@dataclass(frozen=True)
class OperatingPoint:
    """What happens if the bot answers only when confidence >= threshold."""

    threshold: float
    answered_share: float
    precision: float  # 1.0 when nothing is answered: no answer given, none wrong
    answered: int
    total: int


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of logits / temperature; -inf logits (impossible classes) get 0."""
    scaled = np.asarray(logits, dtype=np.float64) / temperature
    scaled = scaled - scaled.max(axis=1, keepdims=True)
    exp = np.exp(scaled)
    return exp / exp.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, label_idx: np.ndarray) -> float:
    """The temperature T that best explains the labels under softmax(logits / T).

    T > 1 softens an over-confident model, T < 1 sharpens an under-confident one. It minimises
    the mean negative log-likelihood plus a normal prior on log T (sd 0.5, centred on T = 1),
    whose pull fades as examples accumulate; log T keeps "too sharp" and "too flat" symmetric.
    Bounded to [0.05, 20].
    """
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(label_idx, dtype=np.int64)
    if logits.ndim != 2 or labels.shape != (logits.shape[0],):
        raise ValueError(f"fit_temperature needs logits (n, k) and labels (n,), got {logits.shape} and {labels.shape}")
    if logits.shape[0] == 0:
        raise ValueError("fit_temperature needs at least one example")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError(f"labels must index the {logits.shape[1]} logit columns")
    if not np.all(np.isfinite(logits[np.arange(len(labels)), labels])):
        raise ValueError("the logit of an example's true class must be finite")

    rows = np.arange(len(labels))

    prior_scale = 2 * _LOG_TEMPERATURE_PRIOR_SD**2 * len(labels)

    def mean_negative_log_posterior(log_temperature: float) -> float:
        scaled = logits / math.exp(log_temperature)
        top = scaled.max(axis=1)
        log_norm = top + np.log(np.exp(scaled - top[:, None]).sum(axis=1))
        return float(np.mean(log_norm - scaled[rows, labels])) + log_temperature**2 / prior_scale

    result = minimize_scalar(
        mean_negative_log_posterior,
        bounds=(math.log(_MIN_TEMPERATURE), math.log(_MAX_TEMPERATURE)),
        method="bounded",
    )
    return float(math.exp(result.x))


def expected_calibration_error(probs: np.ndarray, labels_idx: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over equal-width confidence bins, weighted by bin size.

    Confidence is the top probability of each row; a row is correct when its argmax is the label.
    """
    probs = np.asarray(probs, dtype=np.float64)
    labels = np.asarray(labels_idx, dtype=np.int64)
    if probs.ndim != 2 or labels.shape != (probs.shape[0],) or probs.shape[0] == 0:
        raise ValueError(
            f"expected_calibration_error needs probs (n, k) and labels (n,) with n > 0, got "
            f"{probs.shape} and {labels.shape}"
        )
    if bins < 1:
        raise ValueError(f"bins must be >= 1, got {bins}")
    confidences = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    # Bin i holds (i/bins, (i+1)/bins]; confidence 0 (impossible for a softmax) joins bin 0.
    bin_of = np.clip(np.ceil(confidences * bins).astype(np.int64) - 1, 0, bins - 1)
    error = 0.0
    for b in range(bins):
        in_bin = bin_of == b
        if in_bin.any():
            gap = abs(correct[in_bin].mean() - confidences[in_bin].mean())
            error += gap * in_bin.sum() / len(confidences)
    return float(error)


def _check_pairs(
    confidences: np.ndarray, correct: np.ndarray, weights: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    conf = np.asarray(confidences, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    weight = np.ones(conf.shape) if weights is None else np.asarray(weights, dtype=np.float64)
    if conf.ndim != 1 or ok.shape != conf.shape or weight.shape != conf.shape:
        raise ValueError(
            f"confidences, correct and weights must be 1-d and the same length, got {conf.shape}, "
            f"{ok.shape} and {weight.shape}"
        )
    if not np.all(np.isfinite(conf)):
        raise ValueError("confidences must be finite")
    if not np.all(np.isfinite(weight)) or np.any(weight < 0):
        raise ValueError("weights must be finite and >= 0")
    return conf, ok, weight


def precision_curve(
    confidences: np.ndarray, correct: np.ndarray, weights: np.ndarray | None = None
) -> list[OperatingPoint]:
    """One operating point per distinct confidence, strictest (highest threshold) first.

    The precision at threshold t is over every prediction with confidence >= t. `weights` make
    some predictions count more in the shares and precisions (e.g. held-out topics weighted to
    their expected share of traffic); `answered` and `total` stay counts. No predictions, no
    points.
    """
    conf, ok, weight = _check_pairs(confidences, correct, weights)
    if conf.size == 0:
        return []
    order = np.argsort(-conf, kind="stable")
    conf, ok, weight = conf[order], ok[order], weight[order]
    answered_weight = np.cumsum(weight)
    right_weight = np.cumsum(weight * ok)
    # The last position of each run of equal confidences: all of them are answered together.
    run_ends = np.flatnonzero(np.append(conf[1:] != conf[:-1], True))
    total, total_weight = len(conf), float(answered_weight[-1])
    return [
        OperatingPoint(
            threshold=float(conf[i]),
            answered_share=float(answered_weight[i] / total_weight) if total_weight else 0.0,
            # Only zero-weight predictions answered so far: none of them can be wrong.
            precision=float(right_weight[i] / answered_weight[i]) if answered_weight[i] else 1.0,
            answered=int(i + 1),
            total=total,
        )
        for i in run_ends
    ]


def choose_threshold(
    confidences: np.ndarray,
    correct: np.ndarray,
    target_precision: float,
    *,
    min_answered: int = 5,
    weights: np.ndarray | None = None,
) -> OperatingPoint:
    """Lowest threshold whose answered set reaches the target precision (answer when conf >= t).

    Rule: walk the precision curve from the strictest threshold down, considering only points
    that answer at least `min_answered` predictions (fewer is too noisy to judge). The chosen
    point is the last one before the first that falls below the target, i.e. every stricter
    point also meets it; a lucky high-precision region below a failing one is never chosen.
    If even the strictest considered point misses the target, return the point just above the
    highest confidence (nothing answered, everything handed off) — never raise for that. With no
    predictions at all, that point sits just above 1.0, the top of the probability scale.
    """
    if not 0.0 < target_precision <= 1.0:
        raise ValueError(f"target_precision must be in (0, 1], got {target_precision}")
    if min_answered < 1:
        raise ValueError(f"min_answered must be >= 1, got {min_answered}")
    curve = precision_curve(confidences, correct, weights)
    chosen: OperatingPoint | None = None
    for point in curve:
        if point.answered < min_answered:
            continue
        if point.precision < target_precision:
            break
        chosen = point
    if chosen is not None:
        return chosen
    highest = curve[0].threshold if curve else 1.0
    return OperatingPoint(
        threshold=float(np.nextafter(highest, np.inf)),
        answered_share=0.0,
        precision=1.0,
        answered=0,
        total=curve[0].total if curve else 0,
    )
