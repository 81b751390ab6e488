"""Open-set calibration: confidences that stay honest when messages about unseen topics arrive.

A classifier calibrated on its own topics says "0.6" for a message about a topic it never
learned as readily as for a hard message about a known one. Training therefore also fits models
that hold whole intents out (`CalibratedIntentClassifier.fit`); their predictions for the
held-out intents' messages are "should be handed off" examples. Mixed with the ordinary
out-of-fold predictions at the share of traffic a project expects to be about unseen topics
(`unseen_topic_share` in config.yml), they give the map from a score to "probability the answer
is right" on traffic like a deployment's.

The score is the top probability times the similarity to the nearest training example of the
top intent, raised to an exponent chosen on those held-out predictions (0 when distance does not
help).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.isotonic import IsotonicRegression

from crowddesk.nlu.calibration import choose_threshold

# Exponents tried on the nearest-example similarity; 0 ignores it (the top probability alone).
EXPONENTS = (0.0, 1.0, 2.0, 3.0)


def traffic_weights(seen: int, unseen: int, unseen_share: float) -> tuple[float, float]:
    """Weights of one seen and one unseen example so that unseen ones make `unseen_share` of the
    total weight (the total is the number of seen examples). Without unseen examples: (1, 0)."""
    if not unseen or not unseen_share:
        return 1.0, 0.0
    if seen == 0:
        raise ValueError("open-set calibration needs out-of-fold predictions of trained intents")
    return 1.0, unseen_share / (1.0 - unseen_share) * seen / unseen


@dataclass(frozen=True)
class HeldOutScores:
    """Held-out predictions: top probability, similarity of the message to the nearest training
    example of the top intent, and whether the top intent is right (never, for an unseen topic)."""

    top_probability: np.ndarray
    nearest: np.ndarray
    correct: np.ndarray
    weights: np.ndarray


@dataclass(frozen=True)
class KnownTopicCalibration:
    """score = probability x max(nearest, 0) ** exponent, then a monotone map to P(right)."""

    exponent: float
    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def score(self, probabilities: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """Raw scores, same shape as `probabilities` (one row per message, or one top probability
        per message); `nearest` has one value per message."""
        probabilities = np.asarray(probabilities, dtype=np.float64)
        factor = np.maximum(np.asarray(nearest, dtype=np.float64), 0.0) ** self.exponent
        return probabilities * (factor if probabilities.ndim == 1 else factor[:, None])

    def __call__(self, probabilities: np.ndarray, nearest: np.ndarray) -> np.ndarray:
        """Confidences: for each row, every intent's probability scaled by how close the message is
        to the top intent's examples, mapped to "probability the answer is right". Monotone within
        a row, so the ranking of intents never changes."""
        raw = self.score(probabilities, nearest)
        if not self.scores:
            return raw
        return np.interp(raw, self.scores, self.probabilities)

    @classmethod
    def identity(cls) -> KnownTopicCalibration:
        return cls(0.0, (), ())


def fit_known_topic_calibration(held_out: HeldOutScores, target_precision: float) -> KnownTopicCalibration:
    """The exponent answering most right messages at `target_precision` on the weighted held-out
    traffic, then an isotonic map from its scores to the weighted share of right answers."""
    if not len(held_out.correct) or len(set(held_out.correct.tolist())) < 2:
        return KnownTopicCalibration.identity()
    total = held_out.weights.sum()

    def answered_right(exponent: float) -> float:
        score = KnownTopicCalibration(exponent, (), ()).score(held_out.top_probability, held_out.nearest)
        point = choose_threshold(score, held_out.correct, target_precision, weights=held_out.weights)
        answered = score >= point.threshold
        return float(held_out.weights[answered & held_out.correct].sum() / total)

    exponent = max(EXPONENTS, key=answered_right)  # ties keep the smaller exponent
    score = KnownTopicCalibration(exponent, (), ()).score(held_out.top_probability, held_out.nearest)
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
        score, held_out.correct.astype(np.float64), sample_weight=held_out.weights
    )
    return KnownTopicCalibration(
        exponent, tuple(float(x) for x in iso.X_thresholds_), tuple(float(y) for y in iso.y_thresholds_)
    )
