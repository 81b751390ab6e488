"""CLINC150 "Full": in-scope accuracy and out-of-scope recall of CrowdDesk and two baselines.

    python -m benchmarks.clinc150 [--data DIR] [--out FILE]

Every model learns `oos` as a 151st class from oos_train ("oos-train" in the paper) and also
hands off when its top probability is below one threshold. That threshold is chosen on the
validation split (val + oos_val) as the one maximising in-scope accuracy + out-of-scope recall,
then applied unchanged to the test split. Dataset: Larson et al. 2019, CC BY 3.0.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy_machine_info, write_results
from benchmarks.baselines import Trained, all_contenders, predictions, train_timed
from benchmarks.datasets import OUT_OF_SCOPE, LabelledTexts, default_data_dir, load_clinc150
from crowddesk.bot.evaluation.metrics import format_table

# Larson et al. 2019, Table 2, "Full" columns: (in-scope accuracy, out-of-scope recall).
PUBLISHED = {
    "BERT, oos-train": (0.969, 0.403),
    "BERT, oos-threshold": (0.962, 0.523),
    "Rasa, oos-train": (0.915, 0.453),
}


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    in_scope_accuracy: float
    oos_recall: float


@dataclass(frozen=True)
class ScoredSplit:
    """Top prediction and its probability for each example of one split."""

    predicted: np.ndarray
    confidence: np.ndarray
    labels: np.ndarray

    def at(self, threshold: float) -> OperatingPoint:
        predicted = np.where(self.confidence < threshold, OUT_OF_SCOPE, self.predicted)
        in_scope = self.labels != OUT_OF_SCOPE
        return OperatingPoint(
            threshold=threshold,
            in_scope_accuracy=float(np.mean(predicted[in_scope] == self.labels[in_scope])),
            oos_recall=float(np.mean(predicted[~in_scope] == OUT_OF_SCOPE)),
        )


def _scored(trained: Trained, split: LabelledTexts) -> ScoredSplit:
    probabilities = trained.contender.predict_proba(split.texts)
    return ScoredSplit(
        predictions(trained.contender, probabilities),
        probabilities.max(axis=1),
        np.asarray(split.labels, dtype=object),
    )


def choose_operating_point(validation: ScoredSplit) -> OperatingPoint:
    """Highest in-scope accuracy + OOS recall on validation; the lowest threshold on ties."""
    candidates = [0.0, *np.unique(validation.confidence)]
    points = [validation.at(float(t)) for t in candidates]
    return max(points, key=lambda p: (p.in_scope_accuracy + p.oos_recall, -p.threshold))


def _point_dict(point: OperatingPoint) -> dict[str, float]:
    return {
        "threshold": round(point.threshold, 4),
        "in_scope_accuracy": point.in_scope_accuracy,
        "oos_recall": point.oos_recall,
    }


def _evaluate(trained: Trained, validation: LabelledTexts, test: LabelledTexts) -> dict[str, Any]:
    chosen = choose_operating_point(_scored(trained, validation))
    scored_test = _scored(trained, test)
    return {
        "train_seconds": round(trained.train_seconds, 1),
        "validation": _point_dict(chosen),
        "test": _point_dict(scored_test.at(chosen.threshold)),
        "test_without_threshold": _point_dict(scored_test.at(0.0)),
    }


def _table(results: dict[str, dict[str, Any]]) -> str:
    ours = next(iter(results.values()))["test"]
    rows = []
    for name, r in results.items():
        test, plain = r["test"], r["test_without_threshold"]
        rows.append(
            [
                name,
                f"{test['in_scope_accuracy']:.2%}",
                f"{test['oos_recall']:.2%}",
                f"{test['threshold']:.3f}",
                f"{plain['in_scope_accuracy']:.2%} / {plain['oos_recall']:.2%}",
                f"{r['train_seconds']:.0f}",
                f"{ours['in_scope_accuracy'] / test['in_scope_accuracy']:.3f}",
                f"{ours['oos_recall'] / test['oos_recall']:.3f}" if test["oos_recall"] else "-",
            ]
        )
    for name, (in_scope, recall) in PUBLISHED.items():
        rows.append([f"{name} (published)", f"{in_scope:.1%}", f"{recall:.1%}", "", "", "", "", ""])
    headers = [
        "model",
        "in-scope acc",
        "OOS recall",
        "threshold",
        "no threshold (acc / recall)",
        "train s",
        "CrowdDesk acc ÷ acc",
        "CrowdDesk recall ÷ recall",
    ]
    return format_table(headers, rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir("clinc150"))
    parser.add_argument("--out", type=Path, default=None, help="result JSON (default benchmarks/results/clinc150.json)")
    args = parser.parse_args(argv)

    info = accuracy_machine_info()
    data = load_clinc150(args.data)
    results: dict[str, dict[str, Any]] = {}
    for contender in all_contenders():
        print(f"training {contender.name} on {len(data.train)} examples ...", flush=True)
        trained = train_timed(contender, data.train.texts, data.train.labels)
        results[contender.name] = _evaluate(trained, data.val, data.test)
    print(_table(results))
    path = write_results(
        "clinc150",
        {
            "benchmark": "clinc150",
            "setting": "data_full.json; oos-train (oos as class 151) + one threshold chosen on val",
            "operating_point_rule": "max(in-scope accuracy + OOS recall) on val + oos_val",
            "train_examples": len(data.train),
            "machine": info,
            "results": results,
            "published": {name: {"in_scope_accuracy": a, "oos_recall": r} for name, (a, r) in PUBLISHED.items()},
        },
        args.out,
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
