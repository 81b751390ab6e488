"""How close a message is to what an intent was trained on: the cosine similarity to its nearest
training example, per intent.

A message about a topic nobody trained on still gets a confident top intent from a classifier
(softmax spreads all the mass over the known topics), but it usually sits far from every
training example of that intent. The open-set calibration (`nlu/open_set.py`) uses this
distance beside the classifier's probability.
"""

from __future__ import annotations

import numpy as np

# Queries compared at once: a (chunk x examples) float32 block stays near 40 MB at 10k examples.
_CHUNK = 1024
# Similarity given to an intent without examples (a class absent from a calibration fold).
NO_EXAMPLE = -1.0


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (zero rows stay zero), as float32."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms > 0, norms, 1.0)


class NearestExamples:
    """Training vectors grouped by class; `similarity` gives each query's best match per class."""

    def __init__(self, vectors: np.ndarray, label_idx: np.ndarray, n_classes: int) -> None:
        label_idx = np.asarray(label_idx, dtype=np.int64)
        if len(vectors) != len(label_idx):
            raise ValueError(f"got {len(vectors)} vectors but {len(label_idx)} labels")
        order = np.argsort(label_idx, kind="stable")
        self.vectors = unit_rows(vectors)[order]
        self.label_idx = label_idx[order]
        self.n_classes = n_classes
        # Where each present class's block starts in the sorted rows (for maximum.reduceat).
        self._present, self._starts = np.unique(self.label_idx, return_index=True)
        ends = np.append(self._starts[1:], len(self.vectors))
        self._block_of = {int(c): (int(b), int(e)) for c, b, e in zip(self._present, self._starts, ends)}

    def similarity_to(self, queries: np.ndarray, classes: np.ndarray) -> np.ndarray:
        """(n_queries,) cosine similarity of each query to the nearest example of its one class
        in `classes`: what serving needs per message, without comparing it to every class."""
        queries = unit_rows(queries)
        out = np.full(len(queries), NO_EXAMPLE, dtype=np.float32)
        for row, cls in enumerate(np.asarray(classes, dtype=np.int64).tolist()):
            if cls in self._block_of:
                start, end = self._block_of[cls]
                out[row] = float((self.vectors[start:end] @ queries[row]).max())
        return out

    def similarity(self, queries: np.ndarray) -> np.ndarray:
        """(n_queries, n_classes) cosine similarity to the nearest example of each class."""
        queries = unit_rows(queries)
        out = np.full((len(queries), self.n_classes), NO_EXAMPLE, dtype=np.float32)
        if not len(self.vectors):
            return out
        for start in range(0, len(queries), _CHUNK):
            block = queries[start : start + _CHUNK] @ self.vectors.T
            out[start : start + _CHUNK, self._present] = np.maximum.reduceat(block, self._starts, axis=1)
        return out
