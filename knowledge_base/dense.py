"""The FAISS index behind the retriever: exact below a size threshold, approximate above.

Rows are L2-normalised, so inner product = cosine. Below `exact_below` rows the index is exact
("flat": a search compares the query with every row, about a millisecond at that size). From
there on `auto` picks an inverted-file index ("ivf"): rows are grouped into about
2 * sqrt(rows) k-means cells and a search scans the `ivf_probes` cells nearest the query, a few
thousand rows at a million entries; rows are stored as float16, half the memory of float32 at a
cosine error under 0.001. "hnsw" (a proximity graph over float16 rows) can be chosen instead but
is not picked by `auto`: an earlier run of benchmarks/kb_scale.py at a million near-duplicate-rich
rows took over 14 minutes to build it on 2 cores for recall@10 0.87, against about 3 minutes and
0.99 for "ivf" (benchmarks/README.md, section kb-scale).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

logger = logging.getLogger(__name__)

INDEX_KINDS = ("auto", "flat", "ivf", "hnsw")
IVF_LISTS_PER_SQRT_ROW = 2.0
IVF_TRAINING_ROWS_PER_LIST = 50
# k-means wants at least this many training rows per list; fewer lists than that is pointless.
IVF_MIN_ROWS_PER_LIST = 39
# Rows normalised and added per step while building an index.
ADD_CHUNK = 65_536
# From this many queries at once, a search is worth FAISS's threads.
PARALLEL_QUERIES = 16


@dataclass(frozen=True)
class IndexSettings:
    """Which FAISS index to build (`kind`), and how thoroughly an approximate one searches."""

    kind: str = "auto"
    exact_below: int = 10_000
    ivf_probes: int = 16
    hnsw_m: int = 32
    hnsw_ef_search: int = 128
    # Entries changed since the index was fully built at which it is rebuilt (see segments.py).
    compact_after: int = 1_000

    def __post_init__(self) -> None:
        if self.kind not in INDEX_KINDS:
            raise ValueError(f"index kind {self.kind!r} is not one of: {', '.join(INDEX_KINDS)}")
        minimums = {"exact_below": 1, "ivf_probes": 1, "hnsw_m": 2, "hnsw_ef_search": 1, "compact_after": 1}
        for name, minimum in minimums.items():
            if getattr(self, name) < minimum:
                raise ValueError(f"{name} must be >= {minimum}, got {getattr(self, name)}")

    def kind_for(self, rows: int) -> str:
        """The concrete index kind for an index of `rows` vectors."""
        if rows == 0:  # nothing to train an approximate index on
            return "flat"
        if self.kind != "auto":
            return self.kind
        return "flat" if rows < self.exact_below else "ivf"


class DenseIndex:
    """Unit-length vectors in a FAISS inner-product index; safe to search from several threads."""

    def __init__(self, index: faiss.Index, kind: str, settings: IndexSettings) -> None:
        self._index = index
        self.kind = kind
        self._settings = settings

    @classmethod
    def build(cls, vectors: np.ndarray, settings: IndexSettings) -> DenseIndex:
        """An index over the rows of `vectors`, normalised a chunk at a time (never a second
        full copy: at a million rows one costs gigabytes)."""
        kind = settings.kind_for(len(vectors))
        index = _empty_index(kind, vectors, settings)
        for start in range(0, len(vectors), ADD_CHUNK):
            index.add(normalised_rows(vectors[start : start + ADD_CHUNK], "question_vectors"))
        if kind == "ivf":
            faiss.extract_index_ivf(index).make_direct_map()  # reconstruct by row
        return cls(index, kind, settings)

    @classmethod
    def build_or_read(cls, vectors: np.ndarray, settings: IndexSettings, directory: Path | None) -> DenseIndex:
        """`build`, but reusing the index an earlier call saved in `directory` for the same
        vectors and settings; a fresh build is saved there, replacing older ones.

        At a million rows this turns minutes of k-means and adding into seconds of reading; an
        exact index is quicker to build than to read, so it is never saved.
        """
        if directory is None or settings.kind_for(len(vectors)) == "flat":
            return cls.build(vectors, settings)
        path = directory / f"dense-{_fingerprint(vectors, settings)}.faiss"
        if path.exists():
            try:
                return cls.read(path, settings)
            except (RuntimeError, ValueError) as error:  # FAISS raises RuntimeError on bad files
                logger.warning("rebuilding the dense index: cannot read %s (%s)", path, error)
        index = cls.build(vectors, settings)
        directory.mkdir(parents=True, exist_ok=True)
        descriptor, partial = tempfile.mkstemp(dir=directory, suffix=".partial")
        os.close(descriptor)
        index.write(Path(partial))
        os.replace(partial, path)  # readers never see a half-written file
        for old in directory.glob("dense-*.faiss"):
            if old != path:
                old.unlink(missing_ok=True)
        return index

    @classmethod
    def read(cls, path: Path, settings: IndexSettings) -> DenseIndex:
        """An index saved by `write`; its kind is the one it was built as."""
        index = faiss.read_index(str(path))
        kinds = {faiss.IndexFlatIP: "flat", faiss.IndexIVFScalarQuantizer: "ivf", faiss.IndexHNSWSQ: "hnsw"}
        kind = kinds.get(type(index))
        if kind is None:
            raise ValueError(f"{path} holds a {type(index).__name__}, not an index CrowdDesk builds")
        return cls(index, kind, settings)

    def write(self, path: Path) -> None:
        faiss.write_index(self._index, str(path))

    @property
    def rows(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    def search(self, queries: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
        """(similarities, rows) of the `count` best rows per normalised query; rows -1 pad."""
        # Per-call parameters rather than setting e.g. index.nprobe: no shared state changes.
        params: faiss.SearchParameters | None = None
        if self.kind == "ivf":
            ivf = faiss.SearchParametersIVF()
            ivf.nprobe = self._settings.ivf_probes
            params = ivf
        elif self.kind == "hnsw":
            # faiss's stub lacks SearchParametersHNSW, which its module has.
            params = faiss.SearchParametersHNSW(efSearch=self._settings.hnsw_ef_search)  # type: ignore[attr-defined]
        if len(queries) >= PARALLEL_QUERIES:
            return self._index.search(queries, count, params=params)
        with _one_openmp_thread():
            return self._index.search(queries, count, params=params)

    def vectors(self, rows: np.ndarray) -> np.ndarray:
        """The stored rows: exact for "flat", float16-rounded (as searches score them) otherwise."""
        return self._index.reconstruct_batch(np.asarray(rows, dtype=np.int64))


def _fingerprint(vectors: np.ndarray, settings: IndexSettings) -> str:
    """A digest of everything a built index depends on: the rows in order and the build settings."""
    kind = settings.kind_for(len(vectors))
    digest = hashlib.blake2b(digest_size=16)
    digest.update(
        repr((kind, settings.hnsw_m, IVF_LISTS_PER_SQRT_ROW, IVF_TRAINING_ROWS_PER_LIST, vectors.shape)).encode()
    )
    for start in range(0, len(vectors), ADD_CHUNK):
        digest.update(np.ascontiguousarray(vectors[start : start + ADD_CHUNK], dtype=np.float32).data)
    return digest.hexdigest()


def _empty_index(kind: str, vectors: np.ndarray, settings: IndexSettings) -> faiss.Index:
    """An index of `kind`, trained on a sample of `vectors` when it needs training."""
    dimension = vectors.shape[1]
    if kind == "flat":
        return faiss.IndexFlatIP(dimension)
    fp16 = faiss.ScalarQuantizer.QT_fp16
    if kind == "hnsw":
        # faiss's stub types the second argument as a ScalarQuantizer; the constructor takes its type.
        return faiss.IndexHNSWSQ(dimension, fp16, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)  # type: ignore[arg-type]
    lists = round(IVF_LISTS_PER_SQRT_ROW * np.sqrt(len(vectors)))
    lists = max(1, min(lists, len(vectors) // IVF_MIN_ROWS_PER_LIST))
    index = faiss.IndexIVFScalarQuantizer(
        faiss.IndexFlatIP(dimension), dimension, lists, fp16, faiss.METRIC_INNER_PRODUCT
    )
    step = max(1, len(vectors) // (IVF_TRAINING_ROWS_PER_LIST * lists))
    index.train(normalised_rows(vectors[::step], "question_vectors"))
    return index


@contextmanager
def _one_openmp_thread() -> Iterator[None]:
    """FAISS's OpenMP threads off for this thread (the setting is per thread), for a few queries.

    Spreading one query over both cores of a busy server costs far more than it saves: the
    threads wait for each other at every barrier while other requests hold the CPU (13k rows:
    ~2 ms on one thread, 12-20 ms on two while other work runs).
    """
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def normalised_rows(vectors: np.ndarray, what: str) -> np.ndarray:
    """A C-contiguous float32 copy with unit-length rows (FAISS inner product = cosine then)."""
    if vectors.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array, got shape {vectors.shape}")
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    if np.any(norms == 0) or not np.all(np.isfinite(norms)):
        raise ValueError(f"{what} contain a zero or non-finite row; cannot compute cosine similarity")
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)
