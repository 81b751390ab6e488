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
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

import numpy as np
from sklearn.isotonic import IsotonicRegression

from crowddesk.bot.dialogue.policy import (
    Option,
    RetrieverCalibration,
    SupportPolicy,
    Thresholds,
)
from crowddesk.bot.project.config import ClassifierSettings, never_answered_intents
from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.wiring import dialogue_intents, faq_entries, intent_titles
from crowddesk.bot.training.model import (
    MODEL_FORMAT_VERSION,
    ModelMetadata,
    TrainedModel,
    TrainingReport,
    fingerprint_of,
    latest_model_dir,
)
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.calibration import choose_threshold, expected_calibration_error, precision_curve
from crowddesk.nlu.classifier import CalibratedIntentClassifier, OutOfFold
from crowddesk.nlu.combined_entities import CombinedEntityExtractor
from crowddesk.nlu.encoders import Encoder, MiniLMEncoder, load_encoder
from crowddesk.nlu.entities import RuleEntityExtractor
from crowddesk.nlu.learned_entities import CRFEntityExtractor
from crowddesk.nlu.open_set import traffic_weights
from crowddesk.nlu.system_entities import SystemEntityExtractor
from crowddesk.nlu.types import IntentScore, Parse

Progress = Callable[[str], None]
CURVE_POINTS = 50
# Shares of unseen-topic traffic `crowddesk train` reports the trade-off for, beside the configured one.
TRADEOFF_SHARES = (0.0, 0.05, 0.15, 0.3)


@dataclass(frozen=True)
class TrainResult:
    model_dir: Path
    skipped: bool
    report: TrainingReport


# A classifier needs two intents to tell apart.
MIN_INTENTS = 2
# A model with no classifier answers no free text: only buttons and payloads act.
NEVER_ANSWER = Thresholds(answer=1.0, clarify_floor=1.0)


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

    progress(f"[1/5] Loading encoder {project.config.encoder.model}")
    encoder = load_encoder(project.config.encoder.model)
    progress(f"[2/5] Encoding {len(texts)} training examples")
    vectors = encoder.encode(texts, show_progress=show_bars)
    if len(set(labels)) < MIN_INTENTS:
        progress(
            f"[3/5] No intent classifier: examples for {len(set(labels))} intent(s) in data/, fewer than "
            f"{MIN_INTENTS}. This model understands buttons and /intent messages only; any other text "
            "goes to a person (Rasa's core-only model)."
        )
        classifier, thresholds, retriever_calibration = None, NEVER_ANSWER, RetrieverCalibration((), ())
        entries = faq_entries(project)
        kb_vectors = _question_vectors(encoder, entries, dict(zip(texts, vectors)))
        report = _dialogue_only_report(project, len(texts), len(set(labels)), len(entries))
    else:
        classifier, thresholds, retriever_calibration, report, kb_vectors = _fit_understanding(
            project, encoder, texts, vectors, labels, progress
        )

    export = _onnx_export(encoder)
    progress(
        "[5/5] Training the entity extractor, exporting the encoder to ONNX and saving the model"
        if export is not None
        else "[5/5] Training the entity extractor and saving the model"
    )
    language = project.config.language
    entities = CombinedEntityExtractor(
        RuleEntityExtractor(
            language=language,
            regexes=[(r.name, r.pattern) for r in project.data.regexes if r.name in project.domain.entities],
            lookups=project.data.lookups,
            examples=examples,
            synonyms=project.data.synonyms,
        ),
        CRFEntityExtractor.train(examples, language),
        SystemEntityExtractor.for_entities(project.domain.entities, language),
    )
    report.train_seconds = round(time.perf_counter() - started, 2)
    model = TrainedModel(
        None,
        ModelMetadata(
            format_version=MODEL_FORMAT_VERSION,
            fingerprint=fingerprint,
            created_at=datetime.now(UTC).isoformat(),
            encoder=encoder.name,
            language=project.config.language,
            thresholds=thresholds,
            retriever_calibration=retriever_calibration,
            report=report,
        ),
        classifier,
        entities,
        kb_vectors,
    )
    return TrainResult(model.save(models_dir, export_encoder=export), False, report)


