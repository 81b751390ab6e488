"""An `Encoder` that lets the turns of concurrent conversations share forward passes, and runs up
to one forward pass per core at a time.

On a CPU, a sentence encoder costs almost as much for one short sentence as for several: the
matrices are small and most of the time goes to per-call overhead and idle vector units. So when
several conversations are being answered at once, their messages are encoded together.

There is no timer. A caller that finds a lane (a forward-pass slot) free encodes at once, so
light traffic waits for nothing; callers that arrive while every lane is busy queue up, and the
first of them to get a lane next encodes everything queued. Under load, batches grow by
themselves to whatever arrived during one forward pass.

One caller's text can fail a shared pass (the tokenizer raises on a lone surrogate): the pass
is then retried one caller at a time, so only the caller whose text failed sees the error.

PyTorch releases the GIL inside its operators and a server runs it with one compute thread
(`use_serving_threads`), so passes in different lanes run on different cores.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence

import numpy as np

from crowddesk.nlu.encoders import Encoder, as_text_list


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
    """Wraps an `Encoder`; safe to call from many threads at once, each getting its own rows.

    `lanes` forward passes may run at once (default: one per core).
    """

    def __init__(self, encoder: Encoder, *, max_batch: int = 64, lanes: int | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        lanes = (os.cpu_count() or 1) if lanes is None else lanes
        if lanes < 1:
            raise ValueError(f"lanes must be >= 1, got {lanes}")
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.encoder = encoder
        self.max_batch = max_batch
        self.lanes = lanes
        self._queue: list[_Request] = []
        self._free_lanes = lanes
        self._changed = threading.Condition()  # guards the queue and the lanes; notified when a pass ends

    @property
    def queued(self) -> int:
        """Texts waiting for the encoder (for monitoring)."""
        with self._changed:
            return sum(len(request.texts) for request in self._queue)

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = as_text_list(texts)
        if show_progress or len(texts) >= self.max_batch:
            return self.encoder.encode(texts, show_progress=show_progress)  # bulk work: as is
        request = _Request(texts)
        with self._changed:
            self._queue.append(request)
            # Another caller's pass may encode our texts; otherwise take a free lane and encode
            # the queue, oldest first, until ours is among the encoded.
            while not request.done:
                if self._free_lanes and self._queue:
                    self._encode_queued()
                else:
                    self._changed.wait()
        return request.result()

    def _encode_queued(self) -> None:
        """Encode queued requests, oldest first, up to `max_batch` texts (the rest wait), in a
        lane of their own; called and returns with `_changed` held, released during the pass."""
        taken, size = 0, 0
        while taken < len(self._queue) and (taken == 0 or size + len(self._queue[taken].texts) <= self.max_batch):
            size += len(self._queue[taken].texts)
            taken += 1
        batch, self._queue = self._queue[:taken], self._queue[taken:]
        self._free_lanes -= 1
        self._changed.release()
        try:
            vectors = self.encoder.encode([text for request in batch for text in request.texts])
        except Exception as exc:  # noqa: BLE001 - handed to the waiting caller, which re-raises it
            if len(batch) == 1:
                batch[0].error = exc
            else:  # one caller's text may have failed the pass: retry each alone, so only it fails
                for request in batch:
                    self._encode_alone(request)
        else:
            start = 0
            for request in batch:
                request.vectors = vectors[start : start + len(request.texts)]
                start += len(request.texts)
        finally:
            self._changed.acquire()
            self._free_lanes += 1
            self._changed.notify_all()

    def _encode_alone(self, request: _Request) -> None:
        """Encode one request in a pass of its own, keeping its error to itself."""
        try:
            request.vectors = self.encoder.encode(request.texts)
        except Exception as exc:  # noqa: BLE001 - handed to the waiting caller, which re-raises it
            request.error = exc
