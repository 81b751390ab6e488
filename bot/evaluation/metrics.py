"""Metrics shared by `crowddesk evaluate nlu` and `crowddesk evaluate kb`, and writing reports.

The automation-vs-precision curve answers "if the bot answers only when its confidence is at
least t, what share of ALL messages does it answer, and how many of those answers are right?".
Messages the bot never answers (out of scope, requests for a person) count in the share's
denominator but never as answered.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from crowddesk.nlu.calibration import precision_curve

DIGITS = 4
THRESHOLD_DIGITS = 6  # neighbouring confidences often agree to 4 digits
MOST_CONFUSED = 10
REPORT_JSON = "report.json"
REPORT_HTML = "report.html"


def rounded(value: float | None) -> float | None:
    return None if value is None else round(float(value), DIGITS)


def share(part: np.ndarray) -> float | None:
    """Mean of a boolean array; None when it is empty (the metric is undefined, not 0)."""
    return float(np.mean(part)) if len(part) else None


def answer_curve(confidences: np.ndarray, correct: np.ndarray, total: int) -> list[dict[str, float]]:
    """(threshold, answered_share, answer_precision) per distinct confidence, strictest first.

    `confidences`/`correct` cover the messages the bot could answer; `total` is all messages.
    """
    return [
        {
            "threshold": round(point.threshold, THRESHOLD_DIGITS),
            "answered_share": round(point.answered / total, DIGITS),
            "answer_precision": round(point.precision, DIGITS),
        }
        for point in precision_curve(confidences, correct)
    ]


def answered_point(answered: np.ndarray, correct: np.ndarray) -> dict[str, Any]:
    """Share of messages answered and the share of those answers that are right.

    Nothing answered means precision 1.0 (no answer given, none wrong), as in the calibration.
    """
    count = int(np.sum(answered))
    return {
        "answered": count,
        "total": len(answered),
        "answered_share": rounded(count / len(answered)) if len(answered) else 0.0,
        "answer_precision": rounded(np.mean(correct[answered])) if count else 1.0,
    }


def classification_metrics(true: Sequence[str], predicted: Sequence[str]) -> dict[str, Any]:
    """Argmax accuracy, macro F1, per-intent scores, confusion matrix and most-confused pairs.

    Labels are every intent seen as a truth or a prediction; an intent never predicted scores 0.
    """
    labels = sorted(set(true) | set(predicted))
    precision, recall, f1, support = precision_recall_fscore_support(true, predicted, labels=labels, zero_division=0)
    # By hand: sklearn's confusion_matrix warns when a test set holds a single intent.
    index = {label: position for position, label in enumerate(labels)}
    matrix = np.zeros((len(labels), len(labels)), dtype=np.int64)
    np.add.at(matrix, ([index[label] for label in true], [index[label] for label in predicted]), 1)
    errors = [
        (int(matrix[row, column]), labels[row], labels[column])
        for row, column in zip(*np.nonzero(matrix))
        if row != column
    ]
    errors.sort(key=lambda error: (-error[0], error[1], error[2]))
    return {
        "accuracy": rounded(np.mean(np.asarray(true) == np.asarray(predicted))),
        "macro_f1": rounded(np.mean(f1)),
        "per_intent": {
            label: {"precision": rounded(p), "recall": rounded(r), "f1": rounded(f), "support": int(s)}
            for label, p, r, f, s in zip(labels, precision, recall, f1, support)
        },
        "confusion_matrix": {"labels": labels, "matrix": matrix.tolist()},
        "most_confused": [
            {"intent": intent, "predicted": other, "count": count} for count, intent, other in errors[:MOST_CONFUSED]
        ],
    }


def write_report(out_dir: Path, report: dict[str, Any], html: str | None = None) -> list[Path]:
    """`out_dir/report.json` (and `report.html` when given); returns the files written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = [out_dir / REPORT_JSON]
    written[0].write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if html is not None:
        written.append(out_dir / REPORT_HTML)
        written[1].write_text(html, encoding="utf-8")
    return written


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1%}"


def format_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table: columns padded to their widest cell, a dashed rule under the headers."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)).rstrip() for line in lines)