def _onnx_export(encoder: Encoder) -> Callable[[Path], None] | None:
    """What writes `encoder`'s ONNX export for servers to run without torch, if it has one."""
    if not isinstance(encoder, MiniLMEncoder):
        return None
    # Imported here: the exporter imports torch, and a server imports this module without training.
    from crowddesk.nlu.onnx_export import export_onnx

    return partial(export_onnx, encoder)


def _fit_understanding(
    project: Project,
    encoder: Encoder,
    texts: list[str],
    vectors: np.ndarray,
    labels: list[str],
    progress: Progress,
) -> tuple[CalibratedIntentClassifier, Thresholds, RetrieverCalibration, TrainingReport, dict[str, np.ndarray]]:
    """The intent classifier, the answer thresholds and retriever calibration chosen on held-out
    folds, the report, and the vectors of the KB's questions."""
    progress(f"[3/5] Training the intent classifier ({len(set(labels))} intents)")
    classifier = intent_classifier(project.config.classifier)
    settings = project.config.policy
    out_of_fold = classifier.fit(
        texts,
        vectors,
        labels,
        progress=progress,
        unseen_topic_share=settings.unseen_topic_share,
        target_precision=settings.target_precision,
        always_trained=never_answered_intents(settings),
    )
    label_index = {name: i for i, name in enumerate(classifier.classes)}
    calibration_error = expected_calibration_error(
        out_of_fold.probabilities, np.array([label_index[label] for label in labels])
    )

    progress("[4/5] Calibrating answer thresholds on held-out folds")
    entries = faq_entries(project)
    kb_vectors = _question_vectors(encoder, entries, dict(zip(texts, vectors)))
    retriever = FaissRetriever(
        entries,
        _stacked(entries, kb_vectors, encoder.dimension),
        lexical_weight=project.config.retriever.lexical_weight,
        context_weight=project.config.retriever.context_weight,
        index=project.config.retriever.index_settings(),
    )
    candidates = retriever.search_many(texts, vectors, top_k=project.config.retriever.top_k, exclude_questions=texts)
    entry_intents = {e.id: e.intent for e in entries if e.intent}
    # A message of an intent held out of the classifier also finds no entry of its own.
    entry_of_intent = {intent: entry for entry, intent in entry_intents.items()}
    unseen = out_of_fold.unseen_rows.tolist()
    unseen_candidates = retriever.search_many(
        [texts[i] for i in unseen],
        vectors[unseen],
        top_k=project.config.retriever.top_k,
        exclude_questions=[texts[i] for i in unseen],
        exclude_entries=[entry_of_intent.get(labels[i]) for i in unseen],
    )
    held_out = HeldOutTraffic.of(out_of_fold, candidates, unseen_candidates, labels)
    retriever_calibration = _fit_retriever_calibration(held_out, entry_intents)
    policy = SupportPolicy(
        project.config.policy,
        Thresholds(answer=0.0, clarify_floor=0.0),
        retriever_calibration,
        dialogue_intents=dialogue_intents(project),
        entry_intents=entry_intents,
        entry_titles={e.id: e.title for e in entries},
        intent_titles=intent_titles(project),
    )
    thresholds, report = _choose_thresholds(project, policy, classifier.classes, held_out, entry_intents)
    report.nearest_example_exponent = classifier.known_topic.exponent
    report.calibration_error = calibration_error
    report.kb_entries = len(entries)
    return classifier, thresholds, retriever_calibration, report, kb_vectors


def _dialogue_only_report(project: Project, examples: int, intents: int, kb_entries: int) -> TrainingReport:
    """A model without a classifier answers no free text: nothing is automated but buttons."""
    return TrainingReport(
        examples=examples,
        intents=intents,
        kb_entries=kb_entries,
        target_precision=project.config.policy.target_precision,
        answer_threshold=NEVER_ANSWER.answer,
        expected_automation_rate=0.0,
        expected_precision=0.0,
        clarify_floor=NEVER_ANSWER.clarify_floor,
        calibration_error=0.0,
        train_seconds=0.0,
    )


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


