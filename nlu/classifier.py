"""Intent classifier: logistic regression over embeddings (+ TF-IDF) with temperature calibration,
and an open-set calibration of its confidences (`nlu/open_set.py`).

Saved as numpy .npz + JSON, never pickle, so an artifact can't run code when loaded.
"""

from __future__ import annotations

import json
import os
import zipfile
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
from joblib import Parallel, delayed
from scipy import sparse
from sklearn.linear_model import LogisticRegression

from crowddesk.errors import CrowdDeskError
from crowddesk.nlu.calibration import fit_temperature, softmax
from crowddesk.nlu.lexical import LexicalFeatures
from crowddesk.nlu.nearest_examples import NearestExamples
from crowddesk.nlu.open_set import (
    HeldOutScores,
    KnownTopicCalibration,
    fit_known_topic_calibration,
    traffic_weights,
)

FORMAT_VERSION = 2
SETTINGS_FILE = "intent_classifier.json"
ARRAYS_FILE = "intent_classifier.npz"
# lbfgs on unit-norm features converges in a few hundred iterations; the margin avoids a
# ConvergenceWarning on large, nearly separable training sets.
_MAX_ITER = 10_000


class ClassifierArtifactError(CrowdDeskError, ValueError):
    """A saved classifier is missing, corrupt, or written by an incompatible version."""


@dataclass(frozen=True)
class _LinearHead:
    """Logits = features @ coef.T + intercept, one row of coef per class (binary included)."""

    coef: np.ndarray  # (n_classes, n_features)
    intercept: np.ndarray  # (n_classes,)

    @cached_property
    def _coef_columns(self) -> np.ndarray:
        # Sparse @ dense needs a C-contiguous right operand; given the transposed view `coef.T`,
        # scipy copies the whole (n_features, n_classes) matrix on every call (~6 ms a message).
        return np.ascontiguousarray(self.coef.T)

    def logits(self, embeddings: np.ndarray, lexical: sparse.csr_matrix | None) -> np.ndarray:
        """Logits of the features [embeddings | lexical], without building that matrix: stacking
        a dense block onto a sparse one cost more than the product itself."""
        columns = self._coef_columns
        logits = embeddings @ columns[: embeddings.shape[1]] + self.intercept
        if lexical is not None:
            logits += np.asarray(lexical @ columns[embeddings.shape[1] :])
        return logits


def _fit_head(
    features: sparse.csr_matrix | np.ndarray,
    label_idx: np.ndarray,
    n_classes: int,
    *,
    regularization: float,
) -> _LinearHead:
    """Fit multinomial logistic regression; classes absent from `label_idx` get logit -inf.

    Absent classes happen in calibration folds when a class has fewer examples than folds.
    """
    present = np.unique(label_idx)
    coef = np.zeros((n_classes, features.shape[1]), dtype=np.float64)
    intercept = np.full(n_classes, -np.inf)
    if len(present) == 1:
        # Only one class to learn from: a constant predictor for it.
        intercept[present[0]] = 0.0
        return _LinearHead(coef, intercept)
    model = LogisticRegression(C=regularization, solver="lbfgs", max_iter=_MAX_ITER)
    model.fit(features, label_idx)
    if len(present) == 2:
        # sklearn keeps a single row for binary problems; split it symmetrically so that
        # softmax over the two rows equals its sigmoid.
        half_coef, half_intercept = model.coef_[0] / 2, model.intercept_[0] / 2
        coef[present[0]], coef[present[1]] = -half_coef, half_coef
        intercept[present[0]], intercept[present[1]] = -half_intercept, half_intercept
    else:
        coef[present] = model.coef_
        intercept[present] = model.intercept_
    return _LinearHead(coef, intercept)


def _fit_parts(
    texts: list[str],
    embeddings: np.ndarray,
    label_idx: np.ndarray,
    n_classes: int,
    *,
    lexical_features: bool,
    regularization: float,
) -> tuple[LexicalFeatures | None, _LinearHead]:
    lexical = LexicalFeatures.fit(texts) if lexical_features else None
    head = _fit_head(_features(lexical, texts, embeddings), label_idx, n_classes, regularization=regularization)
    return lexical, head


def _features(
    lexical: LexicalFeatures | None, texts: Sequence[str], embeddings: np.ndarray
) -> sparse.csr_matrix | np.ndarray:
    if lexical is None:
        return embeddings
    return sparse.hstack([sparse.csr_matrix(embeddings), lexical.transform(texts)], format="csr")


