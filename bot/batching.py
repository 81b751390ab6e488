"""An `Encoder` that lets the turns of concurrent conversations share one forward pass.

On a CPU, a sentence encoder costs almost as much for one short sentence as for several: the
matrices are small and most of the time goes to per-call overhead and idle vector units. So when
several conversations are being answered at once, their messages are encoded together.

There is no timer. A caller that finds the encoder idle encodes at once, so light traffic waits
for nothing; callers that arrive while a batch is being encoded queue up, and the first of them
to get the encoder next encodes everything queued. Under load, batches grow by themselves to
whatever arrived during one forward pass.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

import numpy as np

from crowddesk.nlu.encoders import Encoder


class _Request:
    def __init__(self, texts: list[str]) -> None:
        self.texts = texts
        self.vectors: np.ndarray | None = None
        self.error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.vectors is not None or self.error is not None

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        if self.vectors is None:
            raise RuntimeError("batched encode finished without encoding this request")
        return self.vectors


class BatchingEncoder:
    """Wraps an `Encoder`; safe to call from many threads at once, each getting its own rows."""

    def __init__(self, encoder: Encoder, *, max_batch: int = 64) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.encoder = encoder
        self.max_batch = max_batch
        self._queue: list[_Request] = []
        self._queue_lock = threading.Lock()
        self._encoding = threading.Lock()  # one forward pass at a time; waiters queue behind it

    @property
    def queued(self) -> int:
        """Texts waiting for the encoder (for monitoring)."""
        with self._queue_lock:
            return sum(len(request.texts) for request in self._queue)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if isinstance(texts, str):
            raise TypeError("encode() takes a sequence of texts, not a single string")
        if show_progress or len(texts) >= self.max_batch:
            return self.encoder.encode(texts, show_progress=show_progress)  # bulk work: as is
        request = _Request(list(texts))
        with self._queue_lock:
            self._queue.append(request)
        with self._encoding:
            # A caller that held the encoder before us may have encoded our texts already;
            # otherwise encode queued batches, oldest first, until ours is among them.
            while not request.done:
                self._encode_queued()
        return request.result()

    def _encode_queued(self) -> None:
        """Encode queued requests, oldest first, up to `max_batch` texts (the rest wait)."""
        with self._queue_lock:
            taken, size = 0, 0
            while taken < len(self._queue) and (
                taken == 0 or size + len(self._queue[taken].texts) <= self.max_batch
            ):
                size += len(self._queue[taken].texts)
                taken += 1
            batch, self._queue = self._queue[:taken], self._queue[taken:]
        try:
            vectors = self.encoder.encode([text for request in batch for text in request.texts])
        except Exception as exc:  # every caller in the batch sees the failure, not just this one
            for request in batch:
                request.error = exc
            return
        start = 0
        for request in batch:
            request.vectors = vectors[start:start + len(request.texts)]
            start += len(request.texts)
