"""The contenders every accuracy benchmark trains side by side, behind one small interface.

- `CrowdDeskContender`: exactly what `crowddesk train` does for intents (encode the examples with
  the configured encoder, fit `CalibratedIntentClassifier` with the default `ClassifierSettings`,
  out-of-fold calibration included).
- `TfidfLogRegBaseline`: word 1-2-gram TF-IDF + logistic regression, the classic text baseline.
- `FrozenMiniLMLogRegBaseline`: frozen MiniLM sentence embeddings + logistic regression.

Training time is wall time of the whole `fit`, encoding included.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from crowddesk.bot.config import ClassifierSettings
from crowddesk.bot.training import intent_classifier
from crowddesk.nlu.classifier import CalibratedIntentClassifier
from crowddesk.nlu.encoders import Encoder, load_encoder

ENCODER_NAME = "all-MiniLM-L6-v2"
# Plain sklearn baselines at their usual strength: C=10 is the best of {1, 10, 100} for both on
# a BANKING77 validation split (see benchmarks/README.md).
_BASELINE_C = 10.0
_MAX_ITER = 5_000


class Contender(Protocol):
    name: str
    classes: list[str]  # column order of predict_proba, set by fit

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class CrowdDeskContender:
    name = "CrowdDesk"

    def __init__(self, settings: ClassifierSettings | None = None) -> None:
        self._settings = settings or ClassifierSettings()
        self._encoder: Encoder = load_encoder(ENCODER_NAME)
        self._classifier: CalibratedIntentClassifier | None = None
        self.classes: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        classifier = intent_classifier(self._settings)
        classifier.fit(texts, self._encoder.encode(texts), labels)
        self._classifier, self.classes = classifier, classifier.classes

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if self._classifier is None:
            raise RuntimeError("fit() first")
        return self._classifier.predict_proba(texts, self._encoder.encode(texts))


class _LogRegContender:
    """Shared fit / predict of the two sklearn baselines; subclasses say how texts become rows."""

    name = ""

    def __init__(self) -> None:
        self._model = LogisticRegression(C=_BASELINE_C, max_iter=_MAX_ITER)
        self.classes: list[str] = []

    def _fit_features(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        raise NotImplementedError

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        self._model.fit(self._fit_features(texts), list(labels))
        self.classes = [str(c) for c in self._model.classes_]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.predict_proba(self._features(texts)))


class TfidfLogRegBaseline(_LogRegContender):
    name = "TF-IDF + LR"

    def __init__(self) -> None:
        super().__init__()
        self._vectorizer = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True)

    def _fit_features(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectorizer.fit_transform(list(texts))

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        return self._vectorizer.transform(list(texts))


class FrozenMiniLMLogRegBaseline(_LogRegContender):
    name = "MiniLM + LR"

    def __init__(self) -> None:
        super().__init__()
        self._encoder = load_encoder(ENCODER_NAME)

    def _fit_features(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(texts)

    def _features(self, texts: Sequence[str]) -> np.ndarray:
        return self._encoder.encode(texts)


def all_contenders() -> list[Contender]:
    """CrowdDesk first: result tables print the baselines as ratios to it."""
    return [CrowdDeskContender(), TfidfLogRegBaseline(), FrozenMiniLMLogRegBaseline()]


@dataclass(frozen=True)
class Trained:
    contender: Contender
    train_seconds: float


def train_timed(contender: Contender, texts: Sequence[str], labels: Sequence[str]) -> Trained:
    started = time.perf_counter()
    contender.fit(texts, labels)
    return Trained(contender, time.perf_counter() - started)


def predictions(contender: Contender, probabilities: np.ndarray) -> np.ndarray:
    return np.asarray(contender.classes, dtype=object)[probabilities.argmax(axis=1)]


def accuracy(predicted: np.ndarray, labels: Sequence[str]) -> float:
    return float(np.mean(predicted == np.asarray(labels, dtype=object)))


def macro_f1(predicted: np.ndarray, labels: Sequence[str]) -> float:
    return float(f1_score(list(labels), list(predicted), average="macro"))
