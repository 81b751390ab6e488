"""The live index in two segments, so one published entry does not rebuild a million.

As in Lucene, the index is
- the *base*: a FaissRetriever over the entries published at one position of the change log
  (changelog.py), built off to the side; an approximate FAISS index is saved to disk for it;
- the *delta*: the published entries changed since (new, edited, published again), few enough to
  score every one exactly: the best cosine over its variants, and BM25 computed with the base's
  collection statistics plus its own documents, so its scores are on the base's scale;
- the *hidden* ids: base entries changed since (edited, retired), whose base copy is not served.

A search asks both segments and merges their candidates by score. Applying a change rebuilds the
delta alone; a compaction (index.py) folds it into a new base.

One approximation against a full rebuild: BM25 statistics still count the hidden entries' old
text, and the base's own scores do not count the delta's documents. The shift grows with the
share of entries changed since the base, which compaction bounds: with 4 of 10 entries changed
(tests/test_kb_segments.py) lexical scores move by up to 0.05 and blended scores by up to 0.02,
and the rankings equal a full rebuild's; benchmarks/kb_incremental.py compares them at 100k.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence

import numpy as np

from crowddesk.knowledge_base.dense import DenseIndex, IndexSettings, normalised_rows
from crowddesk.knowledge_base.lexical import CONTEXT_WEIGHT, K1, B, LexicalStatistics, idf, tokenize
from crowddesk.knowledge_base.quality import quality_prior
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.types import Candidate, KBEntry

# The weight of answer words in an entry's lexical document, for the base and the delta alike.
ANSWER_WEIGHT = 0.25


def lexical_document(entry: KBEntry, context_weight: float = CONTEXT_WEIGHT) -> dict[str, float]:
    """Term frequencies of an entry's BM25 document, as LexicalIndex counts them: each question
    variant's words weigh 1, the answer's ANSWER_WEIGHT, the context's `context_weight`."""
    terms: dict[str, float] = {}
    for question in entry.questions:
        for term in tokenize(question):
            terms[term] = terms.get(term, 0) + 1
    for text, weight in ((entry.answer, ANSWER_WEIGHT), (entry.context, context_weight)):
        if weight > 0:
            for term in tokenize(text):
                terms[term] = terms.get(term, 0) + weight
    return terms


class DeltaSegment:
    """The entries changed since the base was built, each scored exactly for every query."""

    def __init__(
        self,
        entries: Sequence[KBEntry],
        question_vectors: np.ndarray,
        base_statistics: LexicalStatistics,
        *,
        lexical_weight: float,
        context_weight: float = CONTEXT_WEIGHT,
    ) -> None:
        """`question_vectors`: one row per question variant, in entry then question order;
        `context_weight` must be the base's, so both score on one scale."""
        self._entries = list(entries)
        counts = [len(entry.questions) for entry in self._entries]
        if len(question_vectors) != sum(counts):
            raise ValueError(f"{len(question_vectors)} vectors for {sum(counts)} question variants")
        # FAISS's exact index, not numpy: a BLAS product would spread each query over every core.
        self._index = DenseIndex.build(question_vectors, IndexSettings(kind="flat")) if self._entries else None
        self._starts = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
        self._lexical_weight = lexical_weight
        self._prior = np.array([quality_prior(entry) for entry in self._entries])
        documents = [lexical_document(entry, context_weight) for entry in self._entries]
        self._lengths = np.array([sum(document.values()) for document in documents])
        postings: dict[str, tuple[list[int], list[float]]] = {}
        for position, document in enumerate(documents):
            for term, frequency in document.items():
                positions, frequencies = postings.setdefault(term, ([], []))
                positions.append(position)
                frequencies.append(frequency)
        self._postings = {
            term: (np.array(positions), np.array(frequencies)) for term, (positions, frequencies) in postings.items()
        }
        # The collection a full rebuild would see, but for the hidden entries' old documents.
        self._base_statistics = base_statistics
        self._own_statistics = LexicalStatistics.of(documents)
        self._documents = base_statistics.documents + len(documents)
        total_length = base_statistics.total_length + self._own_statistics.total_length
        self._average_length = (total_length / self._documents if self._documents else 0.0) or 1.0
        # Ties go to the lower id, as in a FaissRetriever over entries ordered by id.
        self._id_rank = np.argsort(np.argsort([entry.id for entry in self._entries]))

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def entries(self) -> list[KBEntry]:
        return list(self._entries)

    def search(self, text: str, query: np.ndarray, top_k: int, *, without: Collection[str] = ()) -> list[Candidate]:
        """The `top_k` best entries for a normalised query vector, best first, none of `without`."""
        if self._index is None:
            return []
        found, rows = self._index.search(query.reshape(1, -1), self._index.rows)
        similarities = np.empty(self._index.rows, dtype=np.float32)
        similarities[rows[0]] = found[0]
        dense = np.clip(np.maximum.reduceat(similarities, self._starts[:-1]), 0.0, 1.0)
        lexical = self._lexical_scores(text)
        scores = (1.0 - self._lexical_weight) * dense + self._lexical_weight * lexical + self._prior
        ranked = [i for i in np.lexsort((self._id_rank, -scores)).tolist() if self._entries[i].id not in without]
        candidates = []
        for i in ranked[:top_k]:
            start, end = self._starts[i], self._starts[i + 1]
            matched = int(np.argmax(similarities[start:end]))
            candidates.append(
                Candidate(
                    entry_id=self._entries[i].id,
                    title=self._entries[i].title,
                    score=float(scores[i]),
                    dense=float(dense[i]),
                    lexical=float(lexical[i]),
                    matched_question=self._entries[i].questions[matched],
                )
            )
        return candidates

    def _lexical_scores(self, text: str) -> np.ndarray:
        """Normalised BM25 (see lexical.py: raw score over the sum of the query terms' IDFs)."""
        scores = np.zeros(len(self._entries))
        weights = {term: self._idf(term) for term in set(tokenize(text))}
        ideal = sum(weights.values())
        if not ideal:
            return scores
        for term, weight in weights.items():
            if term in self._postings:
                positions, frequencies = self._postings[term]
                norm = 1.0 - B + B * self._lengths[positions] / self._average_length
                scores[positions] += weight * frequencies * (K1 + 1.0) / (frequencies + K1 * norm)
        return np.clip(scores / ideal, 0.0, 1.0)

    def _idf(self, term: str) -> float:
        frequency = self._base_statistics.document_frequency.get(term, 0) + self._own_statistics.document_frequency.get(
            term, 0
        )
        return idf(self._documents, frequency)


