"""Every figure of the scorecard, each defined once as SQL over a period: the rows it is
aggregated over (`Rows`), or the condition a conversation meets.

Outcomes are read up to the end of the period, never after: a closed period's scorecard stays the
same however late it is asked for.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, func, or_, select
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.store import ConversationRow, EventRow, HandoffRow
from crowddesk.bot.dialogue.executors import CLARIFY_ACTION
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN
from crowddesk.bot.reporting.period import Period
from crowddesk.bot.reporting.rows import Expression, Rows, aggregate, how_many
from crowddesk.knowledge_base.store import KBFeedbackRow, KBQuestionRow

# The policy behind the support decisions (answer from the KB, clarify, hand off); any other
# policy on an action event is the project's dialogue (rules, stories, the learned policy).
SUPPORT_POLICY = "SupportPolicy"

_action_name = EventRow.data["name"].as_string()
_action_policy = EventRow.data["policy"].as_string()
_message_intent = EventRow.data[("parse_data", "intent", "name")].as_string()
_by_channel: Mapping[str, Expression] = {"channel": ConversationRow.channel}


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
    return Rows(
        HandoffRow.__table__.join(ConversationRow.__table__, HandoffRow.conversation_id == ConversationRow.id),
        (*_between(HandoffRow.created_at, period), *_on_channel(period)),
        HandoffRow.created_at,
        epoch=False,
        keys={
            **_by_channel,
            "intent": HandoffRow.packet[("intent", "name")].as_string(),
            "agent": HandoffRow.assigned_to,
            "reason": HandoffRow.reason,
            "rating": HandoffRow.rating,
        },
    )


def first_replies(period: Period) -> Rows:
    """Tickets opened in the period that a person replied to before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.first_response_at, period))


def still_waiting(period: Period) -> Rows:
    """Tickets opened in the period that, when it ended, were open and had no reply from a person."""
    return handoffs(period).where(
        ~_by_end(HandoffRow.first_response_at, period), ~_by_end(HandoffRow.resolved_at, period)
    )


def resolutions(period: Period) -> Rows:
    """Tickets opened in the period and resolved before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.resolved_at, period))


def sla_warnings(period: Period) -> Rows:
    """Tickets opened in the period whose SLA warning (due soon, no reply) went off before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.sla_warned_at, period))


def sla_breaches(period: Period) -> Rows:
    """Tickets opened in the period that went past their due time without a reply before it ended."""
    return handoffs(period).where(_by_end(HandoffRow.sla_breached_at, period))


def ratings(period: Period) -> Rows:
    """Tickets opened and resolved in the period that the customer rated (1 to 5)."""
    return resolutions(period).where(HandoffRow.rating.is_not(None))


def kb_feedback(period: Period, *, helpful: bool) -> Rows:
    """Helpful (or Not helpful) presses on knowledge-base answers in the period."""
    return Rows(
        KBFeedbackRow.__table__.join(ConversationRow.__table__, KBFeedbackRow.sender_id == ConversationRow.sender_id),
        (*_between(KBFeedbackRow.created_at, period), *_on_channel(period), KBFeedbackRow.helpful.is_(helpful)),
        KBFeedbackRow.created_at,
        epoch=False,
        keys=_by_channel,
    )


def answered_by_bot(period: Period) -> ColumnElement[bool]:
    """The conversation got a KB answer or a response of the project's dialogue before the period ended."""
    dialogue_response = and_(
        _action_policy.is_not(None), _action_policy != SUPPORT_POLICY, _action_name != ACTION_LISTEN
    )
    return exists().where(
        EventRow.conversation_id == ConversationRow.id,
        EventRow.type == "action",
        EventRow.timestamp < period.until.timestamp(),
        or_(_action_name == ANSWER_ACTION, dialogue_response),
    )


def handed_off(period: Period) -> ColumnElement[bool]:
    """The conversation had a ticket opened before the period ended."""
    return exists().where(HandoffRow.conversation_id == ConversationRow.id, HandoffRow.created_at < period.until)


def marked_unhelpful(period: Period) -> ColumnElement[bool]:
    """The customer pressed Not helpful on one of the bot's answers before the period ended."""
    return exists().where(
        KBFeedbackRow.sender_id == ConversationRow.sender_id,
        KBFeedbackRow.helpful.is_(False),
        KBFeedbackRow.created_at < period.until,
    )


def automated(period: Period) -> ColumnElement[bool]:
    """The bot resolved the conversation alone: it answered, no ticket, no Not helpful press."""
    return and_(answered_by_bot(period), ~handed_off(period), ~marked_unhelpful(period))


def most_unhelpful(period: Period, limit: int) -> Select[str, str | None, int]:
    """The entries most often marked Not helpful in the period: id, first question, presses."""
    presses = func.count().label("presses")
    first_question = (
        select(KBQuestionRow.text)
        .where(KBQuestionRow.entry_id == KBFeedbackRow.entry_id)
        .order_by(KBQuestionRow.position)
        .limit(1)
        .scalar_subquery()
    )
    return (
        kb_feedback(period, helpful=False)
        .select(KBFeedbackRow.entry_id, first_question, presses)
        .group_by(KBFeedbackRow.entry_id)
        .order_by(presses.desc(), KBFeedbackRow.entry_id)
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


def _events(period: Period, *conditions: ColumnElement[bool], intent: Expression | None = None) -> Rows:
    return Rows(
        EventRow.__table__.join(ConversationRow.__table__, EventRow.conversation_id == ConversationRow.id),
        (
            EventRow.timestamp >= period.since.timestamp(),
            EventRow.timestamp < period.until.timestamp(),
            *_on_channel(period),
            *conditions,
        ),
        EventRow.timestamp,
        epoch=True,
        keys=_by_channel if intent is None else {**_by_channel, "intent": intent},
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
