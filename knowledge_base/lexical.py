"""BM25 lexical index: the signal for rare words (error codes, product names) that sentence
embeddings blur.

One document per knowledge-base entry, made of its question variants (weight 1) and, optionally,
its answer and its context (the asker's thread body) at lower weights. Variants are numbered
globally in document order then variant order (the same numbering as the retriever's vector
rows), so a caller can leave single variants out of a query (`without_variants`, used for
leave-one-out calibration).

Score scale: a query's raw Okapi BM25 score (k1=1.2, b=0.75) is divided by the score that a
document of average length containing every query term exactly once would get, i.e. the sum of
the query terms' IDFs, then clipped to [0, 1]. Terms the index has never seen count with the IDF
of a term in no document, so a query matching only common words ("how do I ...") stays low
instead of being stretched to 1. Unlike dividing by the top hit, this scale does not depend on
the other documents matching, which is what blending with cosine similarity needs.

Search is exact top-k with early termination: each term's postings hold precomputed BM25 weights
("impacts") sorted largest first, read a growing prefix per term at a time; once the k-th best
exact score reaches the sum of the next unread impacts, no unread document can overtake it
(Fagin's threshold algorithm). A postings budget bounds the cost of queries made only of very
common words; at or below that many postings per query the search is always exact.
"""

from __future__ import annotations

import re
import threading
from array import array
from collections import Counter
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75

# The default weight of an entry's context words (a community thread's body; questions weigh 1),
# `context_weight` in config.yml. On thread-style entries made from BANKING77 it raised recall@1
# by 4-6 points at the same answered precision; 1.0 gained about a point more but cost precision
# with long bodies (benchmarks/README.md, "Indexing the answer and thread body").
CONTEXT_WEIGHT = 0.5

# `search` reads at most this many postings (highest impacts first), which bounds its cost
# whatever the size of the index; it stops earlier as soon as the top k are certain.
POSTINGS_BUDGET = 12_000
# Postings read per term in the first round of a search; each further round reads 4 times more.
FIRST_READ = 1_024
READ_GROWTH = 4
# Documents completed exactly per round to raise the bar unread documents must clear.
EXACT_PER_ROUND = 32
# At most this many more documents are scored exactly when the reads stop.
MAX_HOPEFUL = 512

# A token is a run of letters/digits, joined across "-" or "_" (codes such as E-1043,
# ERR_CONN_RESET) and across "." when a digit follows (versions such as v2.3.1), so identifiers
# survive as one token; everything else splits.
_TOKEN = re.compile(r"[^\W_]+(?:(?:[-_]|\.(?=\d))[^\W_]+)*")
_CODE_JOINER = re.compile(r"[-_]")

# English function words. IDF alone cannot discount them in a KB of a few dozen entries, where
# "how do I ... my" would otherwise make unrelated questions look alike. Deliberately short (not
# scikit-learn's list, which drops words such as "bill", "amount" and "system" that matter in
# support questions); negations stay, and contraction debris ("can't" -> "can", "t") goes.
STOP_WORDS = frozenset(
    """
    a an the and or but if so as than then to of in on at by for from with about into onto over
    i me my mine we us our ours you your yours he him his she her hers it its they them their
    this that these those there here what which who whom whose when where why how
    is are was were be been being am do does did doing have has having had
    can could would should will shall may might must
    s t m d ll re ve don doesn didn isn aren wasn weren haven hasn hadn won wouldn shouldn couldn
    please hi hello thanks thank
    """.split()
)


def tokenize(text: str) -> list[str]:
    """Lowercased tokens without stop words; a hyphenated/underscored code also yields its parts
    ("E-1043" -> "e-1043", "e", "1043")."""
    tokens: list[str] = []
    for match in _TOKEN.finditer(text.lower()):
        token = match.group()
        tokens.append(token)
        if _CODE_JOINER.search(token):
            tokens.extend(_CODE_JOINER.split(token))
    return [token for token in tokens if token and token not in STOP_WORDS]


def idf(documents: Any, frequency: Any) -> Any:
    """Lucene's IDF (the "+1" variant keeps it positive even for terms in most documents), for
    numbers or arrays; a term in no document gets the highest."""
    return np.log1p((documents - frequency + 0.5) / (frequency + 0.5))


