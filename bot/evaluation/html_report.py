"""Self-contained HTML evaluation reports: inline SVG and CSS, no scripts, nothing fetched.

Every chart element carries a `<title>`, so hovering shows its exact numbers in any browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Any

from crowddesk.bot.evaluation.metrics import percent
from crowddesk.bot.evaluation.open_set import summary_rows

CURVE_WIDTH, CURVE_HEIGHT, CURVE_MARGIN = 640, 360, 72
HEATMAP_CLASSES = 20  # only the most-confused classes: a 150 x 150 grid is unreadable
HEATMAP_CELL = 22
LABEL_CHARS, LABEL_WIDTH = 32, 260  # intent names are cut to fit; the full name is in the title
BAR_WIDTH, BAR_ROW = 320, 16
SHOWN_ERRORS = 100

_STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 980px; color: #1d2430; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2.2rem; }
table { border-collapse: collapse; }
td, th { padding: .25rem .8rem; border-bottom: 1px solid #e3e6ea; text-align: left; }
svg text { font: 11px system-ui, sans-serif; fill: #1d2430; }
dl { font-size: 12.5px; color: #4a5463; } dt { font-weight: 600; margin-top: .4rem; }
"""


def render_nlu_report(report: dict[str, Any]) -> str:
    point, oos = report["operating_point"], report["out_of_scope"]
    mode = f"{report['folds']}-fold cross-validation" if report["folds"] else "train / test"
    summary = [
        ("Mode", mode),
        ("Messages (train / test)", f"{report['data']['train_messages']} / {report['data']['test_messages']}"),
        ("Intent accuracy", percent(report["intent"]["accuracy"])),
        ("Macro F1", f"{report['intent']['macro_f1']:.3f}"),
        ("In-scope accuracy", percent(report["in_scope_accuracy"])),
        (
            f"Out-of-scope recall / precision ({oos['support']} messages)",
            f"{percent(oos['recall'])} / {percent(oos['precision'])}",
        ),
        ("Answer threshold (chosen on training data)", f"{point['threshold']:.3f}"),
        ("Answered automatically", percent(point["answered_share"])),
        (f"Answer precision (target {percent(point['target_precision'])})", percent(point["answer_precision"])),
        ("Training time", f"{report['train_seconds']:.1f} s"),
    ]
    open_set = report.get("open_set")
    if open_set is not None:
        summary += [(name[0].upper() + name[1:], value) for name, value in summary_rows(open_set, "intents")]
    sections = [
        (
            "Automation vs. precision",
            curve_svg(
                report["curve"],
                point,
                point["target_precision"],
                open_set["curve_without_unseen"] if open_set else None,
            ),
        ),
        ("Most-confused intents", confusion_svg(report["confusion_matrix"])),
        ("F1 per intent (worst first)", f1_bars_svg(report["intent"]["per_intent"])),
        (f"Misclassified messages ({len(report['errors'])})", _errors_table(report["errors"])),
    ]
    return page("NLU evaluation", summary, sections, report["definitions"])


def render_kb_report(report: dict[str, Any]) -> str:
    point = report["operating_point"]
    summary = [
        ("Queries", str(report["queries"])),
        *((f"Recall@{k}", percent(report[f"recall@{k}"])) for k in report["recall_depths"]),
        (f"MRR (top {report['mrr_depth']})", f"{report['mrr']:.3f}"),
        ("Confidence", report["confidence"]),
    ]
    if point is not None:
        summary += [
            ("Answer threshold (from the trained model)", f"{point['threshold']:.3f}"),
            ("Answered automatically", percent(point["answered_share"])),
            ("Answer precision", percent(point["answer_precision"])),
        ]
    open_set = report.get("open_set")
    if open_set is not None:
        summary += [(name[0].upper() + name[1:], value) for name, value in summary_rows(open_set, "entries")]
    misses = [
        (miss["source"], miss["query"], miss["entry_id"], str(miss["rank"] or "-"), ", ".join(miss["top"][:3]))
        for miss in report["misses"]
    ]
    sections = [
        (
            "Automation vs. precision",
            curve_svg(
                report["curve"],
                point,
                None,
                open_set["curve_without_unseen"] if open_set else None,
                known="queries of the entries that exist",
            ),
        ),
        (
            "Queries whose entry was not ranked first",
            _table(("Where", "Query", "Right entry", "Rank", "Ranked first"), misses) if misses else "<p>None.</p>",
        ),
    ]
    return page("Knowledge-base retrieval evaluation", summary, sections, report["definitions"])


