"""`crowddesk train`: fit NLU, calibrate the answer thresholds on held-out folds, save an artifact.

Thresholds are chosen on out-of-fold predictions, never on the data a model was fitted on:
the classifier returns its out-of-fold probabilities, and the retriever is queried with each
training question left out of the index (`exclude_question`). The answer threshold is the
lowest confidence at which automated answers still reach `target_precision`.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from crowddesk.bot.config import ClassifierSettings, never_answered_intents
from crowddesk.bot.model import (
    MODEL_FORMAT_VERSION,
    ModelMetadata,
    TrainedModel,
    TrainingReport,
    fingerprint_of,
    latest_model_dir,
)
from crowddesk.bot.policy import (
    Option,
    RetrieverCalibration,
    SupportPolicy,
    Thresholds,
)
from crowddesk.bot.project import Project
from crowddesk.bot.wiring import faq_entries, intent_titles, rules_by_intent
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.calibration import choose_threshold, expected_calibration_error, precision_curve
from crowddesk.nlu.classifier import CalibratedIntentClassifier
from crowddesk.nlu.encoders import Encoder, load_encoder
from crowddesk.nlu.entities import RuleEntityExtractor
from crowddesk.nlu.types import IntentScore, Parse

Progress = Callable[[str], None]
CURVE_POINTS = 50


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    skipped: bool
    report: TrainingReport


def project_fingerprint(project: Project) -> str:
    """Changes whenever anything that shapes the model changes (data, domain, config, format)."""
    digest = hashlib.sha256()
    digest.update(f"crowddesk-model-v{MODEL_FORMAT_VERSION}".encode())
    digest.update(json.dumps(project.config.fingerprint_dict(), sort_keys=True).encode())
    for path in sorted(project.training_files()):
        digest.update(str(path.relative_to(project.root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def train(
    project: Project,
    models_dir: Path,
    *,
    force: bool = False,
    progress: Progress = lambda _: None,
    show_bars: bool = False,
) -> TrainResult:
    fingerprint = project_fingerprint(project)
    latest = latest_model_dir(models_dir)
    if not force and latest is not None and fingerprint_of(latest) == fingerprint:
        progress(f"Data and config unchanged since {latest.name}; skipping training (--force retrains).")
        return TrainResult(latest, True, TrainedModel.load(latest).metadata.report)

    started = time.perf_counter()
    examples = project.data.examples
    texts = [e.text for e in examples]
    labels = [e.intent for e in examples]
    if len(set(labels)) < 2:
        raise ValueError("training needs examples for at least two intents in data/")

    progress(f"[1/5] Loading encoder {project.config.encoder.model}")
    encoder = load_encoder(project.config.encoder.model)
    progress(f"[2/5] Encoding {len(texts)} training examples")
    vectors = encoder.encode(texts, show_progress=show_bars)

    progress(f"[3/5] Training the intent classifier ({len(set(labels))} intents)")
    classifier = intent_classifier(project.config.classifier)
    out_of_fold = classifier.fit(texts, vectors, labels, progress=progress)
    label_index = {name: i for i, name in enumerate(classifier.classes)}
    calibration_error = expected_calibration_error(
        out_of_fold, np.array([label_index[label] for label in labels])
    )

    progress("[4/5] Calibrating answer thresholds on held-out folds")
    entries = faq_entries(project)
    kb_vectors = _question_vectors(encoder, entries, dict(zip(texts, vectors)))
    retriever = FaissRetriever(
        entries, _stacked(entries, kb_vectors, encoder.dimension),
        lexical_weight=project.config.retriever.lexical_weight,
        index=project.config.retriever.index_settings(),
    )
    candidates = retriever.search_many(
        texts, vectors, top_k=project.config.retriever.top_k, exclude_questions=texts
    )
    entry_intents = {e.id: e.intent for e in entries if e.intent}
    retriever_calibration = _fit_retriever_calibration(candidates, labels, entry_intents)
    policy = SupportPolicy(
        project.config.policy,
        Thresholds(answer=0.0, clarify_floor=0.0),
        retriever_calibration,
        rule_intents=list(rules_by_intent(project)),
        entry_intents=entry_intents,
        entry_titles={e.id: e.title for e in entries},
        intent_titles=intent_titles(project),
    )
    thresholds, report = _choose_thresholds(
        project, policy, classifier.classes, out_of_fold, candidates, labels, entry_intents
    )
    report.calibration_error = calibration_error
    report.kb_entries = len(entries)

    progress("[5/5] Saving the model")
    report.train_seconds = round(time.perf_counter() - started, 2)
    model = TrainedModel(
        None,
        ModelMetadata(
            format_version=MODEL_FORMAT_VERSION,
            fingerprint=fingerprint,
            created_at=datetime.now(timezone.utc).isoformat(),
            encoder=encoder.name,
            language=project.config.language,
            thresholds=thresholds,
            retriever_calibration=retriever_calibration,
            report=report,
        ),
        classifier,
        RuleEntityExtractor(
            language=project.config.language,
            regexes=[(r.name, r.pattern) for r in project.data.regexes
                     if r.name in project.domain.entities],
            lookups=project.data.lookups,
            examples=examples,
            synonyms=project.data.synonyms,
        ),
        kb_vectors,
    )
    return TrainResult(model.save(models_dir), False, report)


def intent_classifier(settings: ClassifierSettings) -> CalibratedIntentClassifier:
    """An untrained intent classifier configured as config.yml says."""
    return CalibratedIntentClassifier(
        lexical_features=settings.lexical_features,
        regularization=settings.regularization,
        calibration_folds=settings.calibration_folds,
    )


def _question_vectors(
    encoder: Encoder, entries: Sequence[KBEntry], known: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Each distinct question variant of `entries` and its vector; encodes only what `known` lacks."""
    texts = list(dict.fromkeys(q for e in entries for q in e.questions))
    missing = [t for t in texts if t not in known]
    if missing:
        known = {**known, **dict(zip(missing, encoder.encode(missing)))}
    return {t: np.asarray(known[t], dtype=np.float32) for t in texts}


