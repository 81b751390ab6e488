"""Dense (FAISS) + lexical (BM25) retrieval of knowledge-base entries.

Every question variant of every entry is one row of a FAISS inner-product index (rows are
L2-normalised, so inner product = cosine). A query's score for an entry blends the best cosine
over the entry's variants with the entry's normalised BM25 score:

    score = (1 - lexical_weight) * clip(max cosine, 0, 1) + lexical_weight * bm25 + quality prior

where the quality prior (quality.py, at most 0.03) puts accepted and well-voted community
answers first among near-equal matches. An entry's BM25 document also holds its answer and its
context (a thread's body) at lower weights. Only questions have vectors: FAISS rows for answers
and bodies gained more on thread-style test data but wait for a real community dump to confirm
it (benchmarks/README.md, "Indexing the answer and thread body").

Taking the MAX over variants (not the mean) keeps an entry with a single question, as imported
from one community thread, as answerable as one with twenty paraphrases.

The dense index is chosen by size: exact below a threshold, approximate above (dense.py).
"""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from crowddesk.knowledge_base.dense import DenseIndex, IndexSettings, normalised_rows
from crowddesk.knowledge_base.lexical import CONTEXT_WEIGHT, LexicalIndex, LexicalStatistics
from crowddesk.knowledge_base.quality import quality_prior
from crowddesk.knowledge_base.types import Candidate, KBEntry

# Dense hits fetched per requested candidate: several variants of one entry often crowd the top.
HITS_PER_CANDIDATE = 8
MAX_DENSE_HITS = 2048
# Entries taken from the lexical ranking per requested candidate, scored exactly on the dense side.
# Blended top 5 against scoring every entry (100k entries, kb_scale data): 2 -> 0.983, 6 -> 0.997.
LEXICAL_HITS_PER_CANDIDATE = 6


class Retriever(Protocol):
    """Ranks knowledge-base entries for a query; scores are comparable across queries."""

    def search(
        self,
        text: str,
        vector: np.ndarray,
        *,
        top_k: int = 5,
        exclude_question: str | None = None,
        exclude_entry: str | None = None,
    ) -> list[Candidate]: ...


def normalise_question(text: str) -> str:
    """The form under which two question texts count as the same question."""
    return " ".join(text.split()).casefold()