@dataclass(frozen=True)
class LexicalStatistics:
    """What BM25 needs to know about a collection: its size, total length and document frequencies."""

    documents: int
    total_length: float
    document_frequency: Mapping[str, int]

    @classmethod
    def of(cls, documents: Iterable[Mapping[str, float]]) -> LexicalStatistics:
        """The statistics of documents given as term -> frequency."""
        frequency: Counter[str] = Counter()
        count, total = 0, 0.0
        for document in documents:
            frequency.update(document.keys())
            total += sum(document.values())
            count += 1
        return cls(count, total, frequency)


class LexicalIndex:
    """Okapi BM25 over documents made of question variants plus an optionally down-weighted answer
    and context.

    Immutable once built, so one index can serve many threads.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[str]],
        *,
        answers: Sequence[str] | None = None,
        answer_weight: float = 0.25,
        contexts: Sequence[str] | None = None,
        context_weight: float = CONTEXT_WEIGHT,
        postings_budget: int = POSTINGS_BUDGET,
    ) -> None:
        """`answers` and `contexts` hold one text per document (or are None); their words count
        `answer_weight` and `context_weight` times a question word's, 0 leaving them out."""
        weighted_fields = {"answer": (answers, answer_weight), "context": (contexts, context_weight)}
        for name, (texts, weight) in weighted_fields.items():
            if texts is not None and len(texts) != len(documents):
                raise ValueError(f"got {len(texts)} {name}s for {len(documents)} documents; need one per document")
            if weight < 0:
                raise ValueError(f"{name}_weight must be >= 0, got {weight}")
        if postings_budget < 1:
            raise ValueError(f"postings_budget must be >= 1, got {postings_budget}")
        self._postings_budget = postings_budget

        self._vocabulary: dict[str, int] = {}
        variant_texts = [text for variants in documents for text in variants]
        variant_tokens = self._token_ids(variant_texts)
        # Every field is tokenized before any count matrix is built: their width is the vocabulary's.
        field_tokens = [
            (weight, self._token_ids(texts))
            for texts, weight in weighted_fields.values()
            if texts is not None and weight > 0
        ]
        self._variant_tf = self._count_matrix(variant_tokens, len(variant_texts))
        self._variant_doc = np.repeat(np.arange(len(documents)), [len(variants) for variants in documents])
        self._variant_length = np.asarray(self._variant_tf.sum(axis=1), dtype=np.float64).ravel()
        n_variants = len(self._variant_doc)
        membership = sparse.csr_matrix(
            (np.ones(n_variants, dtype=np.float32), (self._variant_doc, np.arange(n_variants))),
            shape=(len(documents), n_variants),
        )
        doc_tf = membership @ self._variant_tf
        for weight, tokens in field_tokens:
            doc_tf = doc_tf + np.float32(weight) * self._count_matrix(tokens, len(documents))
        # Document-major: a document's terms and frequencies, to score given documents exactly.
        self._doc_terms = sparse.csr_matrix(doc_tf, dtype=np.float32)
        self._doc_terms.sort_indices()
        self._doc_length = np.asarray(self._doc_terms.sum(axis=1), dtype=np.float64).ravel()

        n_docs = len(documents)
        # Guard against an index whose documents have no tokens at all (no term can match then).
        self._average_length = float(self._doc_length.mean()) if n_docs else 0.0
        self._average_length = self._average_length or 1.0
        self._doc_freq = np.bincount(self._doc_terms.indices, minlength=len(self._vocabulary))
        self._idf = idf(n_docs, self._doc_freq.astype(np.float64))
        self._unseen_idf = float(idf(n_docs, 0))
        self._build_postings()
        self._free_arrays = threading.local()

    def _build_postings(self) -> None:
        """Term-major postings, each term's a contiguous slice sorted by impact, largest first."""
        matrix = self._doc_terms
        docs = np.repeat(np.arange(len(self), dtype=np.int32), np.diff(matrix.indptr))
        terms = matrix.indices
        impacts = self._impacts(terms, matrix.data, self._doc_length[docs])
        order = np.lexsort((docs, -impacts, terms))
        self._posting_docs = docs[order]
        self._posting_impacts = impacts[order]
        self._posting_start = np.concatenate(([0], np.cumsum(self._doc_freq))).astype(np.int64)

    def __len__(self) -> int:
        return len(self._doc_length)

    def statistics(self) -> LexicalStatistics:
        """The collection's size, total length and every term's document frequency."""
        # Term ids were given in order of first appearance, as the vocabulary keeps its keys.
        return LexicalStatistics(
            len(self), float(self._doc_length.sum()), dict(zip(self._vocabulary, self._doc_freq.tolist()))
        )

    def scores(self, query: str, *, without_variants: Collection[int] = ()) -> np.ndarray:
        """Normalised BM25 score in [0, 1] of every document for `query`, ignoring the given variants.

        Exhaustive: its cost grows with the number of documents holding any query term.
        """
        result = np.zeros(len(self), dtype=np.float64)
        query_terms = self._query_terms(query)
        if query_terms is None:
            return result
        term_ids, ideal = query_terms
        for term_id in term_ids.tolist():
            start, end = self._posting_start[term_id], self._posting_start[term_id + 1]
            result[self._posting_docs[start:end]] += self._posting_impacts[start:end]
        docs = np.flatnonzero(result)
        result[docs] = self._without(docs, result[docs], term_ids, without_variants)
        return np.clip(result / ideal, 0.0, 1.0)

    def search(self, query: str, top_k: int, *, without_variants: Collection[int] = ()) -> list[tuple[int, float]]:
        """The `top_k` best (document index, normalised score) pairs with a score above zero.

        Equal to ranking `scores` (up to ties) whenever the search ends before reading
        `postings_budget` postings; past the budget, the best documents among those read.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        query_terms = self._query_terms(query)
        if query_terms is None or not len(query_terms[0]):
            return []
        term_ids, ideal = query_terms
        scored = _Scored()
        candidates, upper, bar = self._read_postings(term_ids, top_k, without_variants, scored)
        could_beat = upper > bar + 1e-9
        hopeful = candidates[could_beat][top_indices(upper[could_beat], MAX_HOPEFUL)]
        self._score_exactly(hopeful, term_ids, without_variants, scored)
        best = scored.best(top_k)
        return [
            (int(doc), min(float(raw) / ideal, 1.0)) for doc, raw in zip(scored.docs[best], scored.raw[best]) if raw > 0
        ]

    def _read_postings(
        self, term_ids: np.ndarray, top_k: int, without_variants: Collection[int], scored: _Scored
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Reads the terms' postings, largest impacts first, in growing rounds until no unread
        document can beat the k-th best exact score (the bar) or the budget is spent.

        Returns the documents read, an upper bound of each one's raw score, and the bar.
        """
        read, end = self._posting_start[term_ids], self._posting_start[term_ids + 1]
        with self._accumulator() as partial:
            slices: list[tuple[int, np.ndarray]] = []  # (query term position, documents read)
            touched: list[np.ndarray] = []  # documents read for the first time, per slice
            budget, chunk = self._postings_budget, FIRST_READ
            while True:
                stop = np.minimum(read + chunk, end)
                budget -= int((stop - read).sum())
                for term, (start, until) in enumerate(zip(read.tolist(), stop.tolist())):
                    docs = self._posting_docs[start:until]
                    touched.append(docs[partial[docs] == 0])  # impacts are > 0
                    partial[docs] += self._posting_impacts[start:until]  # one posting per document
                    slices.append((term, docs))
                read = stop
                # No document gains more from a term than the term's next unread impact.
                following = np.zeros(len(read), dtype=np.float64)
                following[read < end] = self._posting_impacts[read[read < end]]
                unread = float(following.sum())
                candidates = np.concatenate(touched)
                leaders = candidates[top_indices(partial[candidates], EXACT_PER_ROUND)]
                self._score_exactly(leaders, term_ids, without_variants, scored)
                bar = scored.kth_best(top_k)
                if unread <= bar or budget <= 0:
                    break
                chunk *= READ_GROWTH
            # A document read can still gain the next impacts of the terms it was not read in.
            upper = partial[candidates] + unread
            partial[candidates] = 0.0
            read_in = partial  # reused: one array of this size per thread is enough
            for term, docs in slices:
                read_in[docs] += following[term]
            upper -= read_in[candidates]
            read_in[candidates] = 0.0
        return candidates, upper, bar

    def _score_exactly(
        self, docs: np.ndarray, term_ids: np.ndarray, without_variants: Collection[int], scored: _Scored
    ) -> None:
        """Adds the raw scores of the documents `scored` lacks to it."""
        fresh = docs[~np.isin(docs, scored.docs)]
        if len(fresh):
            raw = self._raw_scores(term_ids, fresh)
            scored.add(fresh, self._without(fresh, raw, term_ids, without_variants))

    @contextmanager
    def _accumulator(self) -> Iterator[np.ndarray]:
        """A zeroed float64 array with a slot per document, lent to this thread: the caller zeroes
        the slots it used before returning it. Reused because allocating and zeroing one per
        query would cost more than a search over a million documents (8 MB per searching
        thread there)."""
        free = self._free_arrays.__dict__.setdefault("arrays", [])
        array = free.pop() if free else np.zeros(len(self), dtype=np.float64)
        yield array  # not returned when the caller raises: its slots may not be zero
        free.append(array)

    def score_documents(self, query: str, docs: np.ndarray, *, without_variants: Collection[int] = ()) -> np.ndarray:
        """Normalised BM25 scores of the given documents only (what `scores` would give them)."""
        docs = np.asarray(docs, dtype=np.int64)
        query_terms = self._query_terms(query)
        if query_terms is None or not len(docs):
            return np.zeros(len(docs), dtype=np.float64)
        term_ids, ideal = query_terms
        raw = self._without(docs, self._raw_scores(term_ids, docs), term_ids, without_variants)
        return np.clip(raw / ideal, 0.0, 1.0)

    def _query_terms(self, query: str) -> tuple[np.ndarray, float] | None:
        """(ids of the query's known terms, normaliser), or None when nothing can match."""
        terms = set(tokenize(query))
        if not terms or not len(self):
            return None
        term_ids = np.array(sorted(self._vocabulary[t] for t in terms if t in self._vocabulary), dtype=np.int64)
        ideal = float(self._idf[term_ids].sum()) + self._unseen_idf * (len(terms) - len(term_ids))
        return term_ids, ideal

    def _raw_scores(self, term_ids: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Raw BM25 of `docs` over `term_ids` (sorted), from the documents' own term lists."""
        rows, terms, tf = self._document_terms(term_ids, docs)
        impacts = self._impacts(terms, tf, self._doc_length[docs[rows]])
        return np.bincount(rows, weights=impacts, minlength=len(docs))

    def _term_frequencies(self, term_ids: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """tf[i, j] = weighted frequency of term `term_ids[i]` (sorted) in document `docs[j]`."""
        rows, terms, frequencies = self._document_terms(term_ids, docs)
        tf = np.zeros((len(term_ids), len(docs)), dtype=np.float64)
        tf[np.searchsorted(term_ids, terms), rows] = frequencies
        return tf

    def _document_terms(self, term_ids: np.ndarray, docs: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position in `docs`, term id, frequency) of each of `term_ids` that the documents hold."""
        matrix = self._doc_terms
        if not len(term_ids):
            nothing = np.zeros(0, dtype=np.int64)
            return nothing, nothing, np.zeros(0, dtype=np.float32)
        starts = matrix.indptr[docs]
        counts = matrix.indptr[docs + 1] - starts
        rows = np.repeat(np.arange(len(docs)), counts)
        # Positions of every document's slice, laid end to end.
        offsets = starts - np.cumsum(counts) + counts
        positions = np.arange(int(counts.sum())) + np.repeat(offsets, counts)
        terms = matrix.indices[positions]
        # term_ids is short and sorted: a binary search beats np.isin's set machinery.
        nearest = np.minimum(np.searchsorted(term_ids, terms), len(term_ids) - 1)
        wanted = term_ids[nearest] == terms
        return rows[wanted], terms[wanted], matrix.data[positions[wanted]]

    def _without(
        self, docs: np.ndarray, raw: np.ndarray, term_ids: np.ndarray, without_variants: Collection[int]
    ) -> np.ndarray:
        """`raw` with the scores of documents that lose some variants recomputed without them.

        IDF and average length keep counting the left-out variants: a negligible shift for one
        variant out of thousands, and it keeps the index immutable (safe to share across threads).
        """
        if not without_variants or not len(docs):
            return raw
        variants = np.array(sorted(set(without_variants)), dtype=np.int64)
        owners = self._variant_doc[variants]
        affected = np.intersect1d(owners, docs)
        if not len(affected):
            return raw
        raw = raw.copy()
        tf = self._term_frequencies(term_ids, affected)
        for column, doc in enumerate(affected.tolist()):
            own = variants[owners == doc]
            doc_tf = tf[:, column]
            for variant in own:
                doc_tf = doc_tf - _row_values(self._variant_tf, variant, term_ids)
            length = self._doc_length[doc] - self._variant_length[own].sum()
            present = doc_tf > 1e-6
            impacts = self._impacts(term_ids[present], doc_tf[present], np.full(present.sum(), length))
            raw[docs == doc] = float(impacts.sum(dtype=np.float64))
        return raw

    def _impacts(self, term_ids: np.ndarray, tf: np.ndarray, doc_length: np.ndarray) -> np.ndarray:
        """BM25 weights of terms in documents, as float32: the postings store them so, and
        every other path rounds the same way, so all paths give a document the same score."""
        length_norm = 1.0 - B + B * np.asarray(doc_length, dtype=np.float64) / self._average_length
        weights = self._idf[term_ids] * tf * (K1 + 1.0) / (tf + K1 * length_norm)
        return weights.astype(np.float32)

    def _token_ids(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """(row, term id) per token occurrence, growing the vocabulary as terms appear.

        Typed arrays rather than Counters or lists of ints: at a million texts, per-token Python
        objects would cost gigabytes while the index is built.
        """
        rows, columns = array("q"), array("q")
        vocabulary = self._vocabulary
        for row, text in enumerate(texts):
            for token in tokenize(text):
                columns.append(vocabulary.setdefault(token, len(vocabulary)))
                rows.append(row)
        return np.frombuffer(rows, dtype=np.int64), np.frombuffer(columns, dtype=np.int64)

    def _count_matrix(self, tokens: tuple[np.ndarray, np.ndarray], n_rows: int) -> sparse.csr_matrix:
        rows, columns = tokens
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(n_rows, len(self._vocabulary)),
        )
        matrix.sum_duplicates()  # _row_values binary-searches sorted, unique column indices
        return matrix


class _Scored:
    """Documents scored exactly during one search, with their raw scores."""

    def __init__(self) -> None:
        self.docs = np.zeros(0, dtype=np.int64)
        self.raw = np.zeros(0, dtype=np.float64)

    def add(self, docs: np.ndarray, raw: np.ndarray) -> None:
        self.docs = np.concatenate((self.docs, docs))
        self.raw = np.concatenate((self.raw, raw))

    def kth_best(self, k: int) -> float:
        """The k-th best raw score (0 while fewer than k documents are scored)."""
        if len(self.raw) < k:
            return 0.0
        return float(np.partition(self.raw, len(self.raw) - k)[len(self.raw) - k])

    def best(self, k: int) -> np.ndarray:
        """Positions of the k best, best first; equal scores by document number."""
        contenders = np.flatnonzero(self.raw >= self.kth_best(k))
        order = np.lexsort((self.docs[contenders], -self.raw[contenders]))
        return contenders[order[:k]]


def _lookup(keys: np.ndarray, values: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """values[keys == w] for each w in `wanted` (0 where absent); `keys` sorted and unique."""
    found = np.zeros(len(wanted), dtype=np.float64)
    if not len(keys):
        return found
    # Same dtype, or numpy converts all of `keys` (a posting list can be 100k long) every call.
    wanted = wanted.astype(keys.dtype, copy=False)
    positions = np.minimum(np.searchsorted(keys, wanted), len(keys) - 1)
    hit = keys[positions] == wanted
    found[hit] = values[positions[hit]]
    return found


def _row_values(matrix: sparse.csr_matrix, row: int, columns: np.ndarray) -> np.ndarray:
    """matrix[row, columns] as a dense array, without building scipy intermediates (hot path)."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    return _lookup(matrix.indices[start:end], matrix.data[start:end], columns)


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest values, largest first (without a full sort of `values`)."""
    if k >= len(values):
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]
