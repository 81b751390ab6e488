"""The trained model artifact: a versioned directory under `models/`.

Layout (no pickles, so an artifact from elsewhere can't run code when loaded):
    models/<UTC timestamp>-<fingerprint[:12]>/
        metadata.json     format version, fingerprint, encoder, thresholds, calibration, report
        classifier/       CalibratedIntentClassifier.save() (absent: a dialogue-only model)
        entities.json     CombinedEntityExtractor.to_dict(): rules, lookups, synonyms, system entities
        entities.crfsuite the learned entity model (CRFsuite's format), when the data annotates entities
        kb_vectors.npz    the KB question embeddings computed in training (texts, vectors), so
                          a new database's embedding cache starts full instead of re-encoding
        encoder.onnx      the encoder exported to ONNX (when it can be), which servers run
                          with ONNX Runtime instead of torch
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from crowddesk.bot.dialogue.policy import RetrieverCalibration, Thresholds
from crowddesk.errors import CrowdDeskError
from crowddesk.nlu.classifier import CalibratedIntentClassifier
from crowddesk.nlu.combined_entities import CombinedEntityExtractor

MODEL_FORMAT_VERSION = 3
KB_VECTORS_FILE = "kb_vectors.npz"
CLASSIFIER_DIR = "classifier"
ENTITIES_FILE = "entities.json"
LEARNED_ENTITIES_FILE = "entities.crfsuite"
ENCODER_EXPORT_FILE = "encoder.onnx"


class ModelError(CrowdDeskError):
    """A model artifact is missing, incomplete or from an incompatible version."""


@dataclass
class TrainingReport:
    examples: int
    intents: int
    kb_entries: int
    target_precision: float
    answer_threshold: float
    expected_automation_rate: float
    expected_precision: float
    clarify_floor: float
    calibration_error: float
    train_seconds: float
    curve: list[dict[str, float]] = field(default_factory=list)
    # Open-set calibration: the share of unseen-topic traffic the threshold was chosen for, how
    # many held-out-intent predictions stood for it, and the operating point at other shares.
    unseen_topic_share: float = 0.0
    unseen_topic_examples: int = 0
    nearest_example_exponent: float = 0.0
    tradeoff: list[dict[str, float]] = field(default_factory=list)


@dataclass
class ModelMetadata:
    format_version: int
    fingerprint: str
    created_at: str
    encoder: str
    language: str
    thresholds: Thresholds
    retriever_calibration: RetrieverCalibration
    report: TrainingReport

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ModelMetadata:
        calibration = data["retriever_calibration"]
        return cls(
            format_version=data["format_version"],
            fingerprint=data["fingerprint"],
            created_at=data["created_at"],
            encoder=data["encoder"],
            language=data["language"],
            thresholds=Thresholds(**data["thresholds"]),
            retriever_calibration=RetrieverCalibration(
                tuple(calibration["scores"]), tuple(calibration["probabilities"])
            ),
            report=TrainingReport(**data["report"]),
        )


@dataclass
class TrainedModel:
    path: Path | None
    metadata: ModelMetadata
    classifier: CalibratedIntentClassifier | None
    """None for a dialogue-only model (no NLU data): only buttons and `/intent` payloads are understood."""
    entities: CombinedEntityExtractor
    kb_vectors: dict[str, np.ndarray] = field(default_factory=dict)
    """Embeddings of the project's KB question variants by text, from the model's encoder."""

    @property
    def encoder_export(self) -> Path | None:
        """Where this model keeps the ONNX export of its encoder, if it has one (None: not saved yet)."""
        return self.path / ENCODER_EXPORT_FILE if self.path is not None else None

    def save(self, models_dir: Path, *, export_encoder: Callable[[Path], None] | None = None) -> Path:
        """Write the artifact under `models_dir`; `export_encoder` writes the encoder's ONNX export to a path."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        target = models_dir / f"{stamp}-{self.metadata.fingerprint[:12]}"
        partial = target.with_name(target.name + ".partial")
        partial.mkdir(parents=True)
        if self.classifier is not None:
            self.classifier.save(partial / CLASSIFIER_DIR)
        (partial / ENTITIES_FILE).write_text(json.dumps(self.entities.to_dict()), encoding="utf-8")
        if self.entities.learned is not None:
            (partial / LEARNED_ENTITIES_FILE).write_bytes(self.entities.learned.model)
        _save_vectors(partial / KB_VECTORS_FILE, self.kb_vectors)
        if export_encoder is not None:
            export_encoder(partial / ENCODER_EXPORT_FILE)
        # metadata.json is written last: its presence marks a complete artifact.
        (partial / "metadata.json").write_text(json.dumps(self.metadata.to_json(), indent=2), encoding="utf-8")
        partial.rename(target)
        self.path = target
        return target

    @classmethod
    def load(cls, path: Path) -> TrainedModel:
        meta_file = path / "metadata.json"
        if not meta_file.is_file():
            raise ModelError(f"{path} is not a CrowdDesk model (no metadata.json)")
        try:
            raw = json.loads(meta_file.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise ModelError(f"{meta_file}: corrupt metadata ({exc})") from exc
        if raw.get("format_version") != MODEL_FORMAT_VERSION:
            raise ModelError(
                f"{path}: model format {raw.get('format_version')} is not supported by this "
                f"CrowdDesk (expects {MODEL_FORMAT_VERSION}); run `crowddesk train --force`"
            )
        metadata = ModelMetadata.from_json(raw)
        classifier = (
            CalibratedIntentClassifier.load(path / CLASSIFIER_DIR) if (path / CLASSIFIER_DIR).is_dir() else None
        )
        return cls(path, metadata, classifier, _load_entities(path), _load_vectors(path / KB_VECTORS_FILE))


def _load_entities(path: Path) -> CombinedEntityExtractor:
    learned = path / LEARNED_ENTITIES_FILE
    try:
        state = json.loads((path / ENTITIES_FILE).read_text(encoding="utf-8"))
        return CombinedEntityExtractor.from_dict(state, learned.read_bytes() if learned.is_file() else None)
    except (OSError, ValueError) as exc:  # JSONDecodeError is a ValueError
        raise ModelError(f"{path}: unreadable entity extractor ({exc}); run `crowddesk train --force`") from exc


def _save_vectors(path: Path, vectors: dict[str, np.ndarray]) -> None:
    texts = list(vectors)
    matrix = np.stack([vectors[t] for t in texts]) if texts else np.zeros((0, 0), np.float32)
    np.savez(path, texts=np.array(texts, dtype=str), vectors=matrix.astype(np.float32))


def _load_vectors(path: Path) -> dict[str, np.ndarray]:
    # Models trained before this file existed simply start with an empty cache.
    if not path.is_file():
        return {}
    try:
        with np.load(path, allow_pickle=False) as saved:
            texts, vectors = saved["texts"], saved["vectors"]
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise ModelError(f"{path}: corrupt KB vectors ({exc}); run `crowddesk train --force`") from exc
    if len(texts) != len(vectors):
        raise ModelError(f"{path}: {len(texts)} texts but {len(vectors)} vectors; run `crowddesk train --force`")
    return {str(text): vector for text, vector in zip(texts, vectors)}


def model_dirs(models_dir: Path) -> list[Path]:
    """Complete artifacts, oldest first (names start with a sortable UTC timestamp)."""
    if not models_dir.is_dir():
        return []
    return sorted(p for p in models_dir.iterdir() if (p / "metadata.json").is_file())


def latest_model_dir(models_dir: Path) -> Path | None:
    found = model_dirs(models_dir)
    return found[-1] if found else None


def fingerprint_of(model_dir: Path) -> str | None:
    try:
        return json.loads((model_dir / "metadata.json").read_text(encoding="utf-8"))["fingerprint"]
    except (OSError, json.JSONDecodeError, KeyError):
        return None
