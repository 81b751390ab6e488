"""The handoff ticket lifecycle: queued → assigned (one agent) → resolved, back to the bot.

Every transition locks the ticket row, then the conversation row, and checks the state it
expects inside that transaction, so two agents can't both claim a ticket and a resolved ticket
can't take a reply. Messages for the customer (an agent's reply, the rating question on
resolve) are put in the outbox in that same transaction: stored means it will be delivered.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.bot.conversations.outbox import Outbox, OutboxRecord, bot_event_message
from crowddesk.bot.conversations.states import ConversationOwner, TicketStatus
from crowddesk.bot.conversations.store import (
    ConversationRow,
    EventRow,
    HandoffRecord,
    HandoffRow,
    TicketNoteRow,
    append_events,
    handoff_record,
)
from crowddesk.bot.desk.agents import Agent
from crowddesk.bot.desk.suggestions import propose_from_ticket
from crowddesk.connectors.base import ChannelConnector
from crowddesk.errors import Conflict, NotFound, Rejected
from crowddesk.knowledge_base.redaction import Redactor

MAX_AGENT_TEXT = 4000


class TicketNotFound(NotFound):
    """No ticket with the given id."""


class TicketConflict(Conflict):
    """The ticket's status or owner does not allow the change."""


@dataclass(frozen=True)
class Note:
    author: str
    text: str
    created_at: datetime


@dataclass(frozen=True)
class AgentReply:
    """An agent's message, stored in the conversation; the channel delivers it to `sender_id`."""

    ticket: HandoffRecord
    channel: str
    event: dict[str, Any]


def _check_text(text: str) -> str:
    text = text.strip()
    if not text:
        raise Rejected("text is empty")
    if len(text) > MAX_AGENT_TEXT:
        raise Rejected(f"text is {len(text)} characters; the limit is {MAX_AGENT_TEXT}")
    return text


