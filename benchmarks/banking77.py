"""BANKING77: full train -> test accuracy and macro-F1 of CrowdDesk and two baselines.

    python -m benchmarks.banking77 [--data DIR] [--validation] [--onnx [FILE]] [--out FILE]

`--validation` trains on 90 % of train.csv and scores the held-out 10 % (fixed seed): use it to
tune, and keep test.csv for the final number. `--onnx` trains on torch as `crowddesk train` does
and encodes the evaluation messages with the encoder's ONNX export as a server does (FILE: an
export to use, a quantised one say; default: export the packaged model now). Dataset: Casanueva
et al. 2020, CC BY 4.0.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy_machine_info, write_results
from benchmarks.baselines import (
    Trained,
    accuracy,
    all_contenders,
    macro_f1,
    predictions,
    train_timed,
)
from benchmarks.datasets import (
    LabelledTexts,
    default_data_dir,
    load_banking77,
    stratified_holdout,
)
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.nlu.encoders import Encoder, MiniLMEncoder
from crowddesk.nlu.onnx_encoder import OnnxMiniLMEncoder

VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0
# Casanueva et al. 2020, Table 3 (test accuracy, full training data).
PUBLISHED_ACCURACY = {"BERT-large (fine-tuned)": 0.9366, "USE+ConveRT": 0.9336}
# `--onnx` without a file: export the packaged model for this run.
_EXPORT_NOW = Path("-")


def _splits(data_dir: Path, validation: bool) -> tuple[LabelledTexts, LabelledTexts]:
    data = load_banking77(data_dir)
    if validation:
        return stratified_holdout(data.train, VALIDATION_FRACTION, VALIDATION_SEED)
    return data.train, data.test


def _score(trained: Trained, evaluation: LabelledTexts) -> dict[str, Any]:
    predicted = predictions(trained.contender, trained.contender.predict_proba(evaluation.texts))
    return {
        "accuracy": accuracy(predicted, evaluation.labels),
        "macro_f1": macro_f1(predicted, evaluation.labels),
        "train_seconds": round(trained.train_seconds, 1),
    }


class _ServedAtPrediction:
    """The torch encoder while a contender trains, as in `crowddesk train`; the ONNX export while it
    predicts (inside `serving()`), as in a server."""

    name = MiniLMEncoder.name
    dimension = MiniLMEncoder.dimension

    def __init__(self, trained: Encoder, served: Encoder) -> None:
        self._trained, self._served = trained, served
        self._current = trained

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        return self._current.encode(texts, show_progress=show_progress)

    @contextmanager
    def serving(self) -> Iterator[None]:
        self._current = self._served
        try:
            yield
        finally:
            self._current = self._trained


def _served_at_prediction(export: Path | None, workdir: Path) -> _ServedAtPrediction:
    """The two encoders `--onnx` compares; `export` None: export the packaged model into `workdir`."""
    trained = MiniLMEncoder()
    if export is None:
        from crowddesk.nlu.onnx_export import export_onnx

        export = workdir / "encoder.onnx"
        print(f"exporting {MiniLMEncoder.name} to ONNX ...", flush=True)
        export_onnx(trained, export)
    return _ServedAtPrediction(trained, OnnxMiniLMEncoder(export))


def _prediction_encoder(onnx: Path | None) -> str:
    if onnx is None:
        return "torch"
    return "ONNX Runtime, exported for this run" if onnx == _EXPORT_NOW else f"ONNX Runtime, {onnx}"


def _table(results: dict[str, dict[str, Any]]) -> str:
    ours = next(iter(results.values()))
    rows = []
    for name, r in results.items():
        rows.append(
            [
                name,
                f"{r['accuracy']:.2%}",
                f"{r['macro_f1']:.2%}",
                f"{r['train_seconds']:.0f}",
                f"{ours['accuracy'] / r['accuracy']:.3f}",
                f"{(1 - r['accuracy']) / (1 - ours['accuracy']):.2f}",
            ]
        )
    for name, published in PUBLISHED_ACCURACY.items():
        rows.append([f"{name} (published)", f"{published:.2%}", "", "", "", ""])
    headers = ["model", "accuracy", "macro-F1", "train s", "CrowdDesk acc ÷ acc", "errors ÷ CrowdDesk errors"]
    return format_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir("banking77"))
    parser.add_argument("--validation", action="store_true", help="score a held-out 10%% of train instead of test.csv")
    parser.add_argument(
        "--onnx",
        nargs="?",
        type=Path,
        const=_EXPORT_NOW,
        default=None,
        metavar="FILE",
        help="encode the evaluation messages with the encoder's ONNX export (FILE, or one exported now)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="result JSON (default benchmarks/results/banking77.json; banking77_validation.json with "
        "--validation, banking77_onnx.json with --onnx)",
    )
    args = parser.parse_args(argv)

    info = accuracy_machine_info()
    train, evaluation = _splits(args.data, args.validation)
    with tempfile.TemporaryDirectory() as workdir:
        encoder = (
            _served_at_prediction(None if args.onnx == _EXPORT_NOW else args.onnx, Path(workdir))
            if args.onnx is not None
            else None
        )
        results: dict[str, dict[str, Any]] = {}
        for contender in all_contenders(encoder):
            print(f"training {contender.name} on {len(train)} examples ...", flush=True)
            trained = train_timed(contender, train.texts, train.labels)
            predicting: AbstractContextManager[None] = encoder.serving() if encoder is not None else nullcontext()
            with predicting:
                results[contender.name] = _score(trained, evaluation)
    print(_table(results))
    name = "banking77_validation" if args.validation else "banking77"
    if args.onnx is not None:
        name += "_onnx"
    path = write_results(
        name,
        {
            "benchmark": name,
            "split": "validation (10% of train, seed 0)" if args.validation else "test",
            "train_examples": len(train),
            "prediction_encoder": _prediction_encoder(args.onnx),
            "evaluation_examples": len(evaluation),
            "machine": info,
            "results": results,
            "published_accuracy": PUBLISHED_ACCURACY,
        },
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
