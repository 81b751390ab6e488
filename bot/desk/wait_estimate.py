"""The wait a customer is told when handed off, estimated from the live queue and recent history.

Tickets ahead are served `active agents` at a time, and each round takes about as long as a
recent ticket waited for its first reply (the middle half of those waits gives the range).
Without history the configured default stands in for the measured median.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median, quantiles

from sqlalchemy import Engine, func, or_, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.states import TicketStatus
from crowddesk.bot.conversations.store import HandoffRow
from crowddesk.bot.desk.agents import TokenRow
from crowddesk.bot.project.config import WaitSettings

# Below this many measured tickets the quartiles say little; the range is then ±50% around
# the median instead.
MIN_HISTORY_FOR_QUARTILES = 4


@dataclass(frozen=True)
class QueueSnapshot:
    """What the estimate is computed from."""

    ahead: int  # queued tickets served before the new one (due no later than it)
    active_agents: int
    first_reply_minutes: tuple[float, ...]  # recent resolved tickets, newest first


@dataclass(frozen=True)
class WaitEstimate:
    """A range of minutes; `str()` gives "5" or "10–20" for the customer's message."""

    low: int
    high: int

    def __str__(self) -> str:
        return str(self.low) if self.low == self.high else f"{self.low}–{self.high}"


def estimate_wait(snapshot: QueueSnapshot, settings: WaitSettings) -> WaitEstimate:
    """The range of minutes until an agent replies, given the queue and recent history."""
    history = snapshot.first_reply_minutes
    if len(history) >= MIN_HISTORY_FOR_QUARTILES:
        low_round, _, high_round = quantiles(history, n=4, method="inclusive")
    else:
        typical = median(history) if history else settings.default_first_reply_minutes
        low_round, high_round = typical * 0.5, typical * 1.5
    # With nobody active yet the first agent to sign in works the queue alone.
    rounds = math.ceil((snapshot.ahead + 1) / max(snapshot.active_agents, 1))
    low = _friendly(min(low_round * rounds, settings.max_minutes))
    high = _friendly(min(high_round * rounds, settings.max_minutes))
    return WaitEstimate(low, max(low, high))


def _friendly(minutes: float) -> int:
    """Whole minutes up to 10, then multiples of 5: "about 37 minutes" claims false precision."""
    if minutes <= 10:
        return max(1, round(minutes))
    return max(10, 5 * round(minutes / 5))


class WaitEstimator:
    """Reads the live queue from the database and estimates the wait for a new ticket."""

    def __init__(self, database: Engine, settings: WaitSettings) -> None:
        self._sessions = sessionmaker(database)
        self.settings = settings

    def estimate(self, due_at: datetime, now: datetime) -> WaitEstimate:
        """The wait for a ticket about to be queued with this due time."""
        return estimate_wait(self.snapshot(due_at, now), self.settings)

    def snapshot(self, due_at: datetime, now: datetime) -> QueueSnapshot:
        """The queue ahead of a ticket due at `due_at`, active agents and recent reply times."""
        since = now - timedelta(minutes=self.settings.active_agent_minutes)
        with self._sessions() as session:
            ahead = (
                session.scalar(
                    select(func.count())
                    .select_from(HandoffRow)
                    .where(HandoffRow.status == TicketStatus.QUEUED, HandoffRow.due_at <= due_at)
                )
                or 0
            )
            working = session.scalars(
                select(HandoffRow.assigned_to)
                .distinct()
                .where(
                    HandoffRow.assigned_to.is_not(None),
                    or_(
                        HandoffRow.status == TicketStatus.ASSIGNED,
                        HandoffRow.assigned_at >= since,
                        HandoffRow.first_response_at >= since,
                        HandoffRow.resolved_at >= since,
                    ),
                )
            )
            signed_in = session.scalars(
                select(TokenRow.agent_id).distinct().where(TokenRow.created_at >= since, TokenRow.expires_at > now)
            )
            active = {*working, *signed_in}
            replied = session.execute(
                select(HandoffRow.created_at, HandoffRow.first_response_at)
                .where(HandoffRow.status == TicketStatus.RESOLVED, HandoffRow.first_response_at.is_not(None))
                .order_by(HandoffRow.resolved_at.desc())
                .limit(self.settings.recent_tickets)
            )
            history = tuple(
                max(0.0, (first - created).total_seconds() / 60)
                for created, first in replied
                if first is not None  # excluded by the query; the column is nullable
            )
        return QueueSnapshot(ahead, len(active), history)
