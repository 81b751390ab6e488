"""`crowddesk evaluate nlu`: train the intent classifier on one set, score it on another.

The answer threshold is chosen on the TRAINING data only (held-out predictions from
`CalibratedIntentClassifier.fit`, unseen intents' at their configured share of traffic, as
`crowddesk train` does: `bot/evaluation/open_set.training_point`) and then
applied unchanged to the test messages, so the reported automation rate and precision are what
a deployed model would do on unseen traffic. Without a test set, k-fold cross-validation gives
every message one held-out prediction, each fold with its own training-only threshold.
Both take `unseen` intents to leave out of training (open-set mode, see bot/evaluation/open_set.py).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from crowddesk.bot.evaluation.metrics import (
    answer_curve,
    answered_point,
    classification_metrics,
    percent,
    rounded,
    share,
)
from crowddesk.bot.evaluation.open_set import DEFINITIONS as OPEN_SET_DEFINITIONS
from crowddesk.bot.evaluation.open_set import OpenSetScores, summary_rows, training_point
from crowddesk.bot.project.config import ClassifierSettings, PolicySettings, ProjectConfig
from crowddesk.bot.training.trainer import intent_classifier, never_answered_intents
from crowddesk.nlu.classifier import CalibratedIntentClassifier, stratified_folds
from crowddesk.nlu.encoders import Encoder, load_encoder
from crowddesk.nlu.types import TrainingExample

Progress = Callable[[str], None]
FOLD_SEED = 0

DEFINITIONS = {
    "intent.accuracy": "share of test messages whose top intent (argmax) is their label, "
    "out-of-scope messages included as a class",
    "intent.macro_f1": "unweighted mean F1 over every intent seen as a label or a prediction",
    "in_scope_accuracy": "share of in-scope test messages (label is not the out-of-scope intent) "
    "whose top intent is right (argmax, as in Larson et al. 2019)",
    "answered": "the top intent is neither the out-of-scope intent nor a hand-off intent and its "
    "confidence is >= the threshold; every other message is handed to a person",
    "operating_point.threshold": "chosen on the training data's out-of-fold probabilities as the "
    "lowest confidence reaching target_precision; never tuned on test. "
    "In cross-validation each fold applies its own (fold_thresholds); "
    "threshold is their mean",
    "operating_point.answered_share": "answered test messages / all test messages",
    "operating_point.answer_precision": "answered test messages whose top intent is right / "
    "answered test messages (1.0 when none is answered)",
    "out_of_scope.recall": "out-of-scope test messages handed off (predicted out of scope or "
    "below the threshold) / out-of-scope test messages",
    "out_of_scope.precision": "out-of-scope test messages handed off / test messages handed off; "
    "messages labelled with a hand-off intent are left out of both",
    "curve": "the same answered share and precision at every distinct test confidence",
    "errors": "every test message whose top intent is not its label, with where it came from",
    "train_seconds": "seconds spent encoding the training messages and fitting the classifier "
    "(all folds together in cross-validation)",
}


@dataclass(frozen=True)
class NluSettings:
    """What shapes the evaluated model: config.yml's, except an explicitly named OOS intent."""

    encoder: str
    classifier: ClassifierSettings
    policy: PolicySettings

    @classmethod
    def from_config(cls, config: ProjectConfig, out_of_scope_intent: str | None = None) -> NluSettings:
        policy = config.policy
        if out_of_scope_intent:
            policy = replace(policy, out_of_scope_intent=out_of_scope_intent)
        return cls(config.encoder.model, config.classifier, policy)


@dataclass(frozen=True)
class Predictions:
    """Per message: top intent, its confidence, whether that intent may be answered at all, and
    the threshold of the model that predicted it (folds have their own)."""

    intents: list[str]
    confidences: np.ndarray
    answerable: np.ndarray
    thresholds: np.ndarray

    @property
    def answered(self) -> np.ndarray:
        return self.answerable & (self.confidences >= self.thresholds)

    @staticmethod
    def in_message_order(parts: Sequence[tuple[np.ndarray, Predictions]]) -> Predictions:
        """Per-fold predictions, each with the message indices it covers, merged back in order."""
        order = np.argsort(np.concatenate([indices for indices, _ in parts]), kind="stable")
        intents = [intent for _, part in parts for intent in part.intents]

        def merged(field: str) -> np.ndarray:
            return np.concatenate([getattr(part, field) for _, part in parts])[order]

        return Predictions(
            [intents[i] for i in order], merged("confidences"), merged("answerable"), merged("thresholds")
        )


@dataclass(frozen=True)
class FittedModel:
    classifier: CalibratedIntentClassifier
    threshold: float
    train_answered_share: float
    train_answer_precision: float


