"""Servers run all-MiniLM-L6-v2 from the ONNX export `crowddesk train` writes into the model, with
ONNX Runtime: the same vectors as the torch encoder, under the same name, without torch."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.model import ENCODER_EXPORT_FILE
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.nlu.encoders import Encoder, MiniLMEncoder
from crowddesk.nlu.onnx_encoder import OnnxExportError, OnnxMiniLMEncoder, load_served_encoder

# Varied customer text: empty, one letter, punctuation only, numbers, accents, other scripts,
# emoji, odd spacing and case, and one far longer than the model's 256-token limit.
TEXTS = [
    "",
    "a",
    "?!",
    "hi",
    "Hello there",
    "Where is my card?",
    "WHERE IS MY CARD",
    "where    is\tmy\ncard",
    "My card hasn't arrived after 2 weeks",
    "I was charged £12.50 twice on 03/04/2025",
    "Transfer 1,000,000 EUR to IBAN DE89 3704 0044 0532 0130 00",
    "Can I top up with Apple Pay?",
    "why was my top-up declined???",
    "Où est ma carte ?",
    "Wo ist meine Karte?",
    "¿Dónde está mi tarjeta?",
    "私のカードはどこですか",
    "Где моя карта?",
    "my card 💳 is lost 😢",
    "The exchange rate you gave me was wrong, I want a refund",
    "cancel cancel cancel cancel",
    "How do I reset my PIN at an ATM abroad when the app says my account is frozen?",
    "<b>html</b> &amp; entities",
    "https://example.com/help?card=lost#top",
    "naïve café résumé",
    "I'd like to speak to a human, please.",
    "is there a fee for using my card in the US",
    "What's the daily limit for contactless payments",
    "refund",
    "My transfer is pending since yesterday, when will it go through?",
    " ".join(["my card was declined at the shop and then charged anyway"] * 40),
]


RETRAIN = "`crowddesk train --force` writes one"


@pytest.fixture(scope="session")
def exported_model(demo_training: TrainResult) -> Path:
    """The ONNX export in the demo model `crowddesk train` made."""
    return demo_training.model_dir / ENCODER_EXPORT_FILE


@pytest.fixture(scope="session")
def onnx_encoder(exported_model: Path) -> Encoder:
    return load_served_encoder(MiniLMEncoder.name, exported_model)


def test_onnx_vectors_are_the_torch_encoders(onnx_encoder: Encoder, minilm_encoder: Encoder) -> None:
    assert isinstance(onnx_encoder, OnnxMiniLMEncoder)
    assert onnx_encoder.name == minilm_encoder.name == "all-MiniLM-L6-v2"
    assert onnx_encoder.dimension == minilm_encoder.dimension
    served, trained = onnx_encoder.encode(TEXTS), minilm_encoder.encode(TEXTS)
    assert served.shape == trained.shape == (len(TEXTS), 384)
    assert served.dtype == np.float32
    assert float(np.abs(served - trained).max()) < 1e-5
    assert float((served * trained).sum(axis=1).min()) > 0.99999
    # One text at a time, as a server encodes, gives the same vectors as a batch.
    one_by_one = np.vstack([onnx_encoder.encode([text]) for text in TEXTS[:8]])
    np.testing.assert_allclose(one_by_one, served[:8], atol=1e-5)


def test_text_past_the_token_limit_is_truncated_like_the_torch_encoder(onnx_encoder: Encoder) -> None:
    long_text = TEXTS[-1]
    assert long_text.split().count("card") > 256 // 10
    longer = long_text + " and also my phone was stolen and the thief used my card online"
    # Words past the 256th token are cut off, so they change nothing.
    np.testing.assert_allclose(onnx_encoder.encode([longer]), onnx_encoder.encode([long_text]), atol=1e-6)


def test_an_empty_batch_gives_an_empty_matrix(onnx_encoder: Encoder) -> None:
    empty = onnx_encoder.encode([])
    assert empty.shape == (0, 384)
    assert empty.dtype == np.float32


def test_a_bare_string_is_rejected(onnx_encoder: Encoder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        onnx_encoder.encode("hello")


def test_serving_from_the_export_imports_no_torch(exported_model: Path) -> None:
    script = f"""
import json, sys
from pathlib import Path
from crowddesk.nlu.onnx_encoder import load_served_encoder
encoder = load_served_encoder("all-MiniLM-L6-v2", Path({str(exported_model)!r}))
vectors = encoder.encode(["Where is my card?", "hello"])
heavy = ["torch", "sentence_transformers", "transformers"]
print(json.dumps({{"shape": vectors.shape, "loaded": [name for name in heavy if name in sys.modules]}}))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"shape": [2, 384], "loaded": []}


def test_the_trained_demo_bot_serves_the_export_and_answers(
    demo_training: TrainResult, demo_client: TestClient, sender: str
) -> None:
    assert (demo_training.model_dir / ENCODER_EXPORT_FILE).is_file()
    assert isinstance(demo_client.app.state.bot.nlu.encoder, OnnxMiniLMEncoder)
    response = demo_client.post(
        "/webhooks/rest/webhook",
        json={"sender": sender, "message": "It's been a week and my new card still hasn't arrived"},
    )
    assert response.status_code == 200, response.text
    assert [reply["custom"]["kb_entry"] for reply in response.json()] == ["faq/card_arrival"]


def _model_copy_without_export(demo_training: TrainResult, target: Path) -> Path:
    return shutil.copytree(demo_training.model_dir, target, ignore=shutil.ignore_patterns(ENCODER_EXPORT_FILE))


def test_a_model_without_the_export_is_served_with_torch_and_says_why(
    demo_project: Path,
    demo_training: TrainResult,
    minilm_encoder: Encoder,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    older = _model_copy_without_export(demo_training, tmp_path / "model")
    with caplog.at_level(logging.INFO, logger="crowddesk.nlu.onnx_encoder"):
        bot = assemble(demo_project, model_dir=older, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    try:
        assert bot.nlu.encoder is minilm_encoder
        reasons = [r.getMessage() for r in caplog.records if r.name == "crowddesk.nlu.onnx_encoder"]
        export = older / ENCODER_EXPORT_FILE
        assert reasons == [f"serving all-MiniLM-L6-v2 with torch: no ONNX export at {export} ({RETRAIN})"]
    finally:
        bot.database.dispose()


def test_without_onnxruntime_the_export_is_passed_over_for_torch(
    exported_model: Path, minilm_encoder: Encoder, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # `import onnxruntime` raises ImportError
    with caplog.at_level(logging.INFO, logger="crowddesk.nlu.onnx_encoder"):
        encoder = load_served_encoder(MiniLMEncoder.name, exported_model)
    assert encoder is minilm_encoder
    assert [r.getMessage() for r in caplog.records] == [
        "serving all-MiniLM-L6-v2 with torch: onnxruntime is not installed"
    ]


def test_a_damaged_export_is_refused_naming_the_file(demo_training: TrainResult, tmp_path: Path) -> None:
    # A copy cut short, as an interrupted deployment leaves it: serving it with torch instead would
    # hide a broken model directory behind twice the CPU per message, so the server does not start.
    export = tmp_path / ENCODER_EXPORT_FILE
    with (demo_training.model_dir / ENCODER_EXPORT_FILE).open("rb") as whole:
        export.write_bytes(whole.read(1_000_000))
    with pytest.raises(OnnxExportError, match=f"{export}: unreadable ONNX export of the encoder"):
        load_served_encoder(MiniLMEncoder.name, export)
