"""The period's figures per day, week, channel, intent or agent, one row per group: the columns
are the figures that can be told apart by that dimension."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.store import HandoffRow
from crowddesk.bot.reporting import metrics
from crowddesk.bot.reporting.durations import Durations
from crowddesk.bot.reporting.period import Dimension, Period
from crowddesk.bot.reporting.rows import aggregate, count, waits

Column = dict[str, Any]  # group key -> value


@dataclass(frozen=True)
class Breakdown:
    """One row per group (its key, then a value per column), in the order to show them."""

    by: Dimension
    columns: tuple[str, ...]
    rows: list[tuple[str, list[Any]]]

    @staticmethod
    def is_share(column: str) -> bool:
        """The column's values are shares (0 to 1), not counts or minutes."""
        return column in SHARE_COLUMNS

    def as_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "columns": list(self.columns),
            "rows": [{self.by: key, **dict(zip(self.columns, values))} for key, values in self.rows],
        }


def breakdown(session: Session, period: Period, by: Dimension) -> Breakdown:
    """`period`'s figures per group of `by`."""
    columns = _COLUMNS[by](session, period, by)
    keys = {key for column in columns.values() for key in column}
    rows = [
        (key, [column.get(key, 0 if name in _COUNTS else None) for name, column in columns.items()]) for key in keys
    ]
    if by in ("day", "week"):
        rows.sort(key=lambda row: row[0])
    else:  # the biggest group first
        rows.sort(key=lambda row: (-(row[1][0] or 0), row[0]))
    return Breakdown(by, tuple(columns), rows)


def _traffic(session: Session, period: Period, by: str) -> dict[str, Column]:
    outcomes = metrics.outcomes(session, period, by)
    return {
        "conversations": {key: o.conversations for key, o in outcomes.items()},
        "customer_messages": count(session, metrics.customer_messages(period), by),
        "kb_answers": count(session, metrics.kb_answers(period), by),
        "clarifications": count(session, metrics.clarifications(period), by),
        "handoffs": count(session, metrics.handoffs(period), by),
        "handed_off": {key: o.handed_off for key, o in outcomes.items()},
        "automated": {key: o.automated for key, o in outcomes.items()},
        "handoff_rate": {key: o.handoff_rate for key, o in outcomes.items()},
        "automated_resolution_rate": {key: o.automated_resolution_rate for key, o in outcomes.items()},
        "sla_breaches": count(session, metrics.sla_breaches(period), by),
    }


def _intents(session: Session, period: Period, by: str) -> dict[str, Column]:
    return {
        "customer_messages": count(session, metrics.customer_messages(period), by),
        "handoffs": count(session, metrics.handoffs(period), by),
    }


def _agents(session: Session, period: Period, by: str) -> dict[str, Column]:
    replies = {
        agent: Durations.of(minutes)
        for agent, minutes in waits(session, metrics.first_replies(period), HandoffRow.first_response_at, by).items()
    }
    csat = aggregate(session, metrics.ratings(period), func.avg(HandoffRow.rating), by=by)
    return {
        "tickets": count(session, metrics.handoffs(period), by),
        "replied": {agent: durations.count for agent, durations in replies.items()},
        "first_reply_p50_minutes": {agent: durations.p50_minutes for agent, durations in replies.items()},
        "first_reply_p90_minutes": {agent: durations.p90_minutes for agent, durations in replies.items()},
        "first_reply_within_30_min": {agent: durations.within_30_min for agent, durations in replies.items()},
        "resolved": count(session, metrics.resolutions(period), by),
        "sla_breaches": count(session, metrics.sla_breaches(period), by),
        "csat_mean": {agent: round(float(mean), 2) for agent, (mean,) in csat.items()},
    }


_COLUMNS: Mapping[Dimension, Callable[[Session, Period, str], dict[str, Column]]] = {
    "day": _traffic,
    "week": _traffic,
    "channel": _traffic,
    "intent": _intents,
    "agent": _agents,
}
# Columns that are a share of something (0 to 1).
SHARE_COLUMNS: frozenset[str] = frozenset({"handoff_rate", "automated_resolution_rate", "first_reply_within_30_min"})
# Columns that count something: a group with none of it shows 0, not an empty cell.
_COUNTS = frozenset(
    {
        "conversations",
        "customer_messages",
        "kb_answers",
        "clarifications",
        "handoffs",
        "handed_off",
        "automated",
        "tickets",
        "replied",
        "resolved",
        "sla_breaches",
    }
)