class NluEvaluator:
    """Trains and scores with one set of settings; the encoder is loaded once."""

    def __init__(
        self, settings: NluSettings, *, encoder: Encoder | None = None, progress: Progress = lambda _: None
    ) -> None:
        self.settings = settings
        self.encoder = encoder or load_encoder(settings.encoder)
        self.progress = progress
        self._never_answered = never_answered_intents(settings.policy)

    def train_test(
        self, train: Sequence[TrainingExample], test: Sequence[TrainingExample], unseen: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        train = [e for e in train if e.intent not in unseen]
        started = time.perf_counter()
        self.progress(f"Encoding {len(train)} training messages")
        train_vectors = self.encoder.encode([e.text for e in train])
        self.progress("Training the intent classifier")
        model = self._fit(train, train_vectors)
        train_seconds = time.perf_counter() - started
        self.progress(f"Scoring {len(test)} test messages")
        predictions = self._predict(model, test, self.encoder.encode([e.text for e in test]))
        report = self._report(train, test, predictions, [model], train_seconds, unseen)
        return {"mode": "train/test", "folds": None, **report}

    def cross_validate(
        self, examples: Sequence[TrainingExample], folds: int, unseen: frozenset[str] = frozenset()
    ) -> dict[str, Any]:
        if not 2 <= folds <= len(examples):
            raise ValueError(f"folds must be between 2 and the number of messages ({len(examples)}), got {folds}")
        started = time.perf_counter()
        self.progress(f"Encoding {len(examples)} messages")
        vectors = self.encoder.encode([e.text for e in examples])
        class_index = {name: i for i, name in enumerate(sorted({e.intent for e in examples}))}
        label_idx = np.array([class_index[e.intent] for e in examples])
        fold_of = stratified_folds(label_idx, folds, FOLD_SEED)
        # Unseen intents' messages are dealt into folds like the rest but never trained on.
        trainable = np.array([e.intent not in unseen for e in examples], dtype=bool)
        models: list[FittedModel] = []
        parts: list[tuple[np.ndarray, Predictions]] = []
        for fold in range(folds):
            held_out = np.flatnonzero(fold_of == fold)
            kept = np.flatnonzero((fold_of != fold) & trainable)
            self.progress(f"Fold {fold + 1}/{folds}: training on {len(kept)}, testing on {len(held_out)} messages")
            model = self._fit([examples[i] for i in kept.tolist()], vectors[kept])
            models.append(model)
            held_out_examples = [examples[i] for i in held_out.tolist()]
            parts.append((held_out, self._predict(model, held_out_examples, vectors[held_out])))
        train_seconds = time.perf_counter() - started
        predictions = Predictions.in_message_order(parts)
        trained_on = [e for e in examples if e.intent not in unseen]
        report = self._report(trained_on, examples, predictions, models, train_seconds, unseen)
        return {"mode": "cross-validation", "folds": folds, **report}

    def _fit(self, examples: Sequence[TrainingExample], vectors: np.ndarray) -> FittedModel:
        """Train as `crowddesk train` does: the threshold is chosen on held-out predictions, unseen
        intents' included at the configured share of traffic."""
        labels = [e.intent for e in examples]
        policy = self.settings.policy
        classifier = intent_classifier(self.settings.classifier)
        out_of_fold = classifier.fit(
            [e.text for e in examples],
            vectors,
            labels,
            unseen_topic_share=policy.unseen_topic_share,
            target_precision=policy.target_precision,
            always_trained=self._never_answered,
        )
        point = training_point(classifier.classes, labels, out_of_fold, policy.target_precision, self._never_answered)
        return FittedModel(classifier, point.threshold, point.answered_share, point.precision)

    def _predict(self, model: FittedModel, examples: Sequence[TrainingExample], vectors: np.ndarray) -> Predictions:
        probabilities, confidences = model.classifier.predict([e.text for e in examples], vectors)
        intents, top_confidences, answerable = self._top(model.classifier, probabilities, confidences)
        return Predictions(intents, top_confidences, answerable, np.full(len(intents), model.threshold))

    def _top(
        self, classifier: CalibratedIntentClassifier, probabilities: np.ndarray, confidences: np.ndarray
    ) -> tuple[list[str], np.ndarray, np.ndarray]:
        """Most probable intent and its (open-set) confidence per row, and whether the bot may
        answer that intent."""
        top = probabilities.argmax(axis=1)
        intents = [classifier.classes[i] for i in top]
        answerable = np.array([intent not in self._never_answered for intent in intents], dtype=bool)
        return intents, confidences[np.arange(len(top)), top], answerable

    def _report(
        self,
        train: Sequence[TrainingExample],
        test: Sequence[TrainingExample],
        predictions: Predictions,
        models: Sequence[FittedModel],
        train_seconds: float,
        unseen: frozenset[str] = frozenset(),
    ) -> dict[str, Any]:
        s = self.settings.policy
        labels = np.array([e.intent for e in test])
        predicted = np.array(predictions.intents)
        correct = predicted == labels
        out_of_scope = labels == s.out_of_scope_intent
        handed_off = ~predictions.answered
        # A request for a person is neither out of scope nor answerable: left out of OOS scores.
        judged = ~np.isin(labels, s.handoff_intents)
        metrics = classification_metrics(labels.tolist(), predictions.intents)
        thresholds = [model.threshold for model in models]
        train_answer_precision = float(np.mean([m.train_answer_precision for m in models]))
        report: dict[str, Any] = {
            "settings": asdict(self.settings),
            "data": {
                "train_messages": len(train),
                "test_messages": len(test),
                "intents": len({e.intent for e in train}),
            },
            "train_seconds": round(train_seconds, 2),
            "intent": {key: metrics[key] for key in ("accuracy", "macro_f1", "per_intent")},
            "in_scope_accuracy": rounded(share(correct[~out_of_scope])),
            "out_of_scope": {
                "intent": s.out_of_scope_intent,
                "support": int(out_of_scope.sum()),
                "recall": rounded(share(handed_off[out_of_scope])),
                # Without out-of-scope test messages, "how many hand-offs were out of scope" is moot.
                "precision": rounded(share(out_of_scope[handed_off & judged])) if out_of_scope.any() else None,
            },
            "operating_point": {
                "threshold": rounded(float(np.mean(thresholds))),
                "fold_thresholds": [rounded(t) for t in thresholds] if len(models) > 1 else None,
                "target_precision": s.target_precision,
                **answered_point(predictions.answered, correct),
                "train_answered_share": rounded(float(np.mean([m.train_answered_share for m in models]))),
                "train_answer_precision": rounded(train_answer_precision),
            },
            "curve": answer_curve(
                predictions.confidences[predictions.answerable], correct[predictions.answerable], len(labels)
            ),
            "confusion_matrix": metrics["confusion_matrix"],
            "most_confused": metrics["most_confused"],
            "unknown_test_intents": sorted({e.intent for e in test} - {e.intent for e in train}),
            "errors": [
                {
                    "source": example.source,
                    "text": example.text,
                    "intent": example.intent,
                    "predicted": intent,
                    "confidence": rounded(confidence),
                    "answered": bool(answered),
                }
                for example, intent, confidence, answered in zip(
                    test, predictions.intents, predictions.confidences, predictions.answered
                )
                if intent != example.intent
            ],
            "definitions": DEFINITIONS,
        }
        if unseen:
            is_unseen = np.isin(labels, sorted(unseen))
            report["open_set"] = {
                "unseen_intents": sorted(unseen),
                "unseen_support": int(is_unseen.sum()),
                **OpenSetScores.of(
                    correct=correct,
                    answered=predictions.answered,
                    unseen=is_unseen,
                    in_scope=judged & ~out_of_scope & ~is_unseen,
                    claimed_precision=train_answer_precision,
                ).as_dict(),
                "curve_without_unseen": answer_curve(
                    predictions.confidences[predictions.answerable & ~is_unseen],
                    correct[predictions.answerable & ~is_unseen],
                    int((~is_unseen).sum()),
                ),
            }
            report["definitions"] = {**DEFINITIONS, **OPEN_SET_DEFINITIONS}
        return report


def summary_lines(report: dict[str, Any]) -> list[str]:
    """The short terminal table."""
    point, oos = report["operating_point"], report["out_of_scope"]
    data = report["data"]
    mode = (
        f"{report['folds']}-fold cross-validation on {data['test_messages']} messages"
        if report["folds"]
        else f"{data['train_messages']} training / {data['test_messages']} test messages"
    )
    rows = [
        ("intent accuracy", percent(report["intent"]["accuracy"])),
        ("macro F1", f"{report['intent']['macro_f1']:.3f}"),
        ("in-scope accuracy", percent(report["in_scope_accuracy"])),
        (f"out-of-scope recall ({oos['support']})", percent(oos["recall"])),
        ("out-of-scope precision", percent(oos["precision"])),
        ("answer threshold", f"{point['threshold']:.3f} (chosen on training data)"),
        ("answered automatically", percent(point["answered_share"])),
        (f"answer precision (target {percent(point['target_precision'])})", percent(point["answer_precision"])),
        ("train seconds", f"{report['train_seconds']:.1f}"),
    ]
    width = max(len(name) for name, _ in rows)
    lines = [f"NLU evaluation: {mode}, {data['intents']} intents", *(f"  {n:<{width}}  {v}" for n, v in rows)]
    if report["most_confused"]:
        lines.append(
            "  most confused: "
            + "; ".join(
                f"{pair['intent']} -> {pair['predicted']} ({pair['count']})" for pair in report["most_confused"][:3]
            )
        )
    if "open_set" in report:
        lines += open_set_lines(report["open_set"])
    if report["unknown_test_intents"]:
        lines.append(f"  test intents absent from training: {', '.join(report['unknown_test_intents'])}")
    return lines


def open_set_lines(open_set: dict[str, Any]) -> list[str]:
    """The open-set rows of the terminal table."""
    rows = summary_rows(open_set, "intents")
    width = max(len(name) for name, _ in rows)
    return ["  open set:", *(f"    {n:<{width}}  {v}" for n, v in rows)]