@dataclass(frozen=True)
class HeldOutTraffic:
    """Every held-out prediction training has, as the policy would see it: the known-topic ones
    (each training message scored by models not fitted on it) and the unseen-topic ones (scored
    by a classifier that never learned its intent, its FAQ entry removed from the candidates),
    weighted so that unseen topics make up `unseen_topic_share` of the traffic."""

    confidences: np.ndarray  # (rows, classes) open-set calibrated intent confidences
    candidates: list[list[Candidate]]
    labels: list[str]
    unseen: np.ndarray  # per row: the message's topic was unknown to the models that scored it
    unseen_weight: float

    @classmethod
    def of(
        cls,
        out_of_fold: OutOfFold,
        candidates: Sequence[Sequence[Candidate]],
        unseen_candidates: Sequence[Sequence[Candidate]],
        labels: Sequence[str],
    ) -> HeldOutTraffic:
        """`candidates` per training message, `unseen_candidates` per row of `out_of_fold.unseen_rows`."""
        _, confidences, all_labels, _ = out_of_fold.with_unseen(labels)
        return cls(
            confidences,
            [list(found) for found in candidates] + [list(found) for found in unseen_candidates],
            all_labels,
            np.arange(len(all_labels)) >= len(labels),
            out_of_fold.unseen_weight,
        )

    def weights(self, unseen_topic_share: float | None = None) -> np.ndarray:
        """Per row; `unseen_topic_share` re-weights for another share than training's."""
        weight = self.unseen_weight
        if unseen_topic_share is not None:
            weight = traffic_weights(int((~self.unseen).sum()), int(self.unseen.sum()), unseen_topic_share)[1]
        return np.where(self.unseen, weight, 1.0)


def _fit_retriever_calibration(held_out: HeldOutTraffic, entry_intents: dict[str, str]) -> RetrieverCalibration:
    """P(top entry is right) from its score, on known and unseen topics in their traffic shares."""
    scores, correct, weights = [], [], []
    for found, label, weight in zip(held_out.candidates, held_out.labels, held_out.weights()):
        if found and weight > 0:
            scores.append(found[0].score)
            correct.append(float(entry_intents.get(found[0].entry_id) == label))
            weights.append(weight)
    if len(set(correct)) < 2:
        return RetrieverCalibration((), ())
    iso = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(scores, correct, sample_weight=weights)
    return RetrieverCalibration(tuple(float(x) for x in iso.X_thresholds_), tuple(float(y) for y in iso.y_thresholds_))


@dataclass(frozen=True)
class _TopOptions:
    """The policy's top option per held-out row it might answer (rows it hands off at any
    threshold are left out, but count in the totals)."""

    confidence: np.ndarray
    correct: np.ndarray
    right_in_top_k: np.ndarray  # a clarification would offer the right answer
    rows: np.ndarray  # index into the held-out rows


def _top_options(
    policy: SupportPolicy, classes: Sequence[str], held_out: HeldOutTraffic, entry_intents: dict[str, str]
) -> _TopOptions:
    settings = policy.settings
    never_answered = never_answered_intents(settings)
    confidence, correct, in_top_k, rows = [], [], [], []
    for row, (scores, found, label) in enumerate(zip(held_out.confidences, held_out.candidates, held_out.labels)):
        ranking = [IntentScore(c, float(p)) for c, p in zip(classes, scores)]
        ranking.sort(key=lambda s: s.confidence, reverse=True)
        options = policy.options(Parse("", ranking[0], ranking[:10]), found)
        # Only what the dialogue can run counts as answered: an intent no rule or story handles
        # is handed off whatever the classifier's confidence.
        answerable = [
            o for o in options if o.kind == "kb" or (o.key not in never_answered and o.key in policy.dialogue_intents)
        ]
        if not options or options[0] is not (answerable[0] if answerable else None):
            continue  # the policy hands these off at any threshold
        confidence.append(options[0].confidence)
        correct.append(_is_right(options[0], label, entry_intents))
        in_top_k.append(any(_is_right(o, label, entry_intents) for o in answerable[: settings.max_clarify_options]))
        rows.append(row)
    return _TopOptions(
        np.array(confidence),
        np.array(correct, dtype=bool),
        np.array(in_top_k, dtype=bool),
        np.array(rows, dtype=np.int64),
    )


