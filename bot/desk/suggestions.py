"""Suggestions filed from hand-off tickets: the exchange of a resolved ticket, or an agent's
explicit "propose as KB entry", into the knowledge base's review queue."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.bot.conversations.store import ConversationRow, EventRow, HandoffRow
from crowddesk.errors import NotFound, Rejected
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import KBSuggestionRow
from crowddesk.knowledge_base.suggestions import (
    Suggestion,
    Suggestions,
    add_suggestion,
)


class TicketSuggestions:
    """An agent's explicit proposals; reviewing them is `Suggestions`' job."""

    def __init__(self, engine: Engine, redactor: Redactor | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._suggestions = Suggestions(engine, redactor)
        self._redactor = redactor or Redactor()

    def propose(self, ticket_id: str, questions: list[str], answer: str, agent: str) -> Suggestion:
        """An agent's explicit "propose as KB entry" for a ticket."""
        questions = [q.strip() for q in questions if q.strip()]
        if not questions or not answer.strip():
            raise Rejected("a suggestion needs a question and an answer")
        with self._sessions.begin() as session:
            if session.get(HandoffRow, ticket_id) is None:
                raise NotFound(f"no ticket {ticket_id!r}")
            suggestion_id = add_suggestion(
                session, ticket_id, questions, answer.strip(), agent, self._redactor, _sender_of(session, ticket_id)
            )
        return self._suggestions.get(suggestion_id)


def propose_from_ticket(session: Session, ticket: HandoffRow, agent_id: str, redactor: Redactor) -> int | None:
    """In the transaction resolving `ticket`: suggest the customer's question(s) with the
    agent's replies as the answer, PII redacted (`redactor`: the project's patterns too).
    None when the agent never replied or a suggestion exists."""
    already = session.scalar(select(KBSuggestionRow.id).where(KBSuggestionRow.ticket_id == ticket.id))
    if already is not None:
        return None
    events = list(
        session.scalars(
            select(EventRow.data).where(EventRow.conversation_id == ticket.conversation_id).order_by(EventRow.seq)
        )
    )
    questions, replies = ticket_exchange(events, ticket.id, ticket.reason)
    if not questions or not replies:
        return None
    return add_suggestion(
        session, ticket.id, questions, "\n\n".join(replies), agent_id, redactor, _sender_of(session, ticket.id)
    )


def ticket_exchange(events: list[dict[str, Any]], ticket_id: str, reason: str) -> tuple[list[str], list[str]]:
    """(customer questions, agent replies) of one ticket: the message that was handed off and
    those the customer added before the first reply, then every reply the agents sent on it."""
    replies = [
        i
        for i, e in enumerate(events)
        if e["event"] == "bot" and (e.get("metadata") or {}).get("ticket_id") == ticket_id
    ]
    if not replies:
        return [], []
    handoff = max((i for i in range(replies[0]) if events[i]["event"] == "handoff"), default=None)
    if handoff is None:
        return [], []
    users = [i for i in range(replies[0]) if events[i]["event"] == "user"]
    trigger = max((i for i in users if i < handoff), default=None)
    if trigger is None:
        return [], []
    asked = [i for i in users if i >= trigger]
    if reason == "customer_request":
        # "Let me talk to a person" is why it was handed off; the question came just before it.
        asked = [i for i in users if i < trigger][-1:] + asked[1:]
    texts = [str(events[i].get("text") or "").strip() for i in asked]
    return [text for text in texts if text], [str(events[i].get("text") or "") for i in replies]


def _sender_of(session: Session, ticket_id: str) -> str | None:
    return session.scalar(
        select(ConversationRow.sender_id)
        .join(HandoffRow, HandoffRow.conversation_id == ConversationRow.id)
        .where(HandoffRow.id == ticket_id)
    )
