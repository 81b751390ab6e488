"""Builds the searchable index from the published entries in the store.

Question embeddings are cached in the store per encoder, so a restart or a re-import only
encodes text it has not seen.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crowddesk.knowledge_base.dense import IndexSettings
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.encoders import Encoder


def question_vectors(
    store: KnowledgeBaseStore, encoder: Encoder, entries: Sequence[KBEntry], *, show_progress: bool = False
) -> np.ndarray:
    """One normalised vector per question variant, entries in order, then questions in order."""
    texts = [q for entry in entries for q in entry.questions]
    if not texts:
        return np.zeros((0, encoder.dimension), dtype=np.float32)
    cached = store.cached_vectors(encoder.name, texts)
    missing = list(dict.fromkeys(t for t in texts if t not in cached))
    if missing:
        fresh = encoder.encode(missing, show_progress=show_progress)
        new = dict(zip(missing, fresh))
        store.store_vectors(encoder.name, new)
        cached.update(new)
    return np.stack([cached[t] for t in texts]).astype(np.float32)


class KnowledgeBase:
    """The live index over published entries; `refresh` swaps in a rebuilt one atomically."""

    def __init__(
        self,
        store: KnowledgeBaseStore,
        encoder: Encoder,
        *,
        lexical_weight: float,
        top_k: int,
        index: IndexSettings = IndexSettings(),
        index_dir: Path | None = None,
    ) -> None:
        """`index_dir`, when given, keeps the built FAISS index across restarts (see FaissRetriever)."""
        self.store = store
        self.encoder = encoder
        self.lexical_weight = lexical_weight
        self.top_k = top_k
        self.index_settings = index
        self.index_dir = index_dir
        self._lock = threading.Lock()
        self._retriever = self._build(show_progress=False)

    def _build(self, *, show_progress: bool) -> FaissRetriever:
        entries = self.store.published()
        vectors = question_vectors(self.store, self.encoder, entries, show_progress=show_progress)
        return FaissRetriever(
            entries, vectors,
            lexical_weight=self.lexical_weight, index=self.index_settings, index_dir=self.index_dir,
        )

    def refresh(self) -> None:
        """Rebuild from the published entries; searches use the old index until the new one is ready."""
        retriever = self._build(show_progress=False)
        with self._lock:
            self._retriever = retriever

    @property
    def retriever(self) -> FaissRetriever:
        with self._lock:
            return self._retriever

    def search(self, text: str, vector: np.ndarray) -> list[Candidate]:
        """The `top_k` best entries for one query."""
        return self.retriever.search(text, vector, top_k=self.top_k)

    def entry(self, entry_id: str) -> KBEntry | None:
        """The stored entry, whatever its status, or None."""
        return self.store.get(entry_id)