def _choose_thresholds(
    project: Project,
    policy: SupportPolicy,
    classes: Sequence[str],
    held_out: HeldOutTraffic,
    entry_intents: dict[str, str],
) -> tuple[Thresholds, TrainingReport]:
    settings = project.config.policy
    top = _top_options(policy, classes, held_out, entry_intents)
    all_weights = held_out.weights()
    weights = all_weights[top.rows]
    point = choose_threshold(top.confidence, top.correct, settings.target_precision, weights=weights)
    below = top.confidence < point.threshold
    clarify = choose_threshold(
        top.confidence[below], top.right_in_top_k[below], settings.clarify_precision, weights=weights[below]
    )
    clarify_floor = min(clarify.threshold, point.threshold)
    total_weight = float(all_weights.sum())
    curve = precision_curve(top.confidence, top.correct, weights)
    step = max(1, len(curve) // CURVE_POINTS)
    known = int((~held_out.unseen).sum())
    report = TrainingReport(
        examples=known,
        intents=len(classes),
        kb_entries=0,
        target_precision=settings.target_precision,
        answer_threshold=round(point.threshold, 4),
        expected_automation_rate=round(_answered_weight(top, weights, point.threshold) / total_weight, 4)
        if total_weight
        else 0.0,
        expected_precision=round(point.precision, 4),
        clarify_floor=round(clarify_floor, 4),
        calibration_error=0.0,
        train_seconds=0.0,
        curve=[
            {
                "threshold": round(p.threshold, 4),
                "answered_share": round(_answered_weight(top, weights, p.threshold) / total_weight, 4),
                "precision": round(p.precision, 4),
            }
            for p in curve[::step]
        ],
        unseen_topic_share=settings.unseen_topic_share if held_out.unseen.any() else 0.0,
        unseen_topic_examples=int(held_out.unseen.sum()),
        tradeoff=[_at_share(top, held_out, share, settings.target_precision) for share in TRADEOFF_SHARES]
        if held_out.unseen.any()
        else [],
    )
    return Thresholds(answer=point.threshold, clarify_floor=clarify_floor), report


def _answered_weight(top: _TopOptions, weights: np.ndarray, threshold: float) -> float:
    return float(weights[top.confidence >= threshold].sum())


def _at_share(top: _TopOptions, held_out: HeldOutTraffic, share: float, target_precision: float) -> dict[str, float]:
    """The threshold and what it gives if `share` of the traffic were about unseen topics."""
    all_weights = held_out.weights(share)
    weights = all_weights[top.rows]
    point = choose_threshold(top.confidence, top.correct, target_precision, weights=weights)
    answered = top.confidence >= point.threshold
    known = ~held_out.unseen[top.rows]
    return {
        "unseen_topic_share": share,
        "answer_threshold": round(point.threshold, 4),
        "expected_automation_rate": round(
            _answered_weight(top, weights, point.threshold) / float(all_weights.sum()), 4
        ),
        "expected_precision": round(point.precision, 4),
        "known_topics_answered_right": round(
            float((answered & top.correct & known).sum()) / max(1, int((~held_out.unseen).sum())), 4
        ),
        "unseen_topics_handed_off": round(
            1.0 - float((answered & ~known).sum()) / max(1, int(held_out.unseen.sum())), 4
        ),
    }


def _is_right(option: Option, label: str, entry_intents: dict[str, str]) -> bool:
    if option.kind == "kb":
        return entry_intents.get(option.key) == label
    return option.key == label
