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
from collections import Counter
from collections.abc import Collection, Sequence

import numpy as np
from scipy import sparse

K1 = 1.2
B = 0.75

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
    """Okapi BM25 over documents made of question variants plus an optionally down-weighted answer."""

    def __init__(
        self,
        documents: Sequence[Sequence[str]],
        *,
        answers: Sequence[str] | None = None,
        answer_weight: float = 0.25,
    ) -> None:
        if answers is not None and len(answers) != len(documents):
            raise ValueError(
                f"got {len(answers)} answers for {len(documents)} documents; need one per document"
            )
        if answer_weight < 0:
            raise ValueError(f"answer_weight must be >= 0, got {answer_weight}")

        variant_counts = [Counter(tokenize(text)) for variants in documents for text in variants]
        answer_counts = (
            [Counter(tokenize(text)) for text in answers]
            if answers is not None and answer_weight > 0
            else []
        )
        self._vocabulary: dict[str, int] = {}
        for counter in (*variant_counts, *answer_counts):
            for token in counter:
                self._vocabulary.setdefault(token, len(self._vocabulary))

        self._variant_tf = self._count_matrix(variant_counts)
        self._variant_doc = np.repeat(
            np.arange(len(documents)), [len(variants) for variants in documents]
        )
        self._variant_length = np.asarray(self._variant_tf.sum(axis=1), dtype=np.float64).ravel()
        n_variants = len(self._variant_doc)
        membership = sparse.csr_matrix(
            (np.ones(n_variants), (self._variant_doc, np.arange(n_variants))),
            shape=(len(documents), n_variants),
        )
        doc_tf = membership @ self._variant_tf
        if answer_counts:
            doc_tf = doc_tf + answer_weight * self._count_matrix(answer_counts)
        self._doc_tf = sparse.csr_matrix(doc_tf)
        self._doc_tf.sort_indices()
        self._doc_tf_by_term = sparse.csc_matrix(doc_tf)
        self._doc_length = np.asarray(doc_tf.sum(axis=1), dtype=np.float64).ravel()

        n_docs = len(documents)
        # Guard against an index whose documents have no tokens at all (no term can match then).
        self._average_length = float(self._doc_length.mean()) if n_docs else 0.0
        self._average_length = self._average_length or 1.0
        doc_freq = np.diff(self._doc_tf_by_term.indptr).astype(np.float64)
        self._idf = self._idf_for(doc_freq, n_docs)
        self._unseen_idf = float(self._idf_for(np.zeros(1), n_docs)[0])

    def __len__(self) -> int:
        return len(self._doc_length)

    def scores(self, query: str, *, without_variants: Collection[int] = ()) -> np.ndarray:
        """Normalised BM25 score in [0, 1] of every document for `query`, ignoring the given variants."""
        result = np.zeros(len(self), dtype=np.float64)
        terms = set(tokenize(query))
        if not terms or not len(self):
            return result
        term_ids = np.array(
            sorted(self._vocabulary[t] for t in terms if t in self._vocabulary), dtype=np.int64
        )
        ideal = float(self._idf[term_ids].sum()) + self._unseen_idf * (len(terms) - len(term_ids))

        by_term = self._doc_tf_by_term
        for term_id in term_ids:
            start, end = by_term.indptr[term_id], by_term.indptr[term_id + 1]
            docs = by_term.indices[start:end]
            result[docs] += self._term_score(term_id, by_term.data[start:end], self._doc_length[docs])

        if without_variants:
            self._rescore_without(result, term_ids, without_variants)
        return np.clip(result / ideal, 0.0, 1.0)

    def search(
        self, query: str, top_k: int, *, without_variants: Collection[int] = ()
    ) -> list[tuple[int, float]]:
        """The `top_k` best (document index, normalised score) pairs with a score above zero."""
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1, got {top_k}")
        all_scores = self.scores(query, without_variants=without_variants)
        best = top_indices(all_scores, top_k)
        return [(int(doc), float(all_scores[doc])) for doc in best if all_scores[doc] > 0]

    def _rescore_without(
        self, result: np.ndarray, term_ids: np.ndarray, without_variants: Collection[int]
    ) -> None:
        """Recompute, in place, the raw scores of documents that lose some variants.

        IDF and average length keep counting the left-out variants: a negligible shift for one
        variant out of thousands, and it keeps the index immutable (safe to share across threads).
        """
        variants = np.array(sorted(set(without_variants)), dtype=np.int64)
        for doc in np.unique(self._variant_doc[variants]):
            own = variants[self._variant_doc[variants] == doc]
            tf = _row_values(self._doc_tf, doc, term_ids)
            for variant in own:
                tf -= _row_values(self._variant_tf, variant, term_ids)
            length = self._doc_length[doc] - self._variant_length[own].sum()
            present = tf > 1e-9
            result[doc] = float(
                self._term_score(term_ids[present], tf[present], np.full(present.sum(), length)).sum()
            )

    def _term_score(
        self, term_id: int | np.ndarray, tf: np.ndarray, doc_length: np.ndarray
    ) -> np.ndarray:
        length_norm = 1.0 - B + B * doc_length / self._average_length
        return self._idf[term_id] * tf * (K1 + 1.0) / (tf + K1 * length_norm)

    def _count_matrix(self, counts: Sequence[Counter[str]]) -> sparse.csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        values: list[float] = []
        for row, counter in enumerate(counts):
            for token, count in counter.items():
                rows.append(row)
                cols.append(self._vocabulary[token])
                values.append(float(count))
        matrix = sparse.csr_matrix(
            (values, (rows, cols)), shape=(len(counts), len(self._vocabulary)), dtype=np.float64
        )
        matrix.sort_indices()  # _row_values binary-searches the column indices
        return matrix

    @staticmethod
    def _idf_for(doc_freq: np.ndarray, n_docs: int) -> np.ndarray:
        # The "+1" variant (Lucene's) keeps IDF positive even for terms in most documents.
        return np.log1p((n_docs - doc_freq + 0.5) / (doc_freq + 0.5))


def _row_values(matrix: sparse.csr_matrix, row: int, columns: np.ndarray) -> np.ndarray:
    """matrix[row, columns] as a dense array, without building scipy intermediates (hot path)."""
    start, end = matrix.indptr[row], matrix.indptr[row + 1]
    row_columns, row_values = matrix.indices[start:end], matrix.data[start:end]
    positions = np.minimum(np.searchsorted(row_columns, columns), max(len(row_columns) - 1, 0))
    values = np.zeros(len(columns), dtype=np.float64)
    if len(row_columns):
        found = row_columns[positions] == columns
        values[found] = row_values[positions[found]]
    return values


def top_indices(values: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` largest values, largest first (without a full sort of `values`)."""
    if k >= len(values):
        return np.argsort(-values, kind="stable")
    part = np.argpartition(-values, k - 1)[:k]
    return part[np.argsort(-values[part], kind="stable")]
