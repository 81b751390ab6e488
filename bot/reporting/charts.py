"""The dashboard's charts, drawn on the server as SVG text (pygal) from the scorecard's figures: the
page shows them as images, so no charting script runs in it and nothing is loaded from elsewhere."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, timedelta
from itertools import pairwise
from typing import Any

import pygal
from pygal.graph.graph import Graph
from pygal.style import Style

from crowddesk.bot.reporting.breakdown import Breakdown
from crowddesk.bot.reporting.durations import WAIT_EDGES_MINUTES
from crowddesk.bot.reporting.period import Period
from crowddesk.bot.reporting.scorecard import RATINGS, Csat, Figures, Scorecard

WIDTH, HEIGHT = 720, 340
NO_CONVERSATIONS = "No conversations in this period"
NO_TICKETS = "No tickets in this period"
NO_RATINGS = "No ratings in this period"
NO_GAPS = "No unanswered questions in this period"
GAP_LABEL_CHARS = 60
HOURLY_UP_TO = 14 * 24  # the queue's hours drawn one by one; longer periods by day

GOOD, FAIR, POOR, NEUTRAL = "#1e7a3c", "#d9822b", "#b3261e", "#8a93a3"
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    foreground="#1d2330",
    foreground_strong="#1d2330",
    foreground_subtle="#5d6675",
    colors=(GOOD, POOR, NEUTRAL),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    title_font_size=15,
    label_font_size=12,
    major_label_font_size=12,
    legend_font_size=12,
    value_font_size=11,
    no_data_font_size=18,
)
CSAT_STYLE = Style(**{**STYLE.to_dict(), "colors": (NEUTRAL, "#2f6fdf")})  # people, the bot


def scorecard_charts(card: Scorecard) -> dict[str, str]:
    """Every chart of the scorecard, by name; ValueError unless `card` has its breakdown by day."""
    by_day = card.breakdown
    if by_day is None or by_day.by != "day":
        raise ValueError("the conversations-per-day chart needs the scorecard broken down by day")
    return {
        "automation": automation_by_day(card.period, card.current, by_day),
        "first_reply": first_reply_wait(card.current),
        "sla": sla_attainment(card.current),
        "queue": queue_over_time(card.current),
        "csat": csat_distribution(card.current),
    }


def automation_by_day(period: Period, figures: Figures, by_day: Breakdown) -> str:
    """Each UTC day's new conversations: resolved by the bot alone, handed off, or neither."""
    outcomes = figures.outcomes
    chart = _chart(pygal.StackedBar, "Conversations per day", NO_CONVERSATIONS, show_legend=True, legend_at_bottom=True)
    if outcomes.conversations:
        chart.title = (
            f"Conversations per day: {_percent(outcomes.automated_resolution_rate)} resolved by the bot alone, "
            f"{_percent(outcomes.handoff_rate)} handed off"
        )
        days = _days(period)
        rows = {day: dict(zip(by_day.columns, values)) for day, values in by_day.rows}
        split = [_split(rows.get(day, {})) for day in days]
        chart.x_labels = [f"{date.fromisoformat(day):%d %b}" for day in days]
        chart.x_label_rotation = 40 if len(days) > 10 else 0
        _count_axis(chart, [sum(parts) for parts in split])
        for name, part in zip(("Resolved by the bot alone", "Handed off", "Neither (yet)"), zip(*split)):
            chart.add(name, list(part))
    return _svg(chart)


def first_reply_wait(figures: Figures) -> str:
    """Tickets by how long the first human reply took, split at the 30- and 60-minute targets,
    and those still waiting at the period's end."""
    replies, histogram = figures.first_reply, figures.first_reply_histogram
    chart = _chart(pygal.Bar, "First human reply", _nothing(figures, NO_TICKETS))
    if replies.count or histogram.still_waiting:
        chart.title = (
            f"First human reply: {_percent(replies.within_30_min)} within 30 min, "
            f"{_percent(replies.within_60_min)} within 60 min ({replies.count} replied)"
        )
        chart.x_labels = [*_wait_labels(), "still waiting"]
        colours = [_wait_colour(edge) for edge in WAIT_EDGES_MINUTES] + [POOR, NEUTRAL]
        _bars(chart, "Tickets", [*histogram.counts, histogram.still_waiting], colours)
    return _svg(chart)


def sla_attainment(figures: Figures) -> str:
    """How many of the period's tickets kept their SLA, were warned, breached it or still wait
    (one ticket can be in several: warned, then breached, and still waiting)."""
    kept = figures.handoffs - figures.sla_breaches
    chart = _chart(pygal.Bar, "SLA", _nothing(figures, NO_TICKETS))
    if figures.handoffs:
        chart.title = f"SLA kept on {kept} of {figures.handoffs} tickets ({kept / figures.handoffs:.0%})"
        chart.x_labels = ["not breached", "warned (due soon)", "breached", "still waiting"]
        counts = [kept, figures.sla_warnings, figures.sla_breaches, figures.still_waiting]
        _bars(chart, "Tickets", counts, [GOOD, FAIR, POOR, NEUTRAL])
    return _svg(chart)