def page(
    title: str, summary: Sequence[tuple[str, str]], sections: Sequence[tuple[str, str]], definitions: dict[str, str]
) -> str:
    body = [f"<h1>{escape(title)}</h1>", _table(("Metric", "Value"), summary)]
    body += [f"<h2>{escape(heading)}</h2>\n{content}" for heading, content in sections]
    body.append(
        "<h2>Definitions</h2><dl>"
        + "".join(f"<dt>{escape(name)}</dt><dd>{escape(text)}</dd>" for name, text in definitions.items())
        + "</dl>"
    )
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_STYLE}</style></head>\n<body>\n" + "\n".join(body) + "\n</body></html>\n"
    )


def curve_svg(
    curve: Sequence[dict[str, float]],
    point: dict[str, Any] | None,
    target_precision: float | None,
    without_unseen: Sequence[dict[str, float]] | None = None,
    known: str = "messages of trained intents",
) -> str:
    """Answered share (x) against answer precision (y), the chosen operating point circled; in
    open-set mode also dashed, the curve on `known` only (the test items whose topic exists)."""
    if not curve:
        return "<p>No message could be answered at any threshold.</p>"
    lowest = min(
        [p["answer_precision"] for p in [*curve, *(without_unseen or [])]]
        + ([target_precision] if target_precision else [])
        + ([point["answer_precision"]] if point else [])
    )
    y_low = min(0.9, int(lowest * 10) / 10)
    left, top = CURVE_MARGIN, 16
    plot_w, plot_h = CURVE_WIDTH - left - 24, CURVE_HEIGHT - top - CURVE_MARGIN

    def x(value: float) -> float:
        return left + value * plot_w

    def y(value: float) -> float:
        return top + (1 - (value - y_low) / (1 - y_low)) * plot_h

    parts = [_svg_start(CURVE_WIDTH, CURVE_HEIGHT, "automation versus precision curve")]
    for step in range(5):
        share, precision = step / 4, y_low + step * (1 - y_low) / 4
        parts.append(
            f'<line x1="{x(share):.1f}" y1="{top}" x2="{x(share):.1f}" y2="{top + plot_h}" stroke="#eef0f3"/>'
            f'<text x="{x(share):.1f}" y="{top + plot_h + 16}" text-anchor="middle">{share:.0%}</text>'
        )
        parts.append(
            f'<line x1="{left}" y1="{y(precision):.1f}" x2="{left + plot_w}" y2="{y(precision):.1f}" '
            'stroke="#eef0f3"/>'
            f'<text x="{left - 6}" y="{y(precision) + 4:.1f}" text-anchor="end">{precision:.0%}</text>'
        )
    parts.append(
        f'<text x="{left + plot_w / 2}" y="{CURVE_HEIGHT - 10}" text-anchor="middle">'
        "share of messages answered automatically</text>"
        f'<text transform="translate(16 {top + plot_h / 2}) rotate(-90)" text-anchor="middle">'
        "precision of the answers</text>"
    )
    if target_precision is not None:
        parts.append(
            f'<line x1="{left}" y1="{y(target_precision):.1f}" x2="{left + plot_w}" '
            f'y2="{y(target_precision):.1f}" stroke="#c0392b" stroke-dasharray="5 4">'
            f"<title>target precision {target_precision:.0%}</title></line>"
        )

    def polyline(points: Sequence[dict[str, float]]) -> str:
        return " ".join(f"{x(p['answered_share']):.1f},{y(p['answer_precision']):.1f}" for p in points)

    if without_unseen:
        parts.append(
            f'<polyline id="curve-without-unseen" points="{polyline(without_unseen)}" fill="none" '
            'stroke="#7c8da6" stroke-width="2" stroke-dasharray="6 4"><title>without the unseen '
            f"topics: {escape(known)} only</title></polyline>"
            f'<text x="{left + 8}" y="{top + plot_h - 8}" fill="#7c8da6">dashed: without unseen '
            "topics; solid: all test messages</text>"
        )
    parts.append(
        f'<polyline id="curve" points="{polyline(curve)}" fill="none" stroke="#2563eb" stroke-width="2">'
        "<title>answered share and precision at every threshold</title></polyline>"
    )
    if point is not None:
        label = (
            f"threshold {point['threshold']:.3f}: answers {percent(point['answered_share'])} "
            f"at {percent(point['answer_precision'])} precision"
        )
        cx, cy = x(point["answered_share"]), y(point["answer_precision"])
        # The label goes on whichever side of the point has room.
        anchor, dx = ("end", -10) if point["answered_share"] > 0.5 else ("start", 10)
        parts.append(
            f'<circle id="operating-point" cx="{cx:.1f}" cy="{cy:.1f}" r="6" fill="#c0392b" '
            f'stroke="white" stroke-width="2"><title>{escape(label)}</title></circle>'
            f'<text x="{cx + dx:.1f}" y="{cy + 20:.1f}" text-anchor="{anchor}">{escape(label)}</text>'
        )
    parts.append("</svg>")
    return "\n".join(parts)


