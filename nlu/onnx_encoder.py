"""all-MiniLM-L6-v2 served from its ONNX export with ONNX Runtime: no torch in a serving process.

`crowddesk train` writes the export into the model directory (`crowddesk.nlu.onnx_export`);
`load_served_encoder` picks it when it is there and falls back to the torch encoder otherwise.
Its vectors are the torch encoder's (same weights, tokenizer and pooling), under the same name,
so stored vectors, caches and model metadata stay valid across the two.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from crowddesk.errors import CrowdDeskError
from crowddesk.nlu.encoders import Encoder, MiniLMEncoder, as_text_list, load_encoder

logger = logging.getLogger(__name__)

# The export's interface, written by `crowddesk.nlu.onnx_export`.
INPUT_NAMES = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAME = "sentence_embedding"
# ONNX metadata keys: the file says which encoder it holds and where the tokenizer truncates.
ENCODER_NAME_KEY = "crowddesk.encoder"
MAX_SEQ_LENGTH_KEY = "crowddesk.max_seq_length"
TOKENIZER_KEY = "crowddesk.tokenizer"  # the fast tokenizer's JSON


class OnnxExportError(CrowdDeskError, ValueError):
    """An ONNX export of an encoder that ONNX Runtime cannot load, or of another encoder."""


class OnnxMiniLMEncoder:
    """all-MiniLM-L6-v2 from an ONNX export, tokenized by the bundled model's fast tokenizer.

    One compute thread: a server encodes one message, or a small batch, per pass and runs several
    requests at once, so a second thread per pass only takes CPU from the others.
    """

    name = MiniLMEncoder.name
    dimension = MiniLMEncoder.dimension
    batch_size = MiniLMEncoder.batch_size

    def __init__(self, export: Path) -> None:
        # Imported here: a server without onnxruntime still imports this module, to fall back.
        import onnxruntime  # type: ignore[import-untyped]
        from onnxruntime.capi.onnxruntime_pybind11_state import (  # type: ignore[import-untyped]
            Fail,
            InvalidArgument,
            InvalidGraph,
            InvalidProtobuf,
        )
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        try:
            self._session = onnxruntime.InferenceSession(str(export), options, providers=["CPUExecutionProvider"])
        except (Fail, InvalidArgument, InvalidGraph, InvalidProtobuf) as exc:
            raise OnnxExportError(
                f"{export}: unreadable ONNX export of the encoder ({exc}); run `crowddesk train --force`"
            ) from exc
        metadata = self._session.get_modelmeta().custom_metadata_map
        if metadata.get(ENCODER_NAME_KEY) != self.name or not {MAX_SEQ_LENGTH_KEY, TOKENIZER_KEY} <= set(metadata):
            raise OnnxExportError(f"{export}: not an ONNX export of {self.name}; run `crowddesk train --force`")
        self._tokenizer = Tokenizer.from_str(metadata[TOKENIZER_KEY])
        # As sentence-transformers does: truncate to the model's max_seq_length, pad to the batch's longest.
        self._tokenizer.enable_truncation(int(metadata[MAX_SEQ_LENGTH_KEY]))
        self._tokenizer.enable_padding(pad_id=self._tokenizer.token_to_id("[PAD]"), pad_token="[PAD]")

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        # No progress bar: serving encodes a message or a few at a time.
        batch = as_text_list(texts)
        vectors = np.zeros((len(batch), self.dimension), dtype=np.float32)
        # Texts of similar length batched together pad less (sentence-transformers sorts likewise).
        order = np.argsort([-len(text) for text in batch], kind="stable")
        for start in range(0, len(batch), self.batch_size):
            rows = order[start : start + self.batch_size]
            vectors[rows] = self._encode_batch([batch[row] for row in rows])
        return vectors

    def _encode_batch(self, texts: list[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch(texts)
        input_ids = np.array([e.ids for e in encodings], dtype=np.int64)
        attention_mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        # One segment per text: every token type is 0.
        feed = dict(zip(INPUT_NAMES, (input_ids, attention_mask, np.zeros_like(input_ids))))
        (embeddings,) = self._session.run([OUTPUT_NAME], feed)
        return np.asarray(embeddings, dtype=np.float32)


# Encoders that a training run exports to ONNX, by name.
ONNX_ENCODERS = {OnnxMiniLMEncoder.name: OnnxMiniLMEncoder}

_served: dict[Path, Encoder] = {}
_serving_lock = threading.Lock()


def load_served_encoder(name: str, export: Path | None) -> Encoder:
    """The encoder a server uses for a model of encoder `name` whose ONNX export would be `export`:
    the process-wide ONNX Runtime encoder over it when the file is there and ONNX Runtime imports,
    else `load_encoder(name)`, saying why at INFO. An export that is there but unreadable raises
    `OnnxExportError`: a damaged model directory is redeployed, not served half-working."""
    factory = ONNX_ENCODERS.get(name)
    if factory is None:
        return load_encoder(name)
    if export is None or not export.is_file():
        logger.info("serving %s with torch: no ONNX export at %s (`crowddesk train --force` writes one)", name, export)
        return load_encoder(name)
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        logger.info("serving %s with torch: onnxruntime is not installed", name)
        return load_encoder(name)
    key = export.resolve()
    with _serving_lock:
        encoder = _served.get(key)
        if encoder is None:
            encoder = factory(key)
            _served[key] = encoder
        return encoder
