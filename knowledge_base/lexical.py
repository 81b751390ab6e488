"""BM25 lexical index: the signal for rare words (error codes, product names) that sentence
embeddings blur.

One document per knowledge-base entry, made of its question variants (weight 1) and, optionally,
its answer at a lower weight. Variants are numbered globally in document order then variant
order (the same numbering as the retriever's vector rows), so a caller can leave single variants
out of a query (`without_variants`, used for leave-one-out calibration).

Score scale: a query's raw Okapi BM25 score (k1=1.2, b=0.75) is divided by the score that a
document of average length containing every query term exactly once would get, i.e. the sum of
the query terms' IDFs, then clipped to [0, 1]. Terms the index has never seen count with the IDF
of a term in no document, so a query matching only common words ("how do I ...") stays low
instead of being stretched to 1. Unlike dividing by the top hit, this scale does not depend on
the other documents matching, which is what blending with cosine similarity needs.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Collection, Sequence

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75

# `search` reads at most this many postings to find candidates (rarest query terms first), which
# bounds its cost whatever the size of the index; at or below this many documents it is exhaustive.
POSTINGS_BUDGET = 20_000
# Best candidates by their rarer terms that also get the scores of terms too common to read.
CANDIDATE_POOL = 256

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


class LexicalIndex:
    """Okapi BM25 over documents made of question variants plus an optionally down-weighted answer.

    Immutable once built, so one index can serve many threads.
    """

    def __init__(
        self,
        documents: Sequence[Sequence[str]],
        *,
        answers: Sequence[str] | None = None,
        answer_weight: float = 0.25,
        postings_budget: int = POSTINGS_BUDGET,
    ) -> None:
        if answers is not None and len(answers) != len(documents):
            raise ValueError(
                f"got {len(answers)} answers for {len(documents)} documents; need one per document"
            )
        if answer_weight < 0:
            raise ValueError(f"answer_weight must be >= 0, got {answer_weight}")
        if postings_budget < 1:
            raise ValueError(f"postings_budget must be >= 1, got {postings_budget}")
        self._postings_budget = postings_budget

        self._vocabulary: dict[str, int] = {}
        variant_texts = [text for variants in documents for text in variants]
        variant_tokens = self._token_ids(variant_texts)
        answer_tokens = (
            self._token_ids(answers) if answers is not None and answer_weight > 0 else None
        )
        self._variant_tf = self._count_matrix(variant_tokens, len(variant_texts))
        self._variant_doc = np.repeat(
            np.arange(len(documents)), [len(variants) for variants in documents]
        )
        self._variant_length = np.asarray(self._variant_tf.sum(axis=1), dtype=np.float64).ravel()
        n_variants = len(self._variant_doc)
        membership = sparse.csr_matrix(
            (np.ones(n_variants, dtype=np.float32), (self._variant_doc, np.arange(n_variants))),
            shape=(len(documents), n_variants),
        )
        doc_tf = membership @ self._variant_tf
        if answer_tokens is not None:
            doc_tf = doc_tf + np.float32(answer_weight) * self._count_matrix(
                answer_tokens, len(documents)
            )
        # Term-major: a term's postings (documents and term frequencies) are one contiguous slice.
        self._postings = sparse.csc_matrix(doc_tf, dtype=np.float32)
        self._postings.sort_indices()
        self._doc_length = np.asarray(doc_tf.sum(axis=1), dtype=np.float64).ravel()

        n_docs = len(documents)
        # Guard against an index whose documents have no tokens at all (no term can match then).
        self._average_length = float(self._doc_length.mean()) if n_docs else 0.0
        self._average_length = self._average_length or 1.0
        self._doc_freq = np.diff(self._postings.indptr)
        self._idf = self._idf_for(self._doc_freq.astype(np.float64), n_docs)
        self._unseen_idf = float(self._idf_for(np.zeros(1), n_docs)[0])

    def __len__(self) -> int:
        return len(self._doc_length)

    def scores(self, query: str, *, without_variants: Collection[int] = ()) -> np.ndarray:
        """Normalised BM25 score in [0, 1] of every document for `query`, ignoring the given variants.

        Exhaustive: its cost grows with the number of documents holding any query term.
        """
        result = np.zeros(len(self), dtype=np.float64)
        query_terms = self._query_terms(query)
        if query_terms is None:
            return result
        term_ids, ideal = query_terms
        docs, raw = self._accumulate(term_ids)
        raw = self._without(docs, raw, term_ids, without_variants)
        result[docs] = np.clip(raw / ideal, 0.0, 1.0)
        return result

    def search(
        self, query: str, top_k: int, *, without_variants: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """The `top_k` best (document index, normalised score) pairs with a score above zero.

        Candidates are the documents holding the query's rarest terms, taken rarest first while
        their postings fit in `postings_budget`; when every query term fits (always, in a KB of
        that many documents or fewer) the result equals ranking `scores`. Terms too common to fit
        add their share to the best `CANDIDATE_POOL` candidates only: they cannot single out a
        document among hundreds of thousands anyway, and reading their postings would cost more
        than the rest of a search.
        """
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        query_terms = self._query_terms(query)
        if query_terms is None:
            return []
        term_ids, ideal = query_terms
        by_rarity = term_ids[np.argsort(self._doc_freq[term_ids], kind="stable")]
        fits = np.cumsum(self._doc_freq[by_rarity]) <= self._postings_budget
        selective, common = by_rarity[fits], by_rarity[~fits]
        if not len(selective):
            return []
        docs, raw = self._accumulate(selective)
        if len(common):
            pool = np.sort(top_indices(raw, CANDIDATE_POOL))
            docs = docs[pool]
            raw = raw[pool] + self._raw_scores(common, docs)
        scores = np.clip(self._without(docs, raw, term_ids, without_variants) / ideal, 0.0, 1.0)
        best = top_indices(scores, top_k)
        return [(int(docs[i]), float(scores[i])) for i in best if scores[i] > 0]

    def score_documents(
        self, query: str, docs: np.ndarray, *, without_variants: Collection[int] = ()
    ) -> np.ndarray:
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
        term_ids = np.array(
            sorted(self._vocabulary[t] for t in terms if t in self._vocabulary), dtype=np.int64
        )
        ideal = float(self._idf[term_ids].sum()) + self._unseen_idf * (len(terms) - len(term_ids))
        return term_ids, ideal

    def _accumulate(self, term_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sorted documents holding any of the terms, their raw BM25 over those terms)."""
        postings = self._postings
        docs_parts, score_parts = [], []
        for term_id in term_ids.tolist():
            start, end = postings.indptr[term_id], postings.indptr[term_id + 1]
            docs = postings.indices[start:end]
            docs_parts.append(docs)
            score_parts.append(
                self._term_score(term_id, postings.data[start:end], self._doc_length[docs])
            )
        if not docs_parts:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
        if len(docs_parts) == 1:  # one term's postings are sorted and unique already
            return docs_parts[0].astype(np.int64), score_parts[0]
        docs, positions = np.unique(np.concatenate(docs_parts), return_inverse=True)
        raw = np.bincount(positions, weights=np.concatenate(score_parts), minlength=len(docs))
        return docs.astype(np.int64), raw

    def _raw_scores(self, term_ids: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """Raw BM25 of `docs` over `term_ids`, looking each document up in each term's postings."""
        raw = np.zeros(len(docs), dtype=np.float64)
        tf = self._term_frequencies(term_ids, docs)
        for row, term_id in enumerate(term_ids.tolist()):
            present = tf[row] > 0
            raw[present] += self._term_score(term_id, tf[row, present], self._doc_length[docs[present]])
        return raw

    def _term_frequencies(self, term_ids: np.ndarray, docs: np.ndarray) -> np.ndarray:
        """tf[i, j] = weighted frequency of term `term_ids[i]` in document `docs[j]`."""
        postings = self._postings
        tf = np.zeros((len(term_ids), len(docs)), dtype=np.float64)
        for row, term_id in enumerate(term_ids.tolist()):
            start, end = postings.indptr[term_id], postings.indptr[term_id + 1]
            tf[row] = _lookup(postings.indices[start:end], postings.data[start:end], docs)
        return tf

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
            raw[docs == doc] = float(
                self._term_score(term_ids[present], doc_tf[present], np.full(present.sum(), length)).sum()
            )
        return raw

    def _term_score(
        self, term_id: int | np.ndarray, tf: np.ndarray, doc_length: np.ndarray
    ) -> np.ndarray:
        length_norm = 1.0 - B + B * doc_length / self._average_length
        return self._idf[term_id] * tf * (K1 + 1.0) / (tf + K1 * length_norm)

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

    def _count_matrix(
        self, tokens: tuple[np.ndarray, np.ndarray], n_rows: int
    ) -> sparse.csr_matrix:
        rows, columns = tokens
        matrix = sparse.csr_matrix(
            (np.ones(len(rows), dtype=np.float32), (rows, columns)),
            shape=(n_rows, len(self._vocabulary)),
        )
        matrix.sum_duplicates()  # _row_values binary-searches sorted, unique column indices
        return matrix

    @staticmethod
    def _idf_for(doc_freq: np.ndarray, n_docs: int) -> np.ndarray:
        # The "+1" variant (Lucene's) keeps IDF positive even for terms in most documents.
        return np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


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
