"""`crowddesk report`: the support scorecard of a period next to the period just before it.

How much the bot answered on its own, how many of its answers helped, how fast people replied
to the rest, where the SLA was breached, what customers rated, and which entries they found
unhelpful. Dates are ISO (2026-11-30, or with a time), in UTC unless they say otherwise; the
period runs from --since up to, not including, --until. --csv writes the headline numbers, or
the breakdown when --by is given.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from crowddesk.bot.cli.arguments import ProjectArg
from crowddesk.bot.cli.output import EXIT_CODES, say

if TYPE_CHECKING:
    from crowddesk.bot.reporting.breakdown import Breakdown
    from crowddesk.bot.reporting.scorecard import Headline, Scorecard

NO_VALUE = "-"


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], project_arg: ProjectArg) -> None:
    """Register `crowddesk report`; `project_arg` adds `--project`."""
    report = verbs.add_parser(
        "report",
        help="the support scorecard of a period, against the one before",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    project_arg(report)
    report.add_argument("--since", help="start of the period (default: 7 days before --until)")
    report.add_argument("--until", help="end of the period, not included (default: now)")
    report.add_argument("--channel", help="only conversations of this channel (e.g. telegram)")
    report.add_argument("--by", help="also break the period down by day, week, channel, intent or agent")
    formats = report.add_mutually_exclusive_group()
    formats.add_argument("--json", action="store_true", help="every figure as one JSON document")
    formats.add_argument("--csv", action="store_true", help="CSV: the headline, or the breakdown with --by")
    report.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")


def run(args: argparse.Namespace) -> int:
    """Run the parsed `report` verb (heavy imports only now); bad dates or --by are refused
    before the database is opened."""
    from crowddesk.bot.project.loading import load_project
    from crowddesk.bot.reporting.period import dimension, period_from
    from crowddesk.bot.reporting.scorecard import scorecard
    from crowddesk.bot.server.database import open_database

    period = period_from(args.since, args.until, args.channel, datetime.now(UTC))
    by = dimension(args.by)
    database = open_database(load_project(args.project), args.database_url)
    try:
        card = scorecard(database, period, by)
    finally:
        database.dispose()
    if args.json:
        say(json.dumps(card.as_dict(), indent=2, ensure_ascii=False))
    elif args.csv:
        say(_csv(card).rstrip("\n"))
    else:
        say(_table(card))
    return 0


def _table(card: Scorecard) -> str:
    from crowddesk.bot.evaluation.metrics import format_table

    period, previous = card.period, card.period.previous()
    figures = card.current
    sections = {
        f"Scorecard {_moment(period.since)} to {_moment(period.until)} UTC, "
        f"{'channel ' + period.channel if period.channel else 'all channels'}; "
        f"previous period {_moment(previous.since)} to {_moment(previous.until)}": (
            ["", "this period", "previous", "change"],
            [[h.label, _value(h, h.current), _value(h, h.previous), _change(h)] for h in card.headline()],
        ),
        "Handoffs by reason": (["reason", "tickets"], _counted(figures.handoffs_by_reason)),
        "Tickets per agent": (["agent", "tickets"], _counted(figures.tickets_per_agent)),
        "CSAT, asked when a person resolves a ticket": (["rating", "times"], _counted(figures.csat.distribution)),
        "CSAT of the bot's answers, asked after Helpful": (
            ["rating", "times"],
            _counted(figures.bot_csat.distribution),
        ),
        "Most often marked Not helpful": (
            ["entry", "question", "presses"],
            [[e.entry_id, e.question, str(e.presses)] for e in figures.most_unhelpful],
        ),
    }
    if card.breakdown is not None:
        sections[f"By {card.breakdown.by}"] = _breakdown_cells(card.breakdown)
    return "\n\n".join(f"{title}\n{format_table(*cells)}" for title, cells in sections.items() if cells[1])


def _csv(card: Scorecard) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if card.breakdown is not None:
        writer.writerow([card.breakdown.by, *card.breakdown.columns])
        writer.writerows([key, *("" if v is None else v for v in values)] for key, values in card.breakdown.rows)
    else:
        writer.writerow(["metric", "current", "previous", "change"])
        writer.writerows(
            [h.name, *("" if v is None else v for v in (h.current, h.previous, h.change))] for h in card.headline()
        )
    return out.getvalue()


def _counted(counts: Mapping[Any, int]) -> list[list[str]]:
    return [[str(key), str(times)] for key, times in counts.items()]


def _breakdown_cells(breakdown: Breakdown) -> tuple[list[str], list[list[str]]]:
    headers = [breakdown.by, *(column.replace("_", " ") for column in breakdown.columns)]
    rows = [
        [key, *(_plain(breakdown.is_share(column), v) for column, v in zip(breakdown.columns, values))]
        for key, values in breakdown.rows
    ]
    return headers, rows


def _value(headline: Headline, value: float | None) -> str:
    if value is None:
        return NO_VALUE
    return {
        "count": f"{value:.0f}",
        "share": f"{value:.1%}",
        "minutes": f"{value:.1f}",
        "score": f"{value:.2f}",
    }[headline.unit]


def _change(headline: Headline) -> str:
    change = headline.change
    if change is None:
        return NO_VALUE
    if headline.unit == "share":
        return f"{change * 100:+.1f} pts"
    return {"count": f"{change:+.0f}", "minutes": f"{change:+.1f}", "score": f"{change:+.2f}"}[headline.unit]


def _plain(share: bool, value: Any) -> str:
    if value is None:
        return NO_VALUE
    if share:
        return f"{value:.1%}"
    return str(value)


def _moment(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")
