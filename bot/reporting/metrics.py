"""Every figure of the scorecard, each defined once as SQL over a period: the rows it is
aggregated over (`Rows`), or the condition a conversation meets.

Outcomes are read up to the end of the period, never after: a closed period's scorecard stays the
same however late it is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, case, func, or_, select
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.store import ConversationRow, EventRow, HandoffRow
from crowddesk.bot.dialogue.executors import CLARIFY_ACTION
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.reporting.period import Period
from crowddesk.bot.reporting.rows import Expression, Rows, aggregate, how_many
from crowddesk.knowledge_base.store import KBFeedbackRow, KBQuestionRow

_action_name = EventRow.name
_message_intent = EventRow.data[("parse_data", "intent", "name")].as_string()
_by_channel: Mapping[str, Expression] = {"channel": ConversationRow.channel}
# The conversation of an event or a ticket: joined only when its channel is read (see `Rows.lookups`).
_event_conversation = ((ConversationRow.__table__, EventRow.conversation_id == ConversationRow.id),)
_ticket_conversation = ((ConversationRow.__table__, HandoffRow.conversation_id == ConversationRow.id),)
_ticket_keys: Mapping[str, Expression] = {
    **_by_channel,
    "intent": HandoffRow.packet[("intent", "name")].as_string(),
    "agent": HandoffRow.assigned_to,
    "reason": HandoffRow.reason,
    "rating": HandoffRow.rating,
}


def conversations(period: Period) -> Rows:
    """Conversations started in the period; a customer has one per channel, so also the new customers."""
    return Rows(
        ConversationRow.__table__,
        (*_between(ConversationRow.created_at, period), *_on_channel(period)),
        ConversationRow.created_at,
        epoch=False,
        keys=_by_channel,
    )


def customer_messages(period: Period) -> Rows:
    """Messages customers sent in the period (user events, button presses included)."""
    return _events(period, EventRow.type == "user", intent=_message_intent)


def kb_answers(period: Period) -> Rows:
    """Knowledge-base answers the bot served in the period."""
    return _events(period, EventRow.type == "action", _action_name == ANSWER_ACTION)


def clarifications(period: Period) -> Rows:
    """Times the bot offered its likeliest readings as buttons instead of answering."""
    return _events(period, EventRow.type == "action", _action_name == CLARIFY_ACTION)


def handoffs(period: Period) -> Rows:
    """Tickets opened in the period (a conversation may have several)."""
    return _tickets(_between(HandoffRow.created_at, period), HandoffRow.created_at, period, keys=_ticket_keys)


def queue_departures(period: Period) -> Rows:
    """Tickets that stopped waiting for a person in the period (see `left_queue_at`), whenever opened."""
    # Either moment falling in the period lets the database find them by index; the first decides.
    replied, resolved = _between(HandoffRow.first_response_at, period), _between(HandoffRow.resolved_at, period)
    touched = or_(and_(*replied), and_(*resolved))
    return _tickets((touched, *_between(left_queue_at(), period)), left_queue_at(), period)


def waiting_at_start(period: Period) -> Rows:
    """Tickets waiting for a person when the period began: opened before, not yet left the queue."""
    left = left_queue_at()
    return _tickets((HandoffRow.created_at < period.since, or_(left.is_(None), left >= period.since)), left, period)


def left_queue_at() -> ColumnElement[Any]:
    """When a ticket stopped waiting for a person: its first reply, or its resolution if that came first."""
    replied, resolved = HandoffRow.first_response_at, HandoffRow.resolved_at
    return case(
        (replied.is_(None), resolved),
        (resolved.is_(None), replied),
        (replied <= resolved, replied),
        else_=resolved,
    )


def first_replies(period: Period) -> Rows:
    """Tickets opened in the period that a person replied to before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.first_response_at, period))


def unanswered_by_end(period: Period) -> ColumnElement[bool]:
    """The ticket was open and had no reply from a person when the period ended (still waiting)."""
    return and_(~_by_end(HandoffRow.first_response_at, period), ~_by_end(HandoffRow.resolved_at, period))


def resolutions(period: Period) -> Rows:
    """Tickets opened in the period and resolved before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.resolved_at, period))


def warned_by_end(period: Period) -> ColumnElement[bool]:
    """The ticket's SLA warning (due soon, no reply) went off before the period ended."""
    return _by_end(HandoffRow.sla_warned_at, period)


def breached_by_end(period: Period) -> ColumnElement[bool]:
    """The ticket went past its due time without a reply before the period ended (an SLA breach)."""
    return _by_end(HandoffRow.sla_breached_at, period)


def sla_breaches(period: Period) -> Rows:
    """Tickets opened in the period that breached their SLA before it ended."""
    return handoffs(period).where(breached_by_end(period))


def ratings(period: Period) -> Rows:
    """Tickets opened and resolved in the period that the customer rated (1 to 5)."""
    return resolutions(period).where(HandoffRow.rating.is_not(None))