def _lexical_rows(lexical: LexicalFeatures | None, texts: Sequence[str]) -> sparse.csr_matrix | None:
    return None if lexical is None else lexical.transform(texts)


@dataclass(frozen=True)
class _HeldOut:
    """Predictions for training examples by models not fitted on them: logits, and each example's
    similarity to the nearest example of every class those models learned from."""

    rows: np.ndarray  # indices of the examples
    logits: np.ndarray  # (len(rows), classes)
    nearest: np.ndarray  # (len(rows), classes)

    @classmethod
    def joined(cls, parts: Sequence[_HeldOut], n_classes: int) -> _HeldOut:
        if not parts:
            return cls(np.zeros(0, dtype=np.int64), np.zeros((0, n_classes)), np.zeros((0, n_classes)))
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in ("rows", "logits", "nearest")))

    def in_row_order(self) -> _HeldOut:
        order = np.argsort(self.rows, kind="stable")
        return _HeldOut(self.rows[order], self.logits[order], self.nearest[order])

    def nearest_to_top(self, probabilities: np.ndarray) -> np.ndarray:
        """Per example, the similarity to the nearest example of its most probable class."""
        return self.nearest[np.arange(len(self.rows)), probabilities.argmax(axis=1)]


def _predict_held_out(
    model: tuple[LexicalFeatures | None, _LinearHead],
    held: np.ndarray,
    texts: Sequence[str],
    embeddings: np.ndarray,
    label_idx: np.ndarray,
    n_classes: int,
) -> _HeldOut:
    """`model` (fitted on the examples outside the mask `held`) on the examples inside it."""
    rows = np.flatnonzero(held)
    lexical, head = model
    logits = head.logits(embeddings[rows], _lexical_rows(lexical, [texts[i] for i in rows.tolist()]))
    nearest = NearestExamples(embeddings[~held], label_idx[~held], n_classes).similarity(embeddings[rows])
    return _HeldOut(rows, logits, nearest)


def stratified_folds(label_idx: np.ndarray, n_folds: int, seed: int) -> np.ndarray:
    """Fold number per example, each class dealt round-robin over the folds.

    sklearn's StratifiedKFold warns when a class has fewer members than folds, which is normal
    here (FAQ intents often have 2-3 examples); dealing by hand handles that without a warning.
    Each class starts where the previous one stopped, so small classes don't all pile into
    fold 0 and every fold gets an example as long as there are at least `n_folds` examples.
    """
    rng = np.random.default_rng(seed)
    folds = np.empty(len(label_idx), dtype=np.int64)
    offset = 0
    for cls in np.unique(label_idx):
        members = rng.permutation(np.flatnonzero(label_idx == cls))
        folds[members] = (offset + np.arange(len(members))) % n_folds
        offset += len(members)
    return folds


def intent_groups(n_classes: int, n_groups: int, seed: int, always_trained: frozenset[int]) -> list[np.ndarray]:
    """Classes split into up to `n_groups` groups to hold out, one group per model; classes in
    `always_trained` are never held out. Empty when holding out a group would leave fewer than two
    classes to learn."""
    eligible = np.random.default_rng(seed).permutation([c for c in range(n_classes) if c not in always_trained])
    groups = [group for group in np.array_split(eligible, min(n_groups, len(eligible))) if len(group)]
    if not groups or n_classes - max(len(group) for group in groups) < 2:
        return []
    return groups


@dataclass(frozen=True)
class OutOfFold:
    """Held-out predictions made while training, for choosing thresholds without refitting.

    Every example is predicted by a model not fitted on it (`probabilities`, and `confidences`,
    the open-set calibrated view the bot acts on). Examples in `unseen_rows` are predicted once
    more by a model that never learned their intent: what a topic nobody trained on looks like.
    One such prediction weighs `unseen_weight` against a known-topic prediction's 1, so that
    unseen topics make up the configured share of traffic.
    """

    probabilities: np.ndarray  # (n, classes)
    confidences: np.ndarray  # (n, classes)
    unseen_rows: np.ndarray  # indices into the training examples
    unseen_probabilities: np.ndarray  # (len(unseen_rows), classes)
    unseen_confidences: np.ndarray  # (len(unseen_rows), classes)
    unseen_weight: float

    def with_unseen(self, labels: Sequence[str]) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
        """Every held-out prediction, known-topic rows first, then unseen-topic rows: probabilities,
        confidences, each row's label (of `labels`, the training labels) and its weight in traffic."""
        return (
            np.concatenate([self.probabilities, self.unseen_probabilities]),
            np.concatenate([self.confidences, self.unseen_confidences]),
            list(labels) + [labels[i] for i in self.unseen_rows],
            np.concatenate([np.ones(len(self.probabilities)), np.full(len(self.unseen_rows), self.unseen_weight)]),
        )