def queue_over_time(figures: Figures) -> str:
    """Tickets waiting for a person's first reply, on every hour of the period; over a fortnight,
    each day's longest."""
    queue = figures.queue
    chart = _chart(pygal.Line, "Queue", _nothing(figures, NO_TICKETS), show_dots=False, fill=True, print_values=False)
    if queue.peak or figures.handoffs:
        chart.title = f"Tickets waiting for a person, on the hour: at most {queue.peak}"
        if len(queue.moments) > HOURLY_UP_TO:
            days: dict[str, int] = {}
            for moment, waiting in zip(queue.moments, queue.waiting):
                label = f"{moment - timedelta(microseconds=1):%d %b}"  # the day the hour ended in
                days[label] = max(days.get(label, 0), waiting)
            labels, levels = list(days), list(days.values())
        else:
            labels, levels = [f"{m:%d %b %H:%M}" for m in queue.moments], list(queue.waiting)
        chart.x_labels = labels
        chart.x_labels_major_every = max(1, len(labels) // 8)
        chart.show_minor_x_labels = False
        chart.x_label_rotation = 40
        _count_axis(chart, levels)
        chart.add("Waiting", levels)
    return _svg(chart)


def csat_distribution(figures: Figures) -> str:
    """How customers rated, 1 to 5: the person who resolved their ticket, and the bot's answer
    they pressed Helpful on; each with its mean."""
    people, bot = figures.csat, figures.bot_csat
    chart = _chart(
        pygal.Bar,
        "CSAT (1-5)",
        _nothing(figures, NO_RATINGS),
        show_legend=True,
        legend_at_bottom=True,
        style=CSAT_STYLE,
    )
    if people.count or bot.count:
        chart.title = f"CSAT (1-5): people {_mean(people)}; bot answers {_mean(bot)}"
        chart.x_labels = [str(rating) for rating in RATINGS]
        _count_axis(chart, [*people.distribution.values(), *bot.distribution.values()])
        chart.add("people (tickets)", [people.distribution[rating] for rating in RATINGS])
        chart.add("bot answers", [bot.distribution[rating] for rating in RATINGS])
    return _svg(chart)


def top_gaps(gaps: Sequence[tuple[str, int]]) -> str:
    """The largest groups of unanswered questions, one bar each, named by their commonest wording."""
    chart = _chart(pygal.HorizontalBar, "Top gaps", NO_GAPS)
    if gaps:
        chart.title = f"Top {len(gaps)} gaps: questions no entry answers"
        # pygal draws the first label at the bottom; the largest group belongs on top.
        chart.x_labels = [_shortened(label) for label, _ in reversed(gaps)]
        sizes = [size for _, size in reversed(gaps)]
        _count_axis(chart, sizes)
        chart.add("Questions", sizes)
    return _svg(chart)


def _chart(kind: type[Graph], title: str, empty: str, **options: Any) -> Graph:
    # js=[]: pygal's tooltips would load a script from its CDN, which the consoles' policy forbids.
    return kind(
        js=[],
        style=options.pop("style", STYLE),
        title=title,
        no_data_text=empty,
        width=WIDTH,
        height=HEIGHT,
        explicit_size=True,  # an <img> needs the SVG's own size
        print_values=options.pop("print_values", True),
        print_zeroes=False,
        truncate_label=-1,  # the labels are short, and the gaps' are shortened by hand
        show_legend=options.pop("show_legend", False),
        **options,
    )


def _bars(chart: Graph, name: str, counts: Sequence[int], colours: Sequence[str]) -> None:
    """One series of `counts`, each bar in its own colour."""
    _count_axis(chart, counts)
    chart.add(name, [{"value": count, "color": colour} for count, colour in zip(counts, colours)])


def _count_axis(chart: Graph, counts: Sequence[int]) -> None:
    """Whole numbers on the value axis, about six of them at most: these are counts."""
    highest = max(counts, default=0)
    step = max(1, math.ceil(highest / 5))
    chart.y_labels = list(range(0, highest + step, step))


def _svg(chart: Graph) -> str:
    return chart.render(is_unicode=True)


def _nothing(figures: Figures, empty: str) -> str:
    """What an empty chart says: no conversations at all, or none of what it counts."""
    return empty if figures.outcomes.conversations or figures.handoffs else NO_CONVERSATIONS


def _days(period: Period) -> list[str]:
    """Every UTC day the period touches, as the breakdown's keys (YYYY-MM-DD)."""
    first, last = period.since.date(), (period.until - timedelta(microseconds=1)).date()
    return [(first + timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _split(day: dict[str, Any]) -> tuple[int, int, int]:
    """A day's conversations: (resolved by the bot alone, handed off, neither)."""
    conversations, automated, handed_off = (day.get(n, 0) for n in ("conversations", "automated", "handed_off"))
    return automated, handed_off, conversations - automated - handed_off


def _wait_labels() -> list[str]:
    """`≤ 15 min`, `15–30 min`, ... `1–2 h`, ... `> 4 h` for WAIT_EDGES_MINUTES."""
    labels = [f"≤ {WAIT_EDGES_MINUTES[0]} min"]
    for low, high in pairwise(WAIT_EDGES_MINUTES):
        labels.append(f"{low}–{high} min" if high <= 60 else f"{low // 60}–{high // 60} h")
    return [*labels, f"> {WAIT_EDGES_MINUTES[-1] // 60} h"]


def _wait_colour(edge: int) -> str:
    return GOOD if edge <= 30 else FAIR if edge <= 60 else POOR


def _mean(csat: Csat) -> str:
    return f"{csat.mean:.2f} from {csat.count} ratings" if csat.mean is not None else "not rated"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}"


def _shortened(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= GAP_LABEL_CHARS else text[: GAP_LABEL_CHARS - 1] + "…"
