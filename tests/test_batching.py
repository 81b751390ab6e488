"""BatchingEncoder: concurrent callers share forward passes and each gets its own rows."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from crowddesk.bot.dialogue.batching import BatchingEncoder
from crowddesk.nlu.encoders import Encoder

QUESTIONS = [
    "Where is my new card?",
    "How do I reset my PIN?",
    "I was charged twice for one payment",
    "Can I top up by bank transfer?",
    "My transfer has not arrived",
    "How do I close my account?",
    "What is the exchange rate today?",
    "My card was swallowed by the ATM",
]


class SlowRecordingEncoder:
    """A real encoder that records the batches it is given; its first pass lasts until
    `release` is set, as a long forward pass would."""

    def __init__(self, encoder: Encoder) -> None:
        self.name, self.dimension = encoder.name, encoder.dimension
        self.batches: list[list[str]] = []
        self.release = threading.Event()
        self._encoder = encoder

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        self.batches.append(list(texts))
        if len(self.batches) == 1:
            self.release.wait(timeout=30)
        return self._encoder.encode(texts)


def wait_until(condition: Callable[[], bool]) -> None:
    for _ in range(3000):
        if condition():
            return
        threading.Event().wait(0.01)
    raise TimeoutError("condition not reached in 30 s")


class FailingEncoder:
    name, dimension = "failing", 3

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        raise RuntimeError("model crashed")


def test_callers_waiting_for_a_forward_pass_are_encoded_together_and_get_their_own_rows(
    minilm_encoder: Encoder,
) -> None:
    recording = SlowRecordingEncoder(minilm_encoder)
    batching = BatchingEncoder(recording, lanes=1)

    with ThreadPoolExecutor(max_workers=len(QUESTIONS)) as pool:
        first = pool.submit(batching.encode, QUESTIONS[:1])
        wait_until(lambda: len(recording.batches) == 1)  # the first pass is under way
        rest = [pool.submit(batching.encode, [q]) for q in QUESTIONS[1:]]
        wait_until(lambda: batching.queued == len(QUESTIONS) - 1)
        recording.release.set()
        vectors = np.vstack([first.result(), *(f.result() for f in rest)])

    assert recording.batches == [QUESTIONS[:1], QUESTIONS[1:]]
    np.testing.assert_allclose(vectors, minilm_encoder.encode(QUESTIONS), atol=1e-5)


def test_with_two_lanes_a_caller_is_encoded_while_another_pass_is_under_way(
    minilm_encoder: Encoder,
) -> None:
    recording = SlowRecordingEncoder(minilm_encoder)
    batching = BatchingEncoder(recording, lanes=2)

    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(batching.encode, QUESTIONS[:1])
        wait_until(lambda: len(recording.batches) == 1)  # the first pass is under way, and stays
        second = batching.encode(QUESTIONS[1:3])
        assert not first.done()
        recording.release.set()
        np.testing.assert_allclose(first.result(), minilm_encoder.encode(QUESTIONS[:1]), atol=1e-5)

    assert recording.batches == [QUESTIONS[:1], QUESTIONS[1:3]]
    np.testing.assert_allclose(second, minilm_encoder.encode(QUESTIONS[1:3]), atol=1e-5)


def test_a_lone_caller_is_encoded_at_once(minilm_encoder: Encoder) -> None:
    batching = BatchingEncoder(minilm_encoder)

    vectors = batching.encode(["Where is my new card?"])

    assert (batching.name, batching.dimension) == (minilm_encoder.name, minilm_encoder.dimension)
    np.testing.assert_allclose(vectors, minilm_encoder.encode(["Where is my new card?"]), atol=1e-6)


def test_many_concurrent_callers_each_get_the_vectors_of_their_texts(minilm_encoder: Encoder) -> None:
    batching = BatchingEncoder(minilm_encoder, max_batch=3)
    requests = [QUESTIONS[i % len(QUESTIONS) : i % len(QUESTIONS) + 1 + i % 2] for i in range(40)]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(batching.encode, requests))

    for texts, vectors in zip(requests, results):
        np.testing.assert_allclose(vectors, minilm_encoder.encode(texts), atol=1e-5)


def test_a_failed_forward_pass_fails_every_caller_in_it() -> None:
    batching = BatchingEncoder(FailingEncoder())

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(batching.encode, [q]) for q in QUESTIONS[:4]]
    for future in futures:
        with pytest.raises(RuntimeError, match="model crashed"):
            future.result()


def test_a_text_the_encoder_cannot_read_fails_only_its_own_caller(minilm_encoder: Encoder) -> None:
    # A lone surrogate makes the tokenizer raise; 79 other customers share its forward pass.
    recording = SlowRecordingEncoder(minilm_encoder)
    batching = BatchingEncoder(recording, lanes=1)
    texts = [QUESTIONS[i % len(QUESTIONS)] for i in range(79)]
    texts.insert(40, "my card \ud800 is blocked")

    with ThreadPoolExecutor(max_workers=len(texts) + 1) as pool:
        first = pool.submit(batching.encode, QUESTIONS[:1])
        wait_until(lambda: len(recording.batches) == 1)  # the first pass is under way
        futures = [pool.submit(batching.encode, [text]) for text in texts]
        wait_until(lambda: batching.queued == len(texts))
        recording.release.set()
        first.result()

        with pytest.raises(TypeError):
            futures[40].result()
        good = [f.result() for i, f in enumerate(futures) if i != 40]

    assert len(recording.batches[1]) == batching.max_batch  # the bad text did share a pass
    expected = minilm_encoder.encode([t for i, t in enumerate(texts) if i != 40])
    np.testing.assert_allclose(np.vstack(good), expected, atol=1e-5)


def test_bad_arguments_are_rejected(minilm_encoder: Encoder) -> None:
    with pytest.raises(TypeError, match="sequence of texts"):
        BatchingEncoder(minilm_encoder).encode("Where is my card?")
    with pytest.raises(ValueError, match="max_batch"):
        BatchingEncoder(minilm_encoder, max_batch=0)
    with pytest.raises(ValueError, match="lanes"):
        BatchingEncoder(minilm_encoder, lanes=0)