def _stacked(entries: Sequence[KBEntry], vectors: dict[str, np.ndarray], dimension: int) -> np.ndarray:
    """One row per question variant, entries in order, as the retriever expects."""
    rows = [vectors[q] for e in entries for q in e.questions]
    return np.stack(rows) if rows else np.zeros((0, dimension), dtype=np.float32)


def _fit_retriever_calibration(
    candidates: Sequence[Sequence[Candidate]], labels: Sequence[str], entry_intents: dict[str, str]
) -> RetrieverCalibration:
    scores, correct = [], []
    for found, label in zip(candidates, labels):
        if found:
            scores.append(found[0].score)
            correct.append(float(entry_intents.get(found[0].entry_id) == label))
    if len(set(correct)) < 2:
        return RetrieverCalibration((), ())
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct)
    return RetrieverCalibration(
        tuple(float(x) for x in iso.X_thresholds_), tuple(float(y) for y in iso.y_thresholds_)
    )


def _choose_thresholds(
    project: Project,
    policy: SupportPolicy,
    classes: Sequence[str],
    out_of_fold: np.ndarray,
    candidates: Sequence[Sequence[Candidate]],
    labels: Sequence[str],
    entry_intents: dict[str, str],
) -> tuple[Thresholds, TrainingReport]:
    settings = project.config.policy
    never_answered = never_answered_intents(settings)
    top_confidence, top_correct, in_top_k = [], [], []
    for probabilities, found, label in zip(out_of_fold, candidates, labels):
        ranking = [IntentScore(c, float(p)) for c, p in zip(classes, probabilities)]
        ranking.sort(key=lambda s: s.confidence, reverse=True)
        options = policy.options(Parse("", ranking[0], ranking[:10]), found)
        answerable = [o for o in options if not (o.kind == "intent" and o.key in never_answered)]
        if not options or options[0] is not (answerable[0] if answerable else None):
            continue  # the policy hands these off at any threshold
        top_confidence.append(options[0].confidence)
        top_correct.append(_is_right(options[0], label, entry_intents))
        in_top_k.append(any(_is_right(o, label, entry_intents)
                            for o in answerable[: settings.max_clarify_options]))
    confidence = np.array(top_confidence)
    correct = np.array(top_correct, dtype=bool)
    point = choose_threshold(confidence, correct, settings.target_precision)
    below = confidence < point.threshold
    clarify = choose_threshold(confidence[below], np.array(in_top_k, dtype=bool)[below],
                               settings.clarify_precision)
    clarify_floor = min(clarify.threshold, point.threshold)
    total = len(labels)
    curve = precision_curve(confidence, correct)
    step = max(1, len(curve) // CURVE_POINTS)
    report = TrainingReport(
        examples=total,
        intents=len(classes),
        kb_entries=0,
        target_precision=settings.target_precision,
        answer_threshold=round(point.threshold, 4),
        expected_automation_rate=round(point.answered / total, 4) if total else 0.0,
        expected_precision=round(point.precision, 4),
        clarify_floor=round(clarify_floor, 4),
        calibration_error=0.0,
        train_seconds=0.0,
        curve=[
            {"threshold": round(p.threshold, 4), "answered_share": round(p.answered / total, 4),
             "precision": round(p.precision, 4)}
            for p in curve[::step]
        ],
    )
    return Thresholds(answer=point.threshold, clarify_floor=clarify_floor), report


def _is_right(option: Option, label: str, entry_intents: dict[str, str]) -> bool:
    if option.kind == "kb":
        return entry_intents.get(option.key) == label
    return option.key == label