class SegmentedRetriever:
    """The base and delta segments searched as one index; immutable, so safe across threads."""

    def __init__(self, base: FaissRetriever, delta: DeltaSegment, hidden: frozenset[str]) -> None:
        """`hidden`: ids of base entries changed since it was built (their base copy is stale)."""
        self._base = base
        self._delta = delta
        self._hidden = hidden
        self._delta_ids = {entry.id: entry for entry in delta.entries}

    def __len__(self) -> int:
        return len(self._base) - len(self._hidden) + len(self._delta)

    @property
    def index_kind(self) -> str:
        """The base's FAISS index kind (the delta is always scored exactly)."""
        return self._base.index_kind

    def entry(self, entry_id: str) -> KBEntry:
        if entry_id in self._delta_ids:
            return self._delta_ids[entry_id]
        if entry_id in self._hidden:
            raise KeyError(f"no knowledge-base entry with id {entry_id!r} in this index")
        return self._base.entry(entry_id)

    def search(
        self, text: str, vector: np.ndarray, *, top_k: int = 5, exclude_entry: str | None = None
    ) -> list[Candidate]:
        """The `top_k` best entries for one query, best first, ranked as if `exclude_entry`
        did not exist."""
        vectors = np.asarray(vector).reshape(1, -1)
        return self.search_many([text], vectors, top_k, exclude_entries=[exclude_entry])[0]

    def search_many(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        top_k: int = 5,
        *,
        exclude_entries: Sequence[str | None] | None = None,
        absent_entries: Collection[str] = (),
    ) -> list[list[Candidate]]:
        """`search` for many queries at once; as FaissRetriever.search_many, `exclude_entries`
        has one item per query and `absent_entries` are left out of every query's ranking."""
        if exclude_entries is None:
            exclude_entries = [None] * len(texts)
        if len(exclude_entries) != len(texts):
            raise ValueError(
                f"search_many needs as many exclude_entries ({len(exclude_entries)}) as texts ({len(texts)})"
            )
        absent = frozenset(absent_entries)
        left_out = [absent if entry is None else absent | {entry} for entry in exclude_entries]
        for entry_id in frozenset().union(*left_out):
            self.entry(entry_id)  # a clear KeyError for an id this index does not serve
        vectors = np.asarray(vectors, dtype=np.float32)
        from_base = self._base_search(texts, vectors, top_k, exclude_entries, absent)
        if not len(self._delta):
            return from_base
        queries = normalised_rows(vectors, "query vectors")
        return [
            sorted(
                base + self._delta.search(text, query, top_k, without=without), key=lambda c: (-c.score, c.entry_id)
            )[:top_k]
            for text, query, base, without in zip(texts, queries, from_base, left_out)
        ]

    def _base_search(
        self,
        texts: Sequence[str],
        vectors: np.ndarray,
        top_k: int,
        exclude_entries: Sequence[str | None],
        absent: frozenset[str],
    ) -> list[list[Candidate]]:
        """The base's `top_k` best per query without hidden entries, asking it for more while
        hidden ones crowd them out. The base leaves out the given entries it holds (a stale copy
        of a changed entry included); the others are the delta's."""
        base = self._base
        wanted = top_k
        while True:
            found = base.search_many(
                texts,
                vectors,
                wanted,
                exclude_entries=[entry if entry in base else None for entry in exclude_entries],
                absent_entries=[entry for entry in absent if entry in base],
            )
            visible = [[c for c in candidates if c.entry_id not in self._hidden] for candidates in found]
            # Short of top_k because hidden entries were dropped: a deeper search may find more.
            crowded = any(len(v) < min(top_k, len(f)) for v, f in zip(visible, found))
            if not crowded or wanted >= len(self._base):
                return [v[:top_k] for v in visible]
            wanted *= 2
