"""The model artifact carries the KB question embeddings training computed, so a bot's first
start on a new database does not spend seconds of CPU encoding them again."""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.wiring import faq_entries
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.model import KB_VECTORS_FILE, LEARNED_ENTITIES_FILE, ModelError, TrainedModel
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.nlu.onnx_encoder import load_served_encoder


def test_a_new_database_starts_without_encoding_what_training_encoded(
    demo_project: Path, demo_training: TrainResult, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = TrainedModel.load(demo_training.model_dir)
    encoder = load_served_encoder(model.metadata.encoder, model.encoder_export)  # the server's own
    encoded: list[str] = []
    real_encode = encoder.encode

    def recording_encode(texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        encoded.extend(texts)
        return real_encode(texts, show_progress=show_progress)

    monkeypatch.setattr(encoder, "encode", recording_encode)
    bot = assemble(demo_project, model_dir=demo_training.model_dir, database_url=f"sqlite:///{tmp_path / 'new.db'}")
    try:
        questions = [q for e in faq_entries(load_project(demo_project)) for q in e.questions]
        assert len(questions) > 100
        assert encoded == []
        cached = KnowledgeBaseStore(bot.database).cached_vectors(encoder.name, questions)
        assert set(cached) == set(questions)
        sample = questions[0]
        assert np.array_equal(cached[sample], model.kb_vectors[sample])
        # The seeded vectors are the encoder's own, so answers match a cache filled at run time.
        assert float(cached[sample] @ real_encode([sample])[0]) > 0.999
    finally:
        bot.database.dispose()


def test_a_model_without_kb_vectors_still_loads(demo_training: TrainResult, tmp_path: Path) -> None:
    older = shutil.copytree(demo_training.model_dir, tmp_path / "model")
    (older / KB_VECTORS_FILE).unlink()
    assert TrainedModel.load(older).kb_vectors == {}


def test_a_corrupt_kb_vectors_file_names_the_file(demo_training: TrainResult, tmp_path: Path) -> None:
    damaged = shutil.copytree(demo_training.model_dir, tmp_path / "model")
    (damaged / KB_VECTORS_FILE).write_bytes(b"not a numpy archive")
    with pytest.raises(ModelError, match=f"{KB_VECTORS_FILE}: corrupt KB vectors"):
        TrainedModel.load(damaged)


def test_the_learned_entity_model_is_saved_and_loaded(demo_training: TrainResult) -> None:
    assert (demo_training.model_dir / LEARNED_ENTITIES_FILE).is_file()
    entities = TrainedModel.load(demo_training.model_dir).entities
    assert entities.learned is not None
    text = "is my card order CD-00777 on its way?"  # not the regex's six digits: only learned
    (found,) = entities.extract(text)
    assert (found.entity, found.value, found.extractor) == ("order_number", "CD-00777", "CRFEntityExtractor")
    assert TrainedModel.load(demo_training.model_dir).entities.extract(text) == [found]


def test_a_model_missing_its_learned_entity_model_names_the_problem(demo_training: TrainResult, tmp_path: Path) -> None:
    damaged = shutil.copytree(demo_training.model_dir, tmp_path / "model")
    (damaged / LEARNED_ENTITIES_FILE).unlink()
    with pytest.raises(ModelError, match="learned entity model is missing"):
        TrainedModel.load(damaged)
