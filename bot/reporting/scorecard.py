"""The scorecard: one period's figures next to those of the period just before it, and, when
asked, a breakdown of the period by day, week, channel, intent or agent."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.bot.conversations.store import HandoffRow
from crowddesk.bot.reporting import metrics
from crowddesk.bot.reporting.breakdown import Breakdown, breakdown
from crowddesk.bot.reporting.durations import Durations
from crowddesk.bot.reporting.metrics import Outcomes
from crowddesk.bot.reporting.period import Dimension, Period
from crowddesk.bot.reporting.rows import TOTAL, Rows, count, spans
from crowddesk.storage.engines import reader

MOST_UNHELPFUL = 10
RATINGS = range(1, 6)
Unit = Literal["count", "share", "minutes", "score"]


@dataclass(frozen=True)
class Csat:
    """Customers' ratings (1 to 5). They are asked only when a person resolves their ticket, so
    these are human-handled conversations; the bot's own answers have Helpful / Not helpful."""

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
    still_waiting: int
    resolution: Durations
    sla_warnings: int
    sla_breaches: int
    tickets_per_agent: dict[str, int]
    csat: Csat
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
                "still_waiting": self.still_waiting,
                "resolution": self.resolution.as_dict(),
                "sla_warnings": self.sla_warnings,
                "sla_breaches": self.sla_breaches,
                "tickets_per_agent": dict(self.tickets_per_agent),
            },
            "customer": {"csat": self.csat.as_dict()},
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
            "headline": [
                {"name": h.name, "current": h.current, "previous": h.previous, "change": h.change}
                for h in self.headline()
            ],
            "current": self.current.as_dict(),
            "previous": self.previous.as_dict(),
            "breakdown": None if self.breakdown is None else self.breakdown.as_dict(),
        }


def scorecard(engine: Engine, period: Period, by: Dimension | None = None) -> Scorecard:
    """The scorecard of `period`, broken down `by` a dimension if given."""
    with sessionmaker(reader(engine))() as session:
        return Scorecard(
            period,
            figures(session, period),
            figures(session, period.previous()),
            None if by is None else breakdown(session, period, by),
        )


def figures(session: Session, period: Period) -> Figures:
    """Every figure of `period`, one SQL aggregate each."""
    ratings = count(session, metrics.ratings(period), by="rating")
    return Figures(
        outcomes=metrics.outcomes(session, period)[TOTAL],
        customer_messages=_total(session, metrics.customer_messages(period)),
        kb_answers=_total(session, metrics.kb_answers(period)),
        clarifications=_total(session, metrics.clarifications(period)),
        handoffs=_total(session, metrics.handoffs(period)),
        handoffs_by_reason=_most_first(count(session, metrics.handoffs(period), by="reason")),
        kb_helpful=_total(session, metrics.kb_feedback(period, helpful=True)),
        kb_not_helpful=_total(session, metrics.kb_feedback(period, helpful=False)),
        first_reply=_durations(session, metrics.first_replies(period), HandoffRow.first_response_at),
        still_waiting=_total(session, metrics.still_waiting(period)),
        resolution=_durations(session, metrics.resolutions(period), HandoffRow.resolved_at),
        sla_warnings=_total(session, metrics.sla_warnings(period)),
        sla_breaches=_total(session, metrics.sla_breaches(period)),
        tickets_per_agent=_most_first(count(session, metrics.handoffs(period), by="agent")),
        csat=Csat({rating: ratings.get(str(rating), 0) for rating in RATINGS}),
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
    ("sla_breaches", "SLA breaches", "count", lambda f: f.sla_breaches),
    ("csat_mean", "CSAT (1-5), human-handled", "score", lambda f: f.csat.mean),
)


def _total(session: Session, rows: Rows) -> int:
    return count(session, rows)[TOTAL]


def _durations(session: Session, rows: Rows, end: Any) -> Durations:
    return Durations.between(spans(session, rows, end).get(TOTAL, []))


def _most_first(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))