def presses(period: Period) -> Rows:
    """Helpful and Not helpful presses on knowledge-base answers in the period."""
    return Rows(
        KBFeedbackRow.__table__,
        (*_between(KBFeedbackRow.created_at, period), *_on_channel(period)),
        KBFeedbackRow.created_at,
        epoch=False,
        keys={**_by_channel, "rating": KBFeedbackRow.rating},
        lookups=((ConversationRow.__table__, KBFeedbackRow.sender_id == ConversationRow.sender_id),),
    )


def helpful() -> ColumnElement[bool]:
    """The press was Helpful (else Not helpful)."""
    return KBFeedbackRow.helpful.is_(True)


def answer_ratings(period: Period) -> Rows:
    """Ratings (1 to 5) of the bot's answers customers pressed Helpful on in the period."""
    return presses(period).where(helpful(), KBFeedbackRow.rating.is_not(None))


def answered_by_bot(period: Period) -> ColumnElement[bool]:
    """The conversation got a KB answer or a response of the project's dialogue before the period
    ended (bot/dialogue/answered.py says which actions answer)."""
    return _by_end(ConversationRow.answered_at, period)


def handed_off(period: Period) -> ColumnElement[bool]:
    """The conversation had a ticket opened before the period ended."""
    return _by_end(ConversationRow.handed_off_at, period)


def marked_unhelpful(period: Period) -> ColumnElement[bool]:
    """The customer pressed Not helpful on one of the bot's answers before the period ended."""
    return _by_end(ConversationRow.unhelpful_at, period)


def automated(period: Period) -> ColumnElement[bool]:
    """The bot resolved the conversation alone: it answered, no ticket, no Not helpful press."""
    return and_(answered_by_bot(period), ~handed_off(period), ~marked_unhelpful(period))


def most_unhelpful(period: Period, limit: int) -> Select[str, str | None, int]:
    """The entries most often marked Not helpful in the period: id, first question, presses."""
    pressed = func.count().label("presses")
    first_question = (
        select(KBQuestionRow.text)
        .where(KBQuestionRow.entry_id == KBFeedbackRow.entry_id)
        .order_by(KBQuestionRow.position)
        .limit(1)
        .scalar_subquery()
    )
    return (
        presses(period)
        .where(~helpful())
        .select(KBFeedbackRow.entry_id, first_question, pressed)
        .group_by(KBFeedbackRow.entry_id)
        .order_by(pressed.desc(), KBFeedbackRow.entry_id)
        .limit(limit)
    )


@dataclass(frozen=True)
class Outcomes:
    """What became, by the period's end, of the conversations started in it."""

    conversations: int
    handed_off: int
    automated: int

    @property
    def handoff_rate(self) -> float | None:
        """Conversations with a ticket / conversations started."""
        return _share(self.handed_off, self.conversations)

    @property
    def automated_resolution_rate(self) -> float | None:
        """Conversations the bot resolved alone / conversations started."""
        return _share(self.automated, self.conversations)

    def as_dict(self) -> dict[str, Any]:
        return {
            "conversations": self.conversations,
            "handed_off": self.handed_off,
            "handoff_rate": self.handoff_rate,
            "automated": self.automated,
            "automated_resolution_rate": self.automated_resolution_rate,
        }


def outcomes(session: Session, period: Period, by: str | None = None) -> dict[str, Outcomes]:
    """The outcomes of the period's conversations: {TOTAL: outcomes}, or per group of `by`."""
    counted = aggregate(
        session,
        conversations(period),
        func.count(),
        how_many(handed_off(period)),
        how_many(automated(period)),
        by=by,
    )
    return {key: Outcomes(*(int(value) for value in values)) for key, values in counted.items()}


def _tickets(
    conditions: tuple[ColumnElement[bool], ...],
    when: Expression,
    period: Period,
    keys: Mapping[str, Expression] = _by_channel,
) -> Rows:
    return Rows(
        HandoffRow.__table__,
        (*conditions, *_on_channel(period)),
        when,
        epoch=False,
        keys=keys,
        lookups=_ticket_conversation,
    )


def _events(period: Period, *conditions: ColumnElement[bool], intent: Expression | None = None) -> Rows:
    return Rows(
        EventRow.__table__,
        (
            EventRow.timestamp >= period.since.timestamp(),
            EventRow.timestamp < period.until.timestamp(),
            *_on_channel(period),
            *conditions,
        ),
        EventRow.timestamp,
        epoch=True,
        keys=_by_channel if intent is None else {**_by_channel, "intent": intent},
        lookups=_event_conversation,
    )


def _between(column: Any, period: Period) -> tuple[ColumnElement[bool], ...]:
    return column >= period.since, column < period.until


def _by_end(column: Any, period: Period) -> ColumnElement[bool]:
    """`column`, a moment that may not have come yet, came before the period ended."""
    return and_(column.is_not(None), column < period.until)


def _on_channel(period: Period) -> tuple[ColumnElement[bool], ...]:
    return () if period.channel is None else (ConversationRow.channel == period.channel,)


def _share(part: int, whole: int) -> float | None:
    """`part` as a share of `whole`, to four places; None of nothing."""
    return round(part / whole, 4) if whole else None
