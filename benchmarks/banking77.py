"""BANKING77: full train -> test accuracy and macro-F1 of CrowdDesk and two baselines.

    python -m benchmarks.banking77 [--data DIR] [--validation] [--out FILE]

`--validation` trains on 90 % of train.csv and scores the held-out 10 % (fixed seed): use it to
tune, and keep test.csv for the final number. Dataset: Casanueva et al. 2020, CC BY 4.0.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

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

VALIDATION_FRACTION = 0.1
VALIDATION_SEED = 0
# Casanueva et al. 2020, Table 3 (test accuracy, full training data).
PUBLISHED_ACCURACY = {"BERT-large (fine-tuned)": 0.9366, "USE+ConveRT": 0.9336}


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
        "--out",
        type=Path,
        default=None,
        help="result JSON (default benchmarks/results/banking77.json; banking77_validation.json with --validation)",
    )
    args = parser.parse_args(argv)

    info = accuracy_machine_info()
    train, evaluation = _splits(args.data, args.validation)
    results: dict[str, dict[str, Any]] = {}
    for contender in all_contenders():
        print(f"training {contender.name} on {len(train)} examples ...", flush=True)
        results[contender.name] = _score(train_timed(contender, train.texts, train.labels), evaluation)
    print(_table(results))
    name = "banking77_validation" if args.validation else "banking77"
    path = write_results(
        name,
        {
            "benchmark": name,
            "split": "validation (10% of train, seed 0)" if args.validation else "test",
            "train_examples": len(train),
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
