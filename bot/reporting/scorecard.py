"""The scorecard: one period's figures next to those of the period just before it, and, when
asked, a breakdown of the period by day, week, channel, intent or agent."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import Any, Literal, TypeVar

from sqlalchemy import ColumnElement, Engine, func, select
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from crowddesk.bot.conversations.store import ConversationRow, HandoffRow
from crowddesk.bot.reporting import metrics
from crowddesk.bot.reporting.breakdown import Breakdown, breakdown
from crowddesk.bot.reporting.durations import Durations, WaitHistogram
from crowddesk.bot.reporting.metrics import Outcomes
from crowddesk.bot.reporting.period import Dimension, Period
from crowddesk.bot.reporting.queue import QueueLength
from crowddesk.bot.reporting.rows import TOTAL, Rows, aggregate, count, how_many, waits
from crowddesk.storage.engines import reader

_Part = TypeVar("_Part")
MOST_UNHELPFUL = 10
RATINGS = range(1, 6)
Unit = Literal["count", "share", "minutes", "score"]


@dataclass(frozen=True)
class Csat:
    """Customers' ratings (1 to 5): of people, asked when a person resolves a ticket; of the
    bot, asked after a Helpful press on its answer (`feedback.ask_rating`)."""

    distribution: dict[int, int]

    @property
    def count(self) -> int:
        return sum(self.distribution.values())

    @property
    def mean(self) -> float | None:
        total = sum(rating * times for rating, times in self.distribution.items())
        return round(total / self.count, 2) if self.count else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "mean": self.mean,
            "distribution": {str(r): n for r, n in self.distribution.items()},
        }


@dataclass(frozen=True)
class UnhelpfulEntry:
    """A knowledge-base entry customers marked Not helpful `presses` times in the period."""

    entry_id: str
    question: str
    presses: int


@dataclass(frozen=True)
class Figures:
    """Every figure of one period (see bot/reporting/metrics.py for each definition)."""

    outcomes: Outcomes
    customer_messages: int
    kb_answers: int
    clarifications: int
    handoffs: int
    handoffs_by_reason: dict[str, int]
    kb_helpful: int
    kb_not_helpful: int
    first_reply: Durations
    first_reply_histogram: WaitHistogram
    queue: QueueLength
    still_waiting: int
    resolution: Durations
    sla_warnings: int
    sla_breaches: int
    tickets_per_agent: dict[str, int]
    csat: Csat
    bot_csat: Csat
    most_unhelpful: list[UnhelpfulEntry]

    def as_dict(self) -> dict[str, Any]:
        return {
            "volume": {"conversations": self.outcomes.conversations, "customer_messages": self.customer_messages},
            "bot": {
                "kb_answers": self.kb_answers,
                "clarifications": self.clarifications,
                "handoffs": self.handoffs,
                "handoffs_by_reason": dict(self.handoffs_by_reason),
                "conversations": self.outcomes.as_dict(),
                "kb_helpful": self.kb_helpful,
                "kb_not_helpful": self.kb_not_helpful,
            },
            "people": {
                "first_reply": self.first_reply.as_dict(),
                "first_reply_histogram": self.first_reply_histogram.as_dict(),
                "queue": self.queue.as_dict(),
                "still_waiting": self.still_waiting,
                "resolution": self.resolution.as_dict(),
                "sla_warnings": self.sla_warnings,
                "sla_breaches": self.sla_breaches,
                "tickets_per_agent": dict(self.tickets_per_agent),
            },
            "customer": {"csat": self.csat.as_dict(), "bot_csat": self.bot_csat.as_dict()},
            "content": {
                "most_unhelpful": [
                    {"entry_id": e.entry_id, "question": e.question, "not_helpful": e.presses}
                    for e in self.most_unhelpful
                ]
            },
        }


@dataclass(frozen=True)
class Headline:
    """One headline number this period and the period before."""

    name: str
    label: str
    unit: Unit
    current: float | None
    previous: float | None

    @property
    def change(self) -> float | None:
        """This period's value minus the previous one's (a share's change is in points)."""
        if self.current is None or self.previous is None:
            return None
        return round(self.current - self.previous, 4)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "current": self.current, "previous": self.previous, "change": self.change}


@dataclass(frozen=True)
class Scorecard:
    """One period's figures, the previous period's (same length, just before) and a breakdown."""

    period: Period
    current: Figures
    previous: Figures
    breakdown: Breakdown | None = None

    def headline(self) -> list[Headline]:
        """The numbers a support lead reads first, with the previous period's."""
        return [
            Headline(name, label, unit, getter(self.current), getter(self.previous))
            for name, label, unit, getter in _HEADLINE
        ]

    def as_dict(self) -> dict[str, Any]:
        return {
            "period": self.period.as_dict(),
            "previous_period": self.period.previous().as_dict(),
            "headline": [h.as_dict() for h in self.headline()],
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "breakdown": None if self.breakdown is None else self.breakdown.as_dict(),
        }


