"""TF-IDF features (word 1–2-grams + char_wb 2–5-grams) that can be saved without pickle.

Sentence embeddings blur rare but decisive words (product names, error codes); the lexical block
keeps them visible to the intent classifier.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfVectorizer

# analyzer, ngram_range: the two blocks, each L2-normalised per row.
_BLOCKS: dict[str, tuple[str, tuple[int, int]]] = {
    "word": ("word", (1, 2)),
    "char": ("char_wb", (2, 5)),
}
# Each block has unit norm; 1/sqrt(2) per block gives the lexical part unit norm as a whole,
# the same as the sentence embedding, so neither side drowns the other in the regularised head.
_BLOCK_WEIGHT = float(1.0 / np.sqrt(len(_BLOCKS)))


def _vectorizer(block: str, vocabulary: Sequence[str] | None = None) -> TfidfVectorizer:
    analyzer, ngram_range = _BLOCKS[block]
    return TfidfVectorizer(
        analyzer=analyzer,
        ngram_range=ngram_range,
        sublinear_tf=True,
        min_df=1,
        lowercase=True,
        dtype=np.float32,
        vocabulary=vocabulary,
    )


@dataclass(frozen=True)
class _Block:
    """One fitted TF-IDF block: what `TfidfVectorizer.transform` needs, without its checks."""

    analyzer: Callable[[str], list[str]]
    vocabulary: Mapping[str, int]
    idf: np.ndarray  # float32, one weight per column of the block
    offset: int  # the block's first column among all lexical features

    def row(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """Columns (sorted, offset applied) and weights of `text`: sublinear tf x idf, L2
        norm, times the block weight."""
        counts = Counter(column for term in self.analyzer(text) if (column := self.vocabulary.get(term)) is not None)
        columns = np.fromiter(sorted(counts), dtype=np.int64, count=len(counts))
        tf = np.fromiter((counts[c] for c in columns.tolist()), dtype=np.float32, count=len(counts))
        values = (np.log(tf) + np.float32(1.0)) * self.idf[columns]
        norm = np.sqrt(np.dot(values, values))
        if norm > 0:
            values *= np.float32(_BLOCK_WEIGHT / norm)
        return columns + self.offset, values


class LexicalFeatures:
    """Fitted TF-IDF vocabularies and idf weights; `transform` gives rows of norm 1."""

    def __init__(self, vectorizers: Mapping[str, TfidfVectorizer]) -> None:
        self._vectorizers = dict(vectorizers)
        self._blocks: list[_Block] = []
        offset = 0
        for block in _BLOCKS:
            vectorizer = self._vectorizers[block]
            self._blocks.append(
                _Block(
                    vectorizer.build_analyzer(),
                    vectorizer.vocabulary_,
                    np.asarray(vectorizer.idf_, dtype=np.float32),
                    offset,
                )
            )
            offset += len(vectorizer.vocabulary_)

    def __reduce__(self) -> tuple[type[LexicalFeatures], tuple[dict[str, TfidfVectorizer]]]:
        # Pickled by joblib when fitted in a worker process; analyzers don't pickle, so they
        # are rebuilt from the vectorizers.
        return LexicalFeatures, (self._vectorizers,)

    @classmethod
    def fit(cls, texts: Sequence[str]) -> LexicalFeatures:
        vectorizers = {}
        for block in _BLOCKS:
            vectorizer = _vectorizer(block)
            vectorizer.fit(list(texts))
            vectorizers[block] = vectorizer
        return cls(vectorizers)

    @property
    def dimension(self) -> int:
        return sum(len(v.vocabulary_) for v in self._vectorizers.values())

    def transform(self, texts: Sequence[str]) -> sparse.csr_matrix:
        """TfidfVectorizer.transform of each block, side by side, each block weighted.

        Computed here rather than by scikit-learn, whose per-call input validation cost ~3 ms
        for the single message a server transforms (benchmarks/README.md, latency).
        """
        rows = [block.row(text) for text in texts for block in self._blocks]
        indptr = np.concatenate(([0], np.cumsum([len(values) for _, values in rows], dtype=np.int64)))[
            :: len(self._blocks)
        ]
        return sparse.csr_matrix(
            (
                np.concatenate([values for _, values in rows] or [np.zeros(0, np.float32)]),
                np.concatenate([columns for columns, _ in rows] or [np.zeros(0, np.int64)]),
                indptr,
            ),
            shape=(len(texts), self.dimension),
            dtype=np.float32,
        )

    def vocabularies(self) -> dict[str, list[str]]:
        """Terms per block, ordered by feature column (JSON-serialisable)."""
        return {block: sorted(v.vocabulary_, key=v.vocabulary_.__getitem__) for block, v in self._vectorizers.items()}

    def idf_arrays(self) -> dict[str, np.ndarray]:
        return {block: np.asarray(v.idf_, dtype=np.float32) for block, v in self._vectorizers.items()}

    @classmethod
    def from_state(cls, vocabularies: Mapping[str, Any], idfs: Mapping[str, np.ndarray]) -> LexicalFeatures:
        """Rebuild from `vocabularies()` + `idf_arrays()`; raises ValueError if they don't fit."""
        vectorizers = {}
        for block in _BLOCKS:
            terms = vocabularies.get(block)
            idf = idfs.get(block)
            if not isinstance(terms, list) or not all(isinstance(t, str) for t in terms):
                raise ValueError(f"lexical block {block!r}: vocabulary must be a list of strings")
            if idf is None or idf.shape != (len(terms),):
                raise ValueError(
                    f"lexical block {block!r}: idf has shape "
                    f"{None if idf is None else idf.shape}, expected ({len(terms)},)"
                )
            if len(set(terms)) != len(terms):
                raise ValueError(f"lexical block {block!r}: vocabulary has duplicate terms")
            vectorizer = _vectorizer(block, vocabulary=terms)
            vectorizer.idf_ = idf
            vectorizers[block] = vectorizer
        return cls(vectorizers)