class FaissRetriever:
    """A `Retriever` over a fixed set of entries; safe to search from several threads at once."""

    def __init__(
        self,
        entries: Sequence[KBEntry],
        question_vectors: np.ndarray,
        *,
        lexical_weight: float = 0.35,
        answer_weight: float = 0.25,
        context_weight: float = CONTEXT_WEIGHT,
        index: IndexSettings = IndexSettings(),
        index_dir: Path | None = None,
    ) -> None:
        """`question_vectors` has one row per question variant, in entry order then question order.

        `answer_weight` is the weight of an entry's answer words in its lexical document (its
        questions weigh 1); 0 leaves answers out of the lexical signal. `context_weight` is the
        weight of its context words (a community thread's body) there. `index` chooses the
        FAISS index; with `index_dir` it is saved there and reused while the vectors and
        settings stay the same.
        """
        if not 0.0 <= lexical_weight <= 1.0:
            raise ValueError(f"lexical_weight must be in [0, 1], got {lexical_weight}")
        self._entries = list(entries)
        self._lexical_weight = lexical_weight
        self._position = self._positions_by_id(self._entries)
        vectors = self._checked_vectors(self._entries, question_vectors)
        self._dimension = int(vectors.shape[1])

        counts = [len(entry.questions) for entry in self._entries]
        self._variant_entry = np.repeat(np.arange(len(self._entries)), counts)
        self._entry_start = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._variant_text = [q for entry in self._entries for q in entry.questions]
        self._rows_by_question_cache: dict[str, list[int]] | None = None
        self._rows_by_question_lock = threading.Lock()

        self._prior = [quality_prior(entry) for entry in self._entries]
        self._lexical = LexicalIndex(
            [entry.questions for entry in self._entries],
            answers=[entry.answer for entry in self._entries],
            answer_weight=answer_weight,
            contexts=[entry.context for entry in self._entries],
            context_weight=context_weight,
        )
        # The index keeps the only copy of the (normalised) vectors: at a million variants a
        # second one would cost gigabytes.
        self._index = DenseIndex.build_or_read(vectors, index, index_dir)

    def lexical_statistics(self) -> LexicalStatistics:
        """The BM25 collection statistics of the entries' lexical documents."""
        return self._lexical.statistics()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, entry_id: object) -> bool:
        """Whether this index holds an entry with that id."""
        return entry_id in self._position

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def index_kind(self) -> str:
        """The FAISS index searched: "flat" (exact), "ivf" or "hnsw" (approximate)."""
        return self._index.kind

    def entry(self, entry_id: str) -> KBEntry:
        return self._entries[self._position_of(entry_id)]

    def _position_of(self, entry_id: str) -> int:
        try:
            return self._position[entry_id]
        except KeyError:
            raise KeyError(f"no knowledge-base entry with id {entry_id!r} in this index") from None

    def search(
        self,
        text: str,
        vector: np.ndarray,
        *,
        top_k: int = 5,
        exclude_question: str | None = None,
        exclude_entry: str | None = None,
    ) -> list[Candidate]:
        """The `top_k` best entries for one query, best first.

        Variants equal to `exclude_question` (case- and whitespace-insensitive) are ignored on
        both the dense and the lexical side, so a known question does not match itself. Every
        variant of the entry `exclude_entry` is ignored too, so the query ranks the others as if
        that entry did not exist.
        """
        return self.search_many(
            [text],
            np.asarray(vector).reshape(1, -1),
            top_k=top_k,
            exclude_questions=[exclude_question],
            exclude_entries=[exclude_entry],
        )[0]

    def search_many(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        top_k: int = 5,
        *,
        exclude_questions: Sequence[str | None] | None = None,
        exclude_entries: Sequence[str | None] | None = None,
        absent_entries: Collection[str] = (),
    ) -> list[list[Candidate]]:
        """`search` for many queries at once, with a single batched FAISS search.

        `exclude_questions` and `exclude_entries` hold one item per query (see `search`);
        `absent_entries` are left out of every query's ranking, as if the index lacked them (but
        for BM25's collection statistics, which keep counting whatever is left out: lexical.py).
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        vectors = np.asarray(vectors, dtype=np.float32)
        if exclude_questions is None:
            exclude_questions = [None] * len(texts)
        if exclude_entries is None:
            exclude_entries = [None] * len(texts)
        if not len(texts) == len(vectors) == len(exclude_questions) == len(exclude_entries):
            raise ValueError(
                f"search_many needs as many vectors ({len(vectors)}), exclude_questions "
                f"({len(exclude_questions)}) and exclude_entries ({len(exclude_entries)}) "
                f"as texts ({len(texts)})"
            )
        if not self._entries or not len(texts):
            return [[] for _ in texts]
        queries = normalised_rows(vectors, "query vectors")
        if queries.shape[1] != self.dimension:
            raise ValueError(f"query vectors have dimension {queries.shape[1]}, the index has {self.dimension}")

        absent = frozenset(absent_entries)
        absent_rows = self._entry_rows(absent)
        left_out = [absent if entry is None else absent | {entry} for entry in exclude_entries]
        excluded = [
            self._question_rows(question) | absent_rows | self._entry_rows(entries - absent)
            for question, entries in zip(exclude_questions, left_out)
        ]
        hit_count = min(
            top_k * HITS_PER_CANDIDATE + max(len(rows) for rows in excluded),
            MAX_DENSE_HITS,
            self._index.rows,
        )
        similarities, rows = self._index.search(queries, hit_count)
        return [
            self._rank(texts[i], queries[i], rows[i], similarities[i], excluded[i], top_k, len(left_out[i]))
            for i in range(len(texts))
        ]

    def _rank(
        self,
        text: str,
        query: np.ndarray,
        hit_rows: np.ndarray,
        hit_similarities: np.ndarray,
        excluded: frozenset[int],
        top_k: int,
        entries_left_out: int,
    ) -> list[Candidate]:
        best = self._best_per_entry(hit_rows.tolist(), hit_similarities.tolist(), excluded)
        # An entry left out whole still matches lexically through its answer or context (and is
        # dropped below), so each may take a lexical hit: ask for as many more.
        lexical_hits = self._lexical.search(
            text, top_k * LEXICAL_HITS_PER_CANDIDATE + entries_left_out, without_variants=excluded
        )
        best.update(self._exact_dense([e for e, _ in lexical_hits if e not in best], query, excluded))

        entries = np.fromiter(best, dtype=np.int64, count=len(best))
        lexical = self._lexical.score_documents(text, entries, without_variants=excluded)
        candidates = []
        for entry, lexical_score in zip(entries.tolist(), lexical.tolist()):
            similarity, row = best[entry]
            dense = min(max(similarity, 0.0), 1.0)
            score = (1.0 - self._lexical_weight) * dense + self._lexical_weight * lexical_score
            score += self._prior[entry]  # accepted / voted answers first among near-equal matches
            candidates.append((score, entry, dense, lexical_score, row))
        candidates.sort(key=lambda c: (-c[0], c[1]))
        return [
            Candidate(
                entry_id=self._entries[entry].id,
                title=self._entries[entry].title,
                score=score,
                dense=dense,
                lexical=lexical_score,
                matched_question=self._variant_text[row],
            )
            for score, entry, dense, lexical_score, row in candidates[:top_k]
        ]

    def _best_per_entry(
        self, rows: list[int], similarities: list[float], excluded: frozenset[int]
    ) -> dict[int, tuple[float, int]]:
        """Per entry: (best cosine among the given rows, the row that has it)."""
        best: dict[int, tuple[float, int]] = {}
        for row, similarity in zip(rows, similarities):
            if row < 0 or row in excluded:  # FAISS pads with -1 when it finds fewer hits
                continue
            entry = int(self._variant_entry[row])
            if entry not in best or similarity > best[entry][0]:
                best[entry] = (similarity, row)
        return best

    def _exact_dense(
        self, entries: list[int], query: np.ndarray, excluded: frozenset[int]
    ) -> dict[int, tuple[float, int]]:
        """`_best_per_entry` over all non-excluded variants of the entries (an entry whose
        variants are all excluded is left out)."""
        rows = [
            row
            for entry in entries
            for row in range(self._entry_start[entry], self._entry_start[entry + 1])
            if row not in excluded
        ]
        if not rows:
            return {}
        # From the index's own copy, as its search scored the other hits.
        similarities = self._index.vectors(np.array(rows, dtype=np.int64)) @ query
        return self._best_per_entry(rows, similarities.tolist(), excluded)

    def _question_rows(self, question: str | None) -> frozenset[int]:
        """The rows of the variants equal to `question` (none for None)."""
        if question is None:
            return frozenset()
        return frozenset(self._rows_by_question().get(normalise_question(question), ()))

    def _entry_rows(self, entry_ids: Iterable[str]) -> frozenset[int]:
        """The rows of every variant of the given entries."""
        rows: set[int] = set()
        for entry_id in entry_ids:
            position = self._position_of(entry_id)
            rows.update(range(self._entry_start[position], self._entry_start[position + 1]))
        return frozenset(rows)

    def _rows_by_question(self) -> dict[str, list[int]]:
        """Rows of each normalised question text, built on first use: only leave-one-out
        calibration excludes questions, and at a million variants the map costs hundreds of MB."""
        with self._rows_by_question_lock:
            if self._rows_by_question_cache is None:
                rows: dict[str, list[int]] = defaultdict(list)
                for row, text in enumerate(self._variant_text):
                    rows[normalise_question(text)].append(row)
                self._rows_by_question_cache = dict(rows)
            return self._rows_by_question_cache

    @staticmethod
    def _positions_by_id(entries: Sequence[KBEntry]) -> dict[str, int]:
        positions: dict[str, int] = {}
        for position, entry in enumerate(entries):
            if entry.id in positions:
                raise ValueError(f"duplicate knowledge-base entry id {entry.id!r}")
            if not entry.questions:
                raise ValueError(f"knowledge-base entry {entry.id!r} has no questions to index")
            positions[entry.id] = position
        return positions

    @staticmethod
    def _checked_vectors(entries: Sequence[KBEntry], question_vectors: np.ndarray) -> np.ndarray:
        vectors = np.asarray(question_vectors, dtype=np.float32)
        variant_count = sum(len(entry.questions) for entry in entries)
        if vectors.ndim != 2:
            if variant_count == 0 and vectors.size == 0:
                return np.zeros((0, 0), dtype=np.float32)
            raise ValueError(f"question_vectors must be a 2-D array (variants x dimension), got shape {vectors.shape}")
        if len(vectors) != variant_count:
            raise ValueError(
                f"question_vectors has {len(vectors)} rows but the entries have {variant_count} "
                "question variants; need one row per variant, in entry then question order"
            )
        return vectors