def scorecard(engine: Engine, period: Period, by: Dimension | None = None) -> Scorecard:
    """The scorecard of `period`, broken down `by` a dimension if given.

    Its parts (this period's figures, the previous period's, the breakdown) are computed at once,
    each in a read transaction of its own on its own connection, so the database works on them
    on several cores; a database of one shared connection (SQLite in memory) takes them in turn.
    """
    sessions = sessionmaker(reader(engine))

    def part(compute: Callable[[Session], _Part]) -> _Part:
        with sessions() as session:
            return compute(session)

    current = partial(figures, period=period)
    previous = partial(figures, period=period.previous())
    divided = partial(breakdown, period=period, by=by) if by is not None else None
    if isinstance(engine.pool, StaticPool):
        return Scorecard(period, part(current), part(previous), None if divided is None else part(divided))
    with ThreadPoolExecutor(max_workers=3, thread_name_prefix="scorecard") as pool:
        parts = [pool.submit(part, current), pool.submit(part, previous)]
        split = None if divided is None else pool.submit(part, divided)
        return Scorecard(period, parts[0].result(), parts[1].result(), None if split is None else split.result())


def channels(engine: Engine) -> list[str]:
    """Every channel conversations came through, in order: what a scorecard can be limited to."""
    with sessionmaker(reader(engine))() as session:
        return list(session.scalars(select(ConversationRow.channel).distinct().order_by(ConversationRow.channel)))


def figures(session: Session, period: Period) -> Figures:
    """Every figure of `period`: one SQL aggregate each, or one for the figures counted over the
    same rows (the period's tickets, its presses)."""
    ratings = count(session, metrics.ratings(period), by="rating")
    answer_ratings = count(session, metrics.answer_ratings(period), by="rating")
    replies = _waits(session, metrics.first_replies(period), HandoffRow.first_response_at)
    opened, still_waiting, warned, breached = _counts(
        session,
        metrics.handoffs(period),
        metrics.unanswered_by_end(period),
        metrics.warned_by_end(period),
        metrics.breached_by_end(period),
    )
    _, helpful, not_helpful = _counts(session, metrics.presses(period), metrics.helpful(), ~metrics.helpful())
    return Figures(
        outcomes=metrics.outcomes(session, period)[TOTAL],
        customer_messages=_total(session, metrics.customer_messages(period)),
        kb_answers=_total(session, metrics.kb_answers(period)),
        clarifications=_total(session, metrics.clarifications(period)),
        handoffs=opened,
        handoffs_by_reason=_most_first(count(session, metrics.handoffs(period), by="reason")),
        kb_helpful=helpful,
        kb_not_helpful=not_helpful,
        first_reply=Durations.of(replies),
        first_reply_histogram=WaitHistogram.of(replies, still_waiting),
        queue=QueueLength.of(
            period,
            _total(session, metrics.waiting_at_start(period)),
            count(session, metrics.handoffs(period), by="hour"),
            count(session, metrics.queue_departures(period), by="hour"),
        ),
        still_waiting=still_waiting,
        resolution=Durations.of(_waits(session, metrics.resolutions(period), HandoffRow.resolved_at)),
        sla_warnings=warned,
        sla_breaches=breached,
        tickets_per_agent=_most_first(count(session, metrics.handoffs(period), by="agent")),
        csat=Csat({rating: ratings.get(str(rating), 0) for rating in RATINGS}),
        bot_csat=Csat({rating: answer_ratings.get(str(rating), 0) for rating in RATINGS}),
        most_unhelpful=[
            UnhelpfulEntry(entry_id, question or "", int(presses))
            for entry_id, question, presses in session.execute(metrics.most_unhelpful(period, MOST_UNHELPFUL))
        ],
    )


_HEADLINE: tuple[tuple[str, str, Unit, Any], ...] = (
    ("conversations", "Conversations (new customers)", "count", lambda f: f.outcomes.conversations),
    ("customer_messages", "Customer messages", "count", lambda f: f.customer_messages),
    ("kb_answers", "KB answers served", "count", lambda f: f.kb_answers),
    ("automated_resolution_rate", "Resolved by the bot alone", "share", lambda f: f.outcomes.automated_resolution_rate),
    ("handoff_rate", "Handed off", "share", lambda f: f.outcomes.handoff_rate),
    ("kb_helpful", "Answers marked Helpful", "count", lambda f: f.kb_helpful),
    ("kb_not_helpful", "Answers marked Not helpful", "count", lambda f: f.kb_not_helpful),
    ("first_reply_p50_minutes", "First human reply, median (min)", "minutes", lambda f: f.first_reply.p50_minutes),
    ("first_reply_p90_minutes", "First human reply, p90 (min)", "minutes", lambda f: f.first_reply.p90_minutes),
    ("first_reply_within_30_min", "First reply within 30 min", "share", lambda f: f.first_reply.within_30_min),
    ("first_reply_within_60_min", "First reply within 60 min", "share", lambda f: f.first_reply.within_60_min),
    ("still_waiting", "Tickets still waiting", "count", lambda f: f.still_waiting),
    ("queue_peak", "Longest queue, on the hour", "count", lambda f: f.queue.peak),
    ("sla_breaches", "SLA breaches", "count", lambda f: f.sla_breaches),
    ("csat_mean", "CSAT (1-5), human-handled", "score", lambda f: f.csat.mean),
    ("bot_csat_mean", "CSAT (1-5), bot answers", "score", lambda f: f.bot_csat.mean),
)


def _total(session: Session, rows: Rows) -> int:
    return count(session, rows)[TOTAL]


def _counts(session: Session, rows: Rows, *conditions: ColumnElement[bool]) -> tuple[int, ...]:
    """How many `rows` there are, then how many of them meet each of `conditions`: one pass."""
    values = aggregate(session, rows, func.count(), *(how_many(condition) for condition in conditions))[TOTAL]
    return tuple(int(value) for value in values)


def _waits(session: Session, rows: Rows, end: Any) -> list[float]:
    return waits(session, rows, end).get(TOTAL, [])


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
