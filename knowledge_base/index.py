"""The live index over the published entries, kept up to date change by change.

The index is a large base plus a small delta (segments.py). `apply_changes` reads the store's
change log since the last change applied (changelog.py) and rebuilds the delta alone, so
publishing one entry costs milliseconds whatever the size of the knowledge base; `compact`
rebuilds the base off to the side once the delta has grown. With an index folder, the base's
position in the change log is saved beside its FAISS index, so a restart reads both back and
applies only what changed while the server was down.

Question embeddings are cached in the store per encoder, so a restart or a re-import only
encodes text it has not seen.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import tempfile
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crowddesk.knowledge_base.changelog import Position, current_position, published_as_of
from crowddesk.knowledge_base.dense import IndexSettings
from crowddesk.knowledge_base.lexical import CONTEXT_WEIGHT, LexicalStatistics
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.segments import ANSWER_WEIGHT, DeltaSegment, SegmentedRetriever
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import Candidate, EntryStatus, KBEntry
from crowddesk.nlu.encoders import Encoder

logger = logging.getLogger(__name__)

POSITION_FILE = "position.json"


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


@dataclasses.dataclass(frozen=True)
class _Base:
    """The base segment and where in the change log it was built."""

    retriever: FaissRetriever
    statistics: LexicalStatistics
    position: Position
    entry_ids: frozenset[str]


@dataclasses.dataclass(frozen=True)
class _Segments:
    """One immutable state of the live index; a change makes a new one and swaps it in."""

    base: _Base
    position: Position  # the last change applied: the base's or later
    changed: dict[str, tuple[KBEntry, np.ndarray]]  # published since the base: entry, question vectors
    hidden: frozenset[str]  # base entries changed since the base
    retriever: SegmentedRetriever

    @property
    def changed_entries(self) -> int:
        """Entries changed since the base was built."""
        return len(self.hidden | self.changed.keys())


class KnowledgeBase:
    """The live index over published entries; searches never wait for an update."""

    def __init__(
        self,
        store: KnowledgeBaseStore,
        encoder: Encoder,
        *,
        lexical_weight: float,
        top_k: int,
        context_weight: float = CONTEXT_WEIGHT,
        index: IndexSettings = IndexSettings(),
        index_dir: Path | None = None,
    ) -> None:
        """`context_weight`: of an entry's context words in its BM25 document (FaissRetriever).
        `index_dir`, when given, keeps the base's FAISS index and position across restarts."""
        self.store = store
        self.encoder = encoder
        self.lexical_weight = lexical_weight
        self.context_weight = context_weight
        self.top_k = top_k
        self.index_settings = index
        self.index_dir = index_dir
        self._lock = threading.Lock()  # guards the swap of `_segments`
        # One update at a time, so an older state can never be swapped in after a newer one.
        self._update_lock = threading.Lock()
        self._compaction_lock = threading.Lock()
        saved = self._saved_position()
        base = self._build_base(saved or current_position(store))
        if saved is None:
            self._save_position(base.position)
        self._segments = self._with_changes(self._only(base))[0]

    @property
    def retriever(self) -> SegmentedRetriever:
        with self._lock:
            return self._segments.retriever

    @property
    def changed_since_compaction(self) -> int:
        """Entries changed since the base was last built."""
        with self._lock:
            return self._segments.changed_entries

    def search(self, text: str, vector: np.ndarray) -> list[Candidate]:
        """The `top_k` best entries for one query."""
        return self.retriever.search(text, vector, top_k=self.top_k)

    def entry(self, entry_id: str) -> KBEntry | None:
        """The stored entry, whatever its status, or None."""
        return self.store.get(entry_id)

    def apply_changes(self) -> bool:
        """Bring in the changes committed since the last one applied, by any process; True if any."""
        with self._update_lock:
            segments, changed = self._with_changes(self._segments)
            self._swap(segments)
            return changed

    def needs_compaction(self) -> bool:
        return self.changed_since_compaction >= self.index_settings.compact_after

    def compact(self) -> None:
        """Rebuild the base from every published entry, off to the side; changes keep being applied
        (to the old base) meanwhile and are carried over at the swap."""
        with self._compaction_lock:
            with self._lock:
                position = self._segments.position
            base = self._build_base(position)
            with self._update_lock:
                self._swap(self._with_changes(self._only(base))[0])
            self._save_position(position)

    def _swap(self, segments: _Segments) -> None:
        with self._lock:
            self._segments = segments

    def _build_base(self, position: Position) -> _Base:
        entries = published_as_of(self.store, position)
        vectors = question_vectors(self.store, self.encoder, entries)
        retriever = FaissRetriever(
            entries,
            vectors,
            lexical_weight=self.lexical_weight,
            answer_weight=ANSWER_WEIGHT,
            context_weight=self.context_weight,
            index=self.index_settings,
            index_dir=self.index_dir,
        )
        return _Base(retriever, retriever.lexical_statistics(), position, frozenset(entry.id for entry in entries))

    def _only(self, base: _Base) -> _Segments:
        """The index as the base alone, before any later change."""
        return self._segments_of(base, base.position, {}, frozenset())

    def _segments_of(
        self,
        base: _Base,
        position: Position,
        changed: dict[str, tuple[KBEntry, np.ndarray]],
        hidden: frozenset[str],
    ) -> _Segments:
        entries = [entry for entry, _ in changed.values()]
        vectors = [rows for _, rows in changed.values()]
        delta = DeltaSegment(
            entries,
            np.concatenate(vectors) if vectors else np.zeros((0, self.encoder.dimension)),
            base.statistics,
            lexical_weight=self.lexical_weight,
            context_weight=self.context_weight,
        )
        return _Segments(base, position, changed, hidden, SegmentedRetriever(base.retriever, delta, hidden))

    def _with_changes(self, segments: _Segments) -> tuple[_Segments, bool]:
        """`segments` with the changes after its position applied, and whether there were any."""
        position = segments.position
        changes = self.store.changes_after(position.change_id, position.pending_ids)
        position = position.after(change_id for change_id, _ in changes)
        if not changes:
            return dataclasses.replace(segments, position=position), False
        entry_ids = {entry_id for _, entry_id in changes}
        published = [entry for entry in self.store.entries(sorted(entry_ids)) if entry.status is EntryStatus.PUBLISHED]
        vectors = question_vectors(self.store, self.encoder, published)
        changed = {entry_id: value for entry_id, value in segments.changed.items() if entry_id not in entry_ids}
        start = 0
        for entry in published:
            changed[entry.id] = (entry, vectors[start : start + len(entry.questions)])
            start += len(entry.questions)
        hidden = segments.hidden | (segments.base.entry_ids & entry_ids)
        return self._segments_of(segments.base, position, changed, hidden), True

    def _saved_position(self) -> Position | None:
        path = self.index_dir / POSITION_FILE if self.index_dir else None
        if path is None or not path.exists():
            return None
        try:
            return Position.from_json(path.read_text(encoding="utf-8"))
        except ValueError as error:
            logger.warning("rebuilding the knowledge-base index: cannot read %s (%s)", path, error)
            return None

    def _save_position(self, position: Position) -> None:
        """Written after the base's FAISS index, replacing the old file in one step."""
        if self.index_dir is None:
            return
        self.index_dir.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=self.index_dir, suffix=".partial")
        with os.fdopen(descriptor, "w", encoding="utf-8") as file:
            file.write(position.to_json())
        os.replace(partial, self.index_dir / POSITION_FILE)
