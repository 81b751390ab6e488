"""Export the loaded MiniLM encoder (transformer, mean pooling, normalisation) to one ONNX file.

Runs where training runs (torch is imported at module load); serving reads the file with
`crowddesk.nlu.onnx_encoder` and never needs torch.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from crowddesk.nlu.encoders import MiniLMEncoder
from crowddesk.nlu.onnx_encoder import ENCODER_NAME_KEY, INPUT_NAMES, MAX_SEQ_LENGTH_KEY, OUTPUT_NAME, TOKENIZER_KEY

# The exporter's loggers: it reports there the torchvision operators it skips.
_EXPORTER_LOGGER = "torch.onnx"


class _SentenceEmbedding(torch.nn.Module):
    """The sentence-transformers pipeline with tensor inputs and one tensor output, as the exporter needs."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, token_type_ids: torch.Tensor) -> Any:
        features = dict(zip(INPUT_NAMES, (input_ids, attention_mask, token_type_ids)))
        return self.model(features)[OUTPUT_NAME]


def export_onnx(encoder: MiniLMEncoder, target: Path) -> None:
    """Write `encoder`'s model to `target` as one self-contained ONNX file with dynamic batch and
    sequence axes; its name, max_seq_length and tokenizer (tokenizer.json) in the file's metadata,
    so a server needs neither torch nor the packaged model."""
    model = encoder.model
    example = model.tokenizer(["an example message to trace", "hi"], padding=True, return_tensors="pt")
    batch = torch.export.Dim("batch")
    # Position embeddings bound the sequence; the tokenizer truncates well below that.
    sequence = torch.export.Dim("sequence", max=model[0].auto_model.config.max_position_embeddings)
    with _quiet_exporter():
        program = torch.onnx.export(
            _SentenceEmbedding(model).eval(),
            tuple(example[key] for key in INPUT_NAMES),
            dynamo=True,
            dynamic_shapes={key: {0: batch, 1: sequence} for key in INPUT_NAMES},
            input_names=list(INPUT_NAMES),
            output_names=[OUTPUT_NAME],
            verbose=False,
        )
    if program is None:  # only the legacy exporter returns nothing
        raise RuntimeError("torch.onnx.export returned no program")
    program.model.metadata_props.update(
        {
            ENCODER_NAME_KEY: encoder.name,
            MAX_SEQ_LENGTH_KEY: str(model.max_seq_length),
            TOKENIZER_KEY: model.tokenizer.backend_tokenizer.to_str(),
        }
    )
    # Weights inside the file (90 MB, far below protobuf's 2 GB limit): one file to copy and to check.
    program.save(target, external_data=False)


@contextmanager
def _quiet_exporter() -> Iterator[None]:
    """Silence the exporter's notes (axis names it merges, torchvision operators it skips): none
    concerns this model, and `crowddesk train` prints for the project's author."""
    exporter_logger = logging.getLogger(_EXPORTER_LOGGER)
    level = exporter_logger.level
    exporter_logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            warnings.simplefilter("ignore", FutureWarning)
            yield
    finally:
        exporter_logger.setLevel(level)