def confusion_svg(confusion: dict[str, Any]) -> str:
    """Heatmap of the classes with the most errors (as truth or prediction); rows are truths."""
    labels, matrix = confusion["labels"], confusion["matrix"]
    errors = [sum(matrix[i]) - matrix[i][i] + sum(row[i] for row in matrix) - matrix[i][i] for i in range(len(labels))]
    chosen = sorted((i for i in range(len(labels)) if errors[i]), key=lambda i: -errors[i])[:HEATMAP_CLASSES]
    if not chosen:
        return "<p>No confusions: every message got its labelled intent.</p>"
    chosen.sort(key=lambda i: labels[i])
    off_diagonal = max((matrix[r][c] for r in chosen for c in chosen if r != c), default=0) or 1
    label_w, size = LABEL_WIDTH, HEATMAP_CELL
    width, height = label_w + size * len(chosen) + 8, label_w + size * len(chosen) + 8
    parts = [_svg_start(width, height, "confusion matrix")]
    for position, index in enumerate(chosen):
        name = escape(_short(labels[index]))
        offset = label_w + position * size + size / 2
        parts.append(
            f'<text x="{label_w - 6}" y="{offset + 4}" text-anchor="end">{name}'
            f"<title>{escape(labels[index])}</title></text>"
        )
        parts.append(
            f'<text transform="translate({offset + 4} {label_w - 6}) rotate(-90)">{name}'
            f"<title>{escape(labels[index])}</title></text>"
        )
    for row, truth in enumerate(chosen):
        for column, predicted in enumerate(chosen):
            count = matrix[truth][predicted]
            if truth == predicted:
                fill = "#e8f3ec" if count else "#ffffff"
            else:
                fill = f"rgba(192, 57, 43, {count / off_diagonal:.3f})" if count else "#ffffff"
            parts.append(
                f'<rect x="{label_w + column * size}" y="{label_w + row * size}" width="{size - 1}" '
                f'height="{size - 1}" fill="{fill}" stroke="#eef0f3"><title>{escape(labels[truth])} '
                f"\u2192 predicted {escape(labels[predicted])}: {count}</title></rect>"
            )
            if count:
                parts.append(
                    f'<text x="{label_w + column * size + size / 2}" y="{label_w + row * size + 15}" '
                    f'text-anchor="middle">{count}</text>'
                )
    parts.append("</svg>")
    note = (
        f"<p>Rows: labelled intent; columns: predicted intent. The {len(chosen)} intents with the most "
        f"errors of {len(labels)}; hover a cell for its count.</p>"
    )
    return note + "\n" + "\n".join(parts)


def f1_bars_svg(per_intent: dict[str, dict[str, Any]]) -> str:
    rows = sorted(per_intent.items(), key=lambda item: (item[1]["f1"], item[0]))
    label_w = LABEL_WIDTH
    width, height = label_w + BAR_WIDTH + 60, BAR_ROW * len(rows) + 4
    parts = [_svg_start(width, height, "F1 per intent")]
    for position, (name, scores) in enumerate(rows):
        top = position * BAR_ROW
        title = (
            f"{name}: F1 {scores['f1']:.3f}, precision {scores['precision']:.3f}, "
            f"recall {scores['recall']:.3f}, support {scores['support']}"
        )
        parts.append(
            f"<g><title>{escape(title)}</title>"
            f'<text x="{label_w - 6}" y="{top + 12}" text-anchor="end">{escape(_short(name))}</text>'
            f'<rect x="{label_w}" y="{top + 2}" width="{scores["f1"] * BAR_WIDTH:.1f}" height="{BAR_ROW - 4}" '
            f'fill="#2563eb"/><text x="{label_w + scores["f1"] * BAR_WIDTH + 4:.1f}" y="{top + 12}">'
            f"{scores['f1']:.2f}</text></g>"
        )
    parts.append("</svg>")
    return "\n".join(parts)


def _svg_start(width: float, height: float, label: str) -> str:
    # Font set on the element too, so a chart copied out of the page renders the same.
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{label}" font-family="system-ui, sans-serif" font-size="11">'
    )


def _errors_table(errors: Sequence[dict[str, Any]]) -> str:
    if not errors:
        return "<p>None.</p>"
    rows = [
        (
            error["source"],
            error["text"],
            error["intent"],
            error["predicted"],
            f"{error['confidence']:.3f}",
            "answered" if error["answered"] else "handed off",
        )
        for error in errors[:SHOWN_ERRORS]
    ]
    more = f"<p>{len(errors) - SHOWN_ERRORS} more in report.json.</p>" if len(errors) > SHOWN_ERRORS else ""
    return _table(("Where", "Message", "Label", "Predicted", "Confidence", "Outcome"), rows) + more


def _short(name: str) -> str:
    return name if len(name) <= LABEL_CHARS else name[: LABEL_CHARS - 1] + "\u2026"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
