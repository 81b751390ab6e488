"""CachedEncoder: a repeated text costs no forward pass and still gets its own, correct row."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from fastapi.testclient import TestClient

from crowddesk.nlu.cached_encoder import CachedEncoder
from crowddesk.nlu.encoders import Encoder


class RecordingEncoder:
    """A real encoder that records the texts each forward pass is given."""

    def __init__(self, encoder: Encoder) -> None:
        self.name, self.dimension = encoder.name, encoder.dimension
        self.passes: list[list[str]] = []
        self._encoder = encoder

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.passes.append(list(texts))
        return self._encoder.encode(texts)


@pytest.fixture
def recording(minilm_encoder: Encoder) -> RecordingEncoder:
    return RecordingEncoder(minilm_encoder)


def test_repeated_texts_are_not_encoded_again(recording: RecordingEncoder, minilm_encoder: Encoder) -> None:
    cache = CachedEncoder(recording)
    first = cache.encode(["hi", "Where is my new card?"])
    again = cache.encode(["Where is my new card?", "thanks", "hi", "thanks"])

    assert recording.passes == [["hi", "Where is my new card?"], ["thanks"]]
    expected = minilm_encoder.encode(["Where is my new card?", "thanks", "hi", "thanks"])
    np.testing.assert_allclose(again, expected, atol=1e-5)
    np.testing.assert_array_equal(again[0], first[1])
    assert (cache.hits, cache.misses, len(cache)) == (3, 3, 3)


def test_the_least_recently_used_text_is_dropped_first(recording: RecordingEncoder) -> None:
    cache = CachedEncoder(recording, max_texts=2)
    cache.encode(["hi"])
    cache.encode(["hello"])
    cache.encode(["hi"])  # "hello" is now the least recently used
    cache.encode(["thanks"])
    cache.encode(["hi", "hello"])

    assert recording.passes == [["hi"], ["hello"], ["thanks"], ["hello"]]
    assert len(cache) == 2


def test_a_caller_writing_into_its_rows_does_not_change_what_others_get(recording: RecordingEncoder) -> None:
    cache = CachedEncoder(recording)
    original = cache.encode(["hi"]).copy()
    cache.encode(["hi"])[0] += 1.0
    np.testing.assert_array_equal(cache.encode(["hi"]), original)


def test_concurrent_callers_each_get_the_vectors_of_their_texts(minilm_encoder: Encoder) -> None:
    texts = [f"question number {i % 12}" for i in range(96)]
    expected = dict(zip(texts, minilm_encoder.encode(texts)))
    cache = CachedEncoder(minilm_encoder, max_texts=8)  # small: evictions race with lookups
    with ThreadPoolExecutor(max_workers=8) as pool:
        rows = list(pool.map(lambda text: cache.encode([text])[0], texts))
    for text, row in zip(texts, rows):
        np.testing.assert_allclose(row, expected[text], atol=1e-5)


def test_bad_arguments_are_rejected(minilm_encoder: Encoder) -> None:
    with pytest.raises(ValueError, match="max_texts must be >= 1"):
        CachedEncoder(minilm_encoder, max_texts=0)
    with pytest.raises(TypeError, match="not a single string"):
        CachedEncoder(minilm_encoder).encode("hi")
    assert CachedEncoder(minilm_encoder).encode([]).shape == (0, minilm_encoder.dimension)


def test_the_served_bot_encodes_a_repeated_greeting_once(demo_client: TestClient) -> None:
    greeting = f"hello there, {uuid.uuid4().hex[:6]}"  # a text no other test sends
    before = demo_client.get("/health").json()["encoder_cache"]
    for sender in ("first-customer", "second-customer"):
        reply = demo_client.post(
            "/webhooks/rest/webhook", json={"sender": f"{sender}-{uuid.uuid4().hex}", "message": greeting}
        )
        assert reply.status_code == 200 and reply.json()
    after = demo_client.get("/health").json()["encoder_cache"]
    assert after["misses"] - before["misses"] == 1
    assert after["hits"] - before["hits"] == 1