class TicketDesk:
    """Ticket transitions, each one transaction; `outbox` receives what the customer must see."""

    def __init__(
        self,
        engine: Engine,
        outbox: Outbox | None = None,
        redactor: Redactor | None = None,
        channels: Mapping[str, ChannelConnector] | None = None,
    ) -> None:
        """`channels` are asked whether an agent's reply can still reach the customer (a closed
        reply window) before it is stored; a channel not among them is assumed to take it."""
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._outbox = outbox or Outbox(engine)
        self._redactor = redactor or Redactor()  # for suggestions made from resolved tickets
        self._channels = channels or {}

    def _tell_customer(
        self, session: Session, conversation: ConversationRow, events: list[dict[str, Any]], *, refusable: bool = False
    ) -> None:
        """Stage the `bot` events among `events` for delivery. `refusable`: raise `TicketConflict`
        instead when the channel says the message cannot reach the customer any more."""
        wrote_at = session.scalar(
            select(func.max(EventRow.timestamp)).where(
                EventRow.conversation_id == conversation.id, EventRow.type == "user"
            )
        )
        messages = [bot_event_message(conversation.sender_id, e, wrote_at) for e in events if e["event"] == "bot"]
        channel = self._channels.get(conversation.channel)
        if refusable and channel is not None:
            for message in messages:
                reason = channel.refusal(message, time.time())
                if reason is not None:
                    raise TicketConflict(reason)
        self._outbox.stage(session, conversation.channel, messages)

    def _locked(self, session: Session, ticket_id: str) -> tuple[HandoffRow, ConversationRow]:
        ticket = session.scalars(select(HandoffRow).where(HandoffRow.id == ticket_id).with_for_update()).one_or_none()
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id!r}")
        conversation = session.scalars(
            select(ConversationRow).where(ConversationRow.id == ticket.conversation_id).with_for_update()
        ).one()
        return ticket, conversation

    def claim(self, ticket_id: str, agent: Agent) -> HandoffRecord:
        with self._sessions.begin() as session:
            ticket, conversation = self._locked(session, ticket_id)
            if ticket.status == TicketStatus.ASSIGNED and ticket.assigned_to == agent.id:
                return handoff_record(ticket, conversation.sender_id)
            if ticket.status != TicketStatus.QUEUED:
                owner = f" by {ticket.assigned_to}" if ticket.status == TicketStatus.ASSIGNED else ""
                raise TicketConflict(f"ticket {ticket_id} is already {ticket.status}{owner}")
            now = datetime.now(UTC)
            ticket.status, ticket.assigned_to, ticket.assigned_at = TicketStatus.ASSIGNED, agent.id, now
            conversation.owner = ConversationOwner.ASSIGNED
            append_events(
                session,
                conversation.id,
                [
                    {
                        "event": "handoff_assigned",
                        "timestamp": time.time(),
                        "ticket_id": ticket.id,
                        "agent_id": agent.id,
                    },
                ],
            )
            return handoff_record(ticket, conversation.sender_id)

    def reply(self, ticket_id: str, agent: Agent, text: str) -> AgentReply:
        text = _check_text(text)
        with self._sessions.begin() as session:
            ticket, conversation = self._locked(session, ticket_id)
            self._require_owner(ticket, agent)
            ticket.first_response_at = ticket.first_response_at or datetime.now(UTC)
            event = {
                "event": "bot",
                "timestamp": time.time(),
                "text": text,
                "data": {},
                "metadata": {"agent_id": agent.id, "agent_name": agent.name, "ticket_id": ticket.id},
            }
            self._tell_customer(session, conversation, [event], refusable=True)
            append_events(session, conversation.id, [event])
            return AgentReply(handoff_record(ticket, conversation.sender_id), conversation.channel, event)

    def note(self, ticket_id: str, agent: Agent, text: str) -> Note:
        text = _check_text(text)
        with self._sessions.begin() as session:
            self._locked(session, ticket_id)
            row = TicketNoteRow(handoff_id=ticket_id, author=agent.id, text=text, created_at=datetime.now(UTC))
            session.add(row)
            return Note(row.author, row.text, row.created_at)

    def undelivered(self, ticket: HandoffRecord) -> list[OutboxRecord]:
        """Messages to the ticket's customer their platform refused for good (a closed reply
        window, a blocked bot), for the agent to see they never arrived."""
        return self._outbox.failed_to(ticket.sender_id)

    def notes(self, ticket_id: str) -> list[Note]:
        with self._sessions() as session:
            rows = session.scalars(
                select(TicketNoteRow).where(TicketNoteRow.handoff_id == ticket_id).order_by(TicketNoteRow.id)
            )
            return [Note(r.author, r.text, r.created_at) for r in rows]

    def transfer(self, ticket_id: str, agent: Agent, to_agent: Agent | None) -> HandoffRecord:
        """Hand the ticket to another agent, or back to the queue when `to_agent` is None."""
        with self._sessions.begin() as session:
            ticket, conversation = self._locked(session, ticket_id)
            self._require_owner(ticket, agent)
            if to_agent is None:
                ticket.status, ticket.assigned_to, ticket.assigned_at = TicketStatus.QUEUED, None, None
                conversation.owner = ConversationOwner.QUEUED
            else:
                ticket.assigned_to, ticket.assigned_at = to_agent.id, datetime.now(UTC)
            append_events(
                session,
                conversation.id,
                [
                    {
                        "event": "handoff_transferred",
                        "timestamp": time.time(),
                        "ticket_id": ticket.id,
                        "from_agent": agent.id,
                        "to_agent": to_agent.id if to_agent else None,
                    },
                ],
            )
            return handoff_record(ticket, conversation.sender_id)

    def release(self, agent: Agent) -> list[HandoffRecord]:
        """Put every ticket assigned to `agent` back in the queue (their account was disabled)."""
        with self._sessions() as session:
            assigned = session.scalars(
                select(HandoffRow.id).where(
                    HandoffRow.status == TicketStatus.ASSIGNED, HandoffRow.assigned_to == agent.id
                )
            ).all()
        released = []
        for ticket_id in assigned:
            try:
                released.append(self.transfer(ticket_id, agent, None))
            except TicketConflict:
                continue  # resolved or moved on meanwhile: no longer theirs to give back
        return released

    def resolve(self, ticket_id: str, agent: Agent, *, closing: list[dict[str, Any]] | None = None) -> HandoffRecord:
        """Close the ticket and give the conversation back to the bot; `closing` are bot events
        (e.g. the rating question) stored in the same transaction."""
        with self._sessions.begin() as session:
            ticket, conversation = self._locked(session, ticket_id)
            self._require_owner(ticket, agent)
            ticket.status, ticket.resolved_at = TicketStatus.RESOLVED, datetime.now(UTC)
            conversation.owner, conversation.failed_turns = ConversationOwner.BOT, 0
            if ticket.first_response_at is not None:
                # What a human answered, for the KB.
                propose_from_ticket(session, ticket, agent.id, self._redactor)
            append_events(
                session,
                conversation.id,
                [
                    {
                        "event": "handoff_resolved",
                        "timestamp": time.time(),
                        "ticket_id": ticket.id,
                        "agent_id": agent.id,
                    },
                    *(closing or []),
                ],
            )
            self._tell_customer(session, conversation, closing or [])
            return handoff_record(ticket, conversation.sender_id)

    def rate(self, sender_id: str, rating: int) -> HandoffRecord | None:
        """Store the customer's rating on their most recently resolved ticket."""
        with self._sessions.begin() as session:
            ticket = session.scalars(
                select(HandoffRow)
                .join(ConversationRow, HandoffRow.conversation_id == ConversationRow.id)
                .where(ConversationRow.sender_id == sender_id, HandoffRow.status == TicketStatus.RESOLVED)
                .order_by(HandoffRow.resolved_at.desc())
                .limit(1)
                .with_for_update()
            ).one_or_none()
            if ticket is None:
                return None
            ticket.rating = rating
            return handoff_record(ticket, sender_id)

    @staticmethod
    def _require_owner(ticket: HandoffRow, agent: Agent) -> None:
        if ticket.status == TicketStatus.RESOLVED:
            raise TicketConflict(f"ticket {ticket.id} is resolved")
        if ticket.status != TicketStatus.ASSIGNED:
            raise TicketConflict(f"ticket {ticket.id} is queued; claim it first")
        if ticket.assigned_to != agent.id and agent.role != "admin":
            raise TicketConflict(f"ticket {ticket.id} is assigned to {ticket.assigned_to}")
