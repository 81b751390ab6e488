"""The contenders every accuracy benchmark trains side by side, behind one small interface.

- `CrowdDeskContender`: exactly what `crowddesk train` does for intents (encode the examples with
  the default encoder, fit `CalibratedIntentClassifier` with the default `ClassifierSettings`,
  out-of-fold calibration included).
- `tfidf_logreg`: word 1-2-gram TF-IDF + logistic regression, the classic text baseline.
- `frozen_minilm_logreg`: frozen MiniLM sentence embeddings + logistic regression.

Training time is wall time of the whole `fit`, encoding included. Benchmarks that fit many times
on the same texts pass one (caching) encoder to share.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import f1_score

from crowddesk.bot.project.config import ClassifierSettings, PolicySettings, never_answered_intents
from crowddesk.bot.training.trainer import intent_classifier
from crowddesk.nlu.classifier import CalibratedIntentClassifier, OutOfFold
from crowddesk.nlu.encoders import Encoder, load_encoder

ENCODER_NAME = "all-MiniLM-L6-v2"
# The regularisation CrowdDesk's default head uses, so the baselines differ from it in features
# only.
_BASELINE_C = 10.0
_MAX_ITER = 5_000


class Contender(Protocol):
    name: str
    classes: list[str]  # column order of predict_proba, set by fit

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None: ...

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray: ...


class CrowdDeskContender:
    def __init__(
        self,
        settings: ClassifierSettings | None = None,
        encoder: Encoder | None = None,
        policy: PolicySettings | None = None,
        name: str = "CrowdDesk",
    ) -> None:
        self.name = name
        self._settings = settings or ClassifierSettings()
        self.policy = policy or PolicySettings()
        self._encoder: Encoder = encoder or load_encoder(ENCODER_NAME)
        self._classifier: CalibratedIntentClassifier | None = None
        self.classes: list[str] = []
        # The held-out predictions of the last fit: what `crowddesk train` chooses its answer
        # threshold on.
        self.out_of_fold: OutOfFold | None = None

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        classifier = intent_classifier(self._settings)
        self.out_of_fold = classifier.fit(
            texts,
            self._encoder.encode(texts),
            labels,
            unseen_topic_share=self.policy.unseen_topic_share,
            target_precision=self.policy.target_precision,
            always_trained=never_answered_intents(self.policy),
        )
        self._classifier, self.classes = classifier, classifier.classes

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.predict(texts)[0]

    def predict(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities and the open-set confidences the bot acts on."""
        if self._classifier is None:
            raise RuntimeError("fit() first")
        return self._classifier.predict(texts, self._encoder.encode(texts))


class _Featurizer(Protocol):
    def fit_transform(self, texts: list[str]) -> Any: ...

    def transform(self, texts: list[str]) -> Any: ...


class _FrozenEncoderFeatures:
    """An encoder seen as a featurizer: nothing to fit."""

    def __init__(self, encoder: Encoder) -> None:
        self._encoder = encoder

    def fit_transform(self, texts: list[str]) -> np.ndarray:
        return self.transform(texts)

    def transform(self, texts: list[str]) -> np.ndarray:
        return self._encoder.encode(texts)


class LogRegBaseline:
    """Features from `featurizer`, then multinomial logistic regression."""

    def __init__(self, name: str, featurizer: _Featurizer) -> None:
        self.name = name
        self._featurizer = featurizer
        self._model = LogisticRegression(C=_BASELINE_C, max_iter=_MAX_ITER)
        self.classes: list[str] = []

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> None:
        self._model.fit(self._featurizer.fit_transform(list(texts)), list(labels))
        self.classes = [str(c) for c in self._model.classes_]

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._model.predict_proba(self._featurizer.transform(list(texts))))


def tfidf_logreg() -> LogRegBaseline:
    return LogRegBaseline("TF-IDF + LR", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True))


def frozen_minilm_logreg(encoder: Encoder | None = None) -> LogRegBaseline:
    return LogRegBaseline("MiniLM + LR", _FrozenEncoderFeatures(encoder or load_encoder(ENCODER_NAME)))


def all_contenders(encoder: Encoder | None = None) -> list[Contender]:
    """CrowdDesk first: result tables print the baselines as ratios to it."""
    return [CrowdDeskContender(encoder=encoder), tfidf_logreg(), frozen_minilm_logreg(encoder)]


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
