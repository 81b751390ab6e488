"""An `Encoder` that remembers the vectors of recent texts, so a repeat costs no forward pass.

Support traffic repeats itself word for word: "hi", "thanks", "agent", a button's label typed
back, the same question pasted by many customers. Each of those would otherwise pay the whole
sentence-encoder pass, the largest part of a message's CPU.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence

import numpy as np

from crowddesk.nlu.encoders import Encoder, as_text_list

DEFAULT_MAX_TEXTS = 10_000  # ~15 MB of 384-d float32 vectors


class CachedEncoder:
    """Wraps an `Encoder`; safe to call from many threads. Keeps the `max_texts` most recently
    used texts' vectors (exact text, case and spacing included)."""

    def __init__(self, encoder: Encoder, *, max_texts: int = DEFAULT_MAX_TEXTS) -> None:
        if max_texts < 1:
            raise ValueError(f"max_texts must be >= 1, got {max_texts}")
        self.name = encoder.name
        self.dimension = encoder.dimension
        self.encoder = encoder
        self.max_texts = max_texts
        self.hits = 0
        self.misses = 0
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()  # held for dictionary work only, never during a pass

    def __len__(self) -> int:
        """Texts whose vectors are kept."""
        return len(self._vectors)

    def forget(self, texts: Sequence[str]) -> int:
        """Drop the vectors of `texts` (a customer's erased messages); how many were kept."""
        with self._lock:
            return sum(self._vectors.pop(text, None) is not None for text in as_text_list(texts))

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        texts = as_text_list(texts)
        with self._lock:
            found = {text: self._vectors[text] for text in texts if text in self._vectors}
            for text in found:
                self._vectors.move_to_end(text)
            missing = [text for text in dict.fromkeys(texts) if text not in found]
            self.hits += len(texts) - len(missing)  # hits + misses = texts asked for
            self.misses += len(missing)
        if missing:
            fresh = np.array(self.encoder.encode(missing, show_progress=show_progress), dtype=np.float32)
            new = dict(zip(missing, fresh))
            found.update(new)
            with self._lock:
                self._vectors.update(new)
                while len(self._vectors) > self.max_texts:
                    self._vectors.popitem(last=False)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([found[text] for text in texts])