class CalibratedIntentClassifier:
    """Ranks intents for a message: `predict_proba` gives temperature-calibrated probabilities,
    `predict` also the open-set confidences (how likely the answer is right, unseen topics
    included)."""

    def __init__(
        self,
        *,
        lexical_features: bool = True,
        regularization: float = 10.0,
        calibration_folds: int = 5,
        random_state: int = 0,
    ) -> None:
        if regularization <= 0:
            raise ValueError(f"regularization must be > 0, got {regularization}")
        if calibration_folds < 2:
            raise ValueError(f"calibration_folds must be >= 2, got {calibration_folds}")
        self.lexical_features = lexical_features
        self.regularization = regularization
        self.calibration_folds = calibration_folds
        self.random_state = random_state
        self.classes: list[str] = []
        self.temperature: float = 1.0
        self._embedding_dim = 0
        self._lexical: LexicalFeatures | None = None
        self._head: _LinearHead | None = None
        self._nearest: NearestExamples | None = None
        self.known_topic = KnownTopicCalibration.identity()

    # ---- training -----------------------------------------------------------------------

    def fit(
        self,
        texts: Sequence[str],
        embeddings: np.ndarray,
        labels: Sequence[str],
        *,
        progress: Callable[[str], None] | None = None,
        unseen_topic_share: float = 0.0,
        target_precision: float = 0.95,
        always_trained: Collection[str] = (),
    ) -> OutOfFold:
        """Train, and return held-out predictions of every example (see `OutOfFold`).

        With `unseen_topic_share` > 0, whole groups of intents (never one of `always_trained`)
        are also held out, one model per group, and the open-set calibration is fitted on the
        mix: `target_precision` picks how much the distance to the nearest training example
        counts."""
        if not 0.0 <= unseen_topic_share < 1.0:
            raise ValueError(f"unseen_topic_share must be in [0, 1), got {unseen_topic_share}")
        texts = list(texts)
        embeddings = self._check_inputs(texts, embeddings, expected_dim=None)
        if len(labels) != len(texts):
            raise ValueError(f"got {len(texts)} texts but {len(labels)} labels")
        classes = sorted(set(labels))
        if len(classes) < 2:
            raise ValueError(f"an intent classifier needs at least 2 intents, got {len(classes)}: {classes}")
        report = progress or (lambda _message: None)
        class_index = {name: i for i, name in enumerate(classes)}
        label_idx = np.array([class_index[label] for label in labels], dtype=np.int64)

        n_folds = min(self.calibration_folds, len(texts))  # every fold gets an example
        folds = stratified_folds(label_idx, n_folds, self.random_state)
        groups = (
            intent_groups(
                len(classes),
                self.calibration_folds,
                self.random_state,
                frozenset(class_index[name] for name in always_trained if name in class_index),
            )
            if unseen_topic_share > 0
            else []
        )
        group_members = [np.isin(label_idx, group) for group in groups]
        # The fold models, the models without a group of intents and the final model are
        # independent: fit them side by side.
        subsets = (
            [folds != fold for fold in range(n_folds)]
            + [~members for members in group_members]
            + [np.ones(len(texts), dtype=bool)]
        )
        workers = min(len(subsets), os.cpu_count() or 1)
        without_groups = f", {len(groups)} models each without a group of intents," if groups else ""
        report(f"fitting {n_folds} calibration folds{without_groups} and the final model on {workers} cores")
        fitted = Parallel(n_jobs=workers)(
            delayed(_fit_parts)(
                [t for t, keep in zip(texts, subset) if keep],
                embeddings[subset],
                label_idx[subset],
                len(classes),
                lexical_features=self.lexical_features,
                regularization=self.regularization,
            )
            for subset in subsets
        )

        def predicted(
            models: Sequence[tuple[LexicalFeatures | None, _LinearHead]], held: Sequence[np.ndarray]
        ) -> _HeldOut:
            return _HeldOut.joined(
                [
                    _predict_held_out(model, rows, texts, embeddings, label_idx, len(classes))
                    for model, rows in zip(models, held)
                ],
                len(classes),
            )

        seen = predicted(fitted[:n_folds], [folds == fold for fold in range(n_folds)]).in_row_order()
        unseen = predicted(fitted[n_folds:-1], group_members)

        # An example whose class was missing from its fold's training part has no finite logit
        # for its label; it says nothing about temperature, but stays in the returned (honest)
        # out-of-fold probabilities as a miss.
        usable = np.isfinite(seen.logits[np.arange(len(texts)), label_idx])
        self.temperature = fit_temperature(seen.logits[usable], label_idx[usable]) if usable.any() else 1.0
        probabilities = softmax(seen.logits, self.temperature)
        unseen_probabilities = softmax(unseen.logits, self.temperature)
        seen_nearest, unseen_nearest = seen.nearest_to_top(probabilities), unseen.nearest_to_top(unseen_probabilities)

        # No unseen topics expected (or too few intents to hold any out): the temperature-scaled
        # probabilities are the confidences, as they are calibrated on known topics.
        seen_weight, unseen_weight = traffic_weights(len(texts), len(unseen.rows), unseen_topic_share)
        self.known_topic = (
            KnownTopicCalibration.identity()
            if not groups
            else fit_known_topic_calibration(
                HeldOutScores(
                    top_probability=np.concatenate([probabilities.max(axis=1), unseen_probabilities.max(axis=1)]),
                    nearest=np.concatenate([seen_nearest, unseen_nearest]),
                    correct=np.concatenate(
                        [probabilities.argmax(axis=1) == label_idx, np.zeros(len(unseen.rows), dtype=bool)]
                    ),
                    weights=np.concatenate(
                        [np.full(len(texts), seen_weight), np.full(len(unseen.rows), unseen_weight)]
                    ),
                ),
                target_precision,
            )
        )
        if groups:
            report(
                f"open-set calibration: {len(unseen.rows)} messages of held-out intents weighted to "
                f"{unseen_topic_share:.0%} of traffic; nearest-example exponent "
                f"{self.known_topic.exponent:g}"
            )

        self.classes = classes
        self._embedding_dim = embeddings.shape[1]
        self._lexical, self._head = fitted[-1]
        self._nearest = NearestExamples(embeddings, label_idx, len(classes))
        return OutOfFold(
            probabilities=probabilities,
            confidences=self.known_topic(probabilities, seen_nearest),
            unseen_rows=unseen.rows,
            unseen_probabilities=unseen_probabilities,
            unseen_confidences=self.known_topic(unseen_probabilities, unseen_nearest),
            unseen_weight=unseen_weight,
        )

    @staticmethod
    def _check_inputs(texts: Sequence[str], embeddings: np.ndarray, expected_dim: int | None) -> np.ndarray:
        embeddings = np.asarray(embeddings, dtype=np.float64)
        if embeddings.ndim != 2 or embeddings.shape[0] != len(texts):
            raise ValueError(f"embeddings must be (n_texts, dim) = ({len(texts)}, dim), got {embeddings.shape}")
        if expected_dim is not None and embeddings.shape[1] != expected_dim:
            raise ValueError(
                f"embeddings have dimension {embeddings.shape[1]}, but the classifier was trained "
                f"on dimension {expected_dim} (was the encoder changed?)"
            )
        return embeddings

    # ---- prediction ---------------------------------------------------------------------

    def predict_proba(self, texts: Sequence[str], embeddings: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, shape (n, len(classes)), columns in `self.classes` order."""
        if self._head is None:
            raise RuntimeError("the intent classifier is not trained; call fit() or load()")
        texts = list(texts)
        embeddings = self._check_inputs(texts, embeddings, expected_dim=self._embedding_dim)
        if not texts:
            return np.zeros((0, len(self.classes)))
        logits = self._head.logits(embeddings, _lexical_rows(self._lexical, texts))
        return softmax(logits, self.temperature)

    def predict(self, texts: Sequence[str], embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, confidences), both (n, len(classes)): the confidences are the open-set
        calibrated "probability this intent's answer is right", in the same order per row."""
        probabilities = self.predict_proba(texts, embeddings)
        if not len(probabilities) or self._nearest is None:
            return probabilities, probabilities
        nearest = self._nearest.similarity_to(embeddings, probabilities.argmax(axis=1))
        return probabilities, self.known_topic(probabilities, nearest)

    # ---- persistence --------------------------------------------------------------------

    def save(self, directory: Path) -> None:
        if self._head is None:
            raise RuntimeError("cannot save an untrained intent classifier")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {
            "coef": self._head.coef,
            "intercept": self._head.intercept,
        }
        if self._nearest is not None:
            arrays["example_vectors"] = self._nearest.vectors
            arrays["example_labels"] = self._nearest.label_idx
        settings: dict[str, Any] = {
            "format_version": FORMAT_VERSION,
            "classes": self.classes,
            "temperature": self.temperature,
            "embedding_dim": self._embedding_dim,
            "lexical_features": self.lexical_features,
            "regularization": self.regularization,
            "calibration_folds": self.calibration_folds,
            "random_state": self.random_state,
            "known_topic": {
                "exponent": self.known_topic.exponent,
                "scores": list(self.known_topic.scores),
                "probabilities": list(self.known_topic.probabilities),
            },
        }
        if self._lexical is not None:
            settings["lexical_vocabularies"] = self._lexical.vocabularies()
            for block, idf in self._lexical.idf_arrays().items():
                arrays[f"idf_{block}"] = idf
        np.savez(directory / ARRAYS_FILE, allow_pickle=False, **arrays)  # loaded without pickle too
        (directory / SETTINGS_FILE).write_text(json.dumps(settings, ensure_ascii=False), encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> CalibratedIntentClassifier:
        directory = Path(directory)
        settings_path, arrays_path = directory / SETTINGS_FILE, directory / ARRAYS_FILE
        for path in (settings_path, arrays_path):
            if not path.is_file():
                raise ClassifierArtifactError(f"intent classifier artifact missing: {path}")
        try:
            settings = json.loads(settings_path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ClassifierArtifactError(f"{settings_path}: not valid JSON ({err})") from err
        if not isinstance(settings, dict):
            raise ClassifierArtifactError(f"{settings_path}: expected a JSON object")
        version = settings.get("format_version")
        if version != FORMAT_VERSION:
            raise ClassifierArtifactError(
                f"{settings_path}: format_version {version!r} is not supported (this version "
                f"reads {FORMAT_VERSION}); retrain the model"
            )
        try:
            with np.load(arrays_path, allow_pickle=False) as stored:
                arrays = {name: stored[name] for name in stored.files}
        except (OSError, ValueError, zipfile.BadZipFile) as err:
            raise ClassifierArtifactError(f"{arrays_path}: cannot read arrays ({err})") from err
        try:
            return cls._from_saved(settings, arrays)
        except (KeyError, TypeError, ValueError) as err:
            raise ClassifierArtifactError(f"{directory}: inconsistent intent classifier artifact ({err!r})") from err

    @classmethod
    def _from_saved(cls, settings: dict[str, Any], arrays: dict[str, np.ndarray]) -> CalibratedIntentClassifier:
        classifier = cls(
            lexical_features=bool(settings["lexical_features"]),
            regularization=float(settings["regularization"]),
            calibration_folds=int(settings["calibration_folds"]),
            random_state=int(settings["random_state"]),
        )
        classifier.classes = [str(name) for name in settings["classes"]]
        classifier.temperature = float(settings["temperature"])
        classifier._embedding_dim = int(settings["embedding_dim"])
        if classifier.lexical_features:
            classifier._lexical = LexicalFeatures.from_state(
                settings["lexical_vocabularies"],
                {name[len("idf_") :]: a for name, a in arrays.items() if name.startswith("idf_")},
            )
        lexical_dim = classifier._lexical.dimension if classifier._lexical else 0
        expected = (len(classifier.classes), classifier._embedding_dim + lexical_dim)
        coef, intercept = arrays["coef"], arrays["intercept"]
        if coef.shape != expected or intercept.shape != (expected[0],):
            raise ValueError(
                f"coef {coef.shape} / intercept {intercept.shape} do not match "
                f"{expected[0]} classes x {expected[1]} features"
            )
        if not classifier.temperature > 0:
            raise ValueError(f"temperature must be > 0, got {classifier.temperature}")
        classifier._head = _LinearHead(coef, intercept)
        known = settings["known_topic"]
        classifier.known_topic = KnownTopicCalibration(
            float(known["exponent"]), tuple(map(float, known["scores"])), tuple(map(float, known["probabilities"]))
        )
        if len(classifier.known_topic.scores) != len(classifier.known_topic.probabilities):
            raise ValueError("known_topic scores and probabilities differ in length")
        if "example_vectors" in arrays:
            vectors, example_labels = arrays["example_vectors"], arrays["example_labels"]
            if (
                vectors.ndim != 2
                or vectors.shape[1] != classifier._embedding_dim
                or example_labels.shape != (len(vectors),)
            ):
                raise ValueError(
                    f"example_vectors {vectors.shape} / example_labels {example_labels.shape} "
                    f"do not match embedding dimension {classifier._embedding_dim}"
                )
            classifier._nearest = NearestExamples(vectors, example_labels, len(classifier.classes))
        return classifier
