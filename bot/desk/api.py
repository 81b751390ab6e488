"""The agent API: list, claim, reply, note, transfer and resolve handoff tickets.

Every call needs `Authorization: Bearer <token>` (see `crowddesk desk agent token`), except
`POST /login` (password → a short-lived token for the web console) and `GET /stream`
(server-sent events; EventSource can't send headers, so it takes `?stream_ticket=`, a single-use
ticket from `POST /stream-ticket`: a token never goes into a URL). Sign-in, sign-out and account
management are in `accounts.py`, whose routes `router` includes.
No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
"""

import asyncio
import json
from collections.abc import AsyncIterator, Hashable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from crowddesk.bot.conversations.audit import READ_TICKET, AuditLog
from crowddesk.bot.conversations.outbox import OutboxRecord
from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES
from crowddesk.bot.conversations.store import ConversationStore, HandoffRecord
from crowddesk.bot.desk import accounts
from crowddesk.bot.desk.agents import AgentDirectory, AuthError
from crowddesk.bot.desk.auth import Agents, BearerToken, TicketWorker
from crowddesk.bot.desk.rating import rating_request
from crowddesk.bot.desk.stream_tickets import StreamTickets
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.desk.tickets import MAX_AGENT_TEXT, Note, TicketDesk, TicketNotFound
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.bot.web.services import provided
from crowddesk.errors import Invalid

STREAM_POLL_SECONDS = 1.0
STREAM_HEARTBEAT_POLLS = 15  # a comment line every ~15 s keeps proxies from closing the stream


class TextBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_AGENT_TEXT)


class TransferBody(BaseModel):
    to_agent: str | None = Field(default=None, description="agent id, or null to put it back in the queue")


class KBSuggestionBody(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)  # "   " is as empty as ""

    question: str = Field(min_length=1, max_length=MAX_AGENT_TEXT)
    answer: str = Field(min_length=1, max_length=MAX_AGENT_TEXT)


def transcript_messages(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The customer-visible lines of a conversation, each tagged customer, bot or agent."""
    return [
        {
            "role": "customer"
            if e["event"] == "user"
            else ("agent" if (e.get("metadata") or {}).get("agent_id") else "bot"),
            "text": e.get("text"),
            "timestamp": e["timestamp"],
            # The customer's text as sent, escaped, when the gateway had to repair it.
            **({"original_text": e["original_text"]} if e.get("original_text") else {}),
        }
        for e in events
        if e["event"] in ("user", "bot")
    ]


def open_tickets(conversations: ConversationStore) -> list[HandoffRecord]:
    """Queued and assigned tickets, soonest due first."""
    return [t for t in conversations.list_handoffs() if t.status in OPEN_TICKET_STATUSES]


def sse_event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n"


def ticket_view(ticket: HandoffRecord, now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    return {
        "id": ticket.id,
        "sender_id": ticket.sender_id,
        "status": ticket.status,
        "reason": ticket.reason,
        "priority": ticket.priority,
        "created_at": ticket.created_at.isoformat(),
        "due_at": ticket.due_at.isoformat(),
        "seconds_to_due": round((ticket.due_at - now).total_seconds()),
        "breached": ticket.breached(now),
        "sla_warned_at": ticket.sla_warned_at.isoformat() if ticket.sla_warned_at else None,
        "sla_breached_at": ticket.sla_breached_at.isoformat() if ticket.sla_breached_at else None,
        "assigned_to": ticket.assigned_to,
        "first_response_at": ticket.first_response_at.isoformat() if ticket.first_response_at else None,
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "rating": ticket.rating,
        "summary": ticket.packet.get("summary"),
        "channel": ticket.packet.get("channel"),
    }


def ticket_detail(
    ticket: HandoffRecord, events: list[dict[str, Any]], notes: list[Note], undelivered: list[OutboxRecord]
) -> dict[str, Any]:
    """A ticket with its packet, the customer-visible transcript, the internal notes and the
    messages the customer's platform refused."""
    return {
        **ticket_view(ticket),
        "packet": ticket.packet,
        "messages": transcript_messages(events),
        "notes": [{"author": n.author, "text": n.text, "created_at": n.created_at.isoformat()} for n in notes],
        "undelivered": [
            {"text": r.message.text, "error": r.last_error, "created_at": r.created_at.isoformat()} for r in undelivered
        ],
    }


router = APIRouter(prefix="/desk/api", tags=["agent desk"])
router.include_router(accounts.router)

Conversations = Annotated[ConversationStore, Depends(provided(ConversationStore))]
Tickets = Annotated[TicketDesk, Depends(provided(TicketDesk))]
StreamTicketsDep = Annotated[StreamTickets, Depends(provided(StreamTickets))]


async def existing(conversations: ConversationStore, ticket_id: str) -> HandoffRecord:
    """The ticket `ticket_id`; TicketNotFound if there is none."""
    ticket = await asyncio.to_thread(conversations.get_handoff, ticket_id)
    if ticket is None:
        raise TicketNotFound(f"no ticket {ticket_id!r}")
    return ticket


@router.post(
    "/stream-ticket",
    summary="A single-use ticket for `GET /stream`, valid for a minute (the stream URL never carries the token)",
)
async def new_stream_ticket(
    agent: TicketWorker, token: BearerToken, stream_tickets: StreamTicketsDep
) -> dict[str, Any]:
    issued = await asyncio.to_thread(stream_tickets.issue, token or "")
    return {"stream_ticket": issued, "expires_in": round(stream_tickets.lifetime.total_seconds())}


@router.get(
    "/stream",
    summary="Server-sent events: `queue` when open tickets change, "
    "`ticket` when the watched ticket changes, `signed-out` when the token stops working",
)
async def stream(
    request: Request,
    agents: Agents,
    conversations: Conversations,
    tickets: Tickets,
    stream_tickets: StreamTicketsDep,
    stream_ticket: str | None = Query(None, description="from `POST /stream-ticket`; used once"),
    ticket: str | None = Query(None, description="a ticket id to watch for new messages and notes"),
) -> StreamingResponse:
    if "token" in request.query_params:
        raise HTTPException(
            401,
            "a token in the URL is refused (URLs get logged); get a stream ticket from POST /desk/api/stream-ticket",
        )
    if not stream_ticket:
        raise HTTPException(401, "missing stream_ticket; get one from POST /desk/api/stream-ticket")
    try:
        # The stream keeps checking the token the ticket stands for, so a sign-out ends it.
        token_hash = await asyncio.to_thread(stream_tickets.redeem, stream_ticket)
        await asyncio.to_thread(agents.authenticate_token_hash, token_hash)
    except AuthError as exc:
        raise HTTPException(401, str(exc)) from exc
    return StreamingResponse(
        _stream_events(request, token_hash, ticket, agents, conversations, tickets),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )


async def _stream_events(
    request: Request,
    token_hash: str,
    watched: str | None,
    agents: AgentDirectory,
    conversations: ConversationStore,
    tickets: TicketDesk,
) -> AsyncIterator[str]:
    """The events of one stream, until the client goes or the token behind it stops working."""
    last_queue: Hashable = None
    last_ticket: Hashable = None
    polls = 0
    while not await request.is_disconnected():
        try:
            await asyncio.to_thread(agents.authenticate_token_hash, token_hash)
        except AuthError as exc:
            yield sse_event("signed-out", {"error": str(exc)})
            return
        views, queue_key = await asyncio.to_thread(_queue_state, conversations)
        if queue_key != last_queue:
            last_queue = queue_key
            yield sse_event("queue", views)
        if watched is not None:
            ticket_key = await asyncio.to_thread(_watched_state, conversations, tickets, watched)
            if ticket_key != last_ticket:
                last_ticket = ticket_key
                yield sse_event("ticket", {"id": watched})
        polls += 1
        if polls % STREAM_HEARTBEAT_POLLS == 0:
            yield ": heartbeat\n\n"
        await asyncio.sleep(STREAM_POLL_SECONDS)


def _queue_state(conversations: ConversationStore) -> tuple[list[dict[str, Any]], Hashable]:
    """The open tickets' views, and a key that changes whenever the console should redraw them."""
    found = open_tickets(conversations)
    # The SLA monitor's warning and breach flags are part of the key, so they reach the console
    # as soon as they are written.
    return [ticket_view(t) for t in found], tuple(
        (t.id, t.status, t.assigned_to, t.sla_warned_at, t.sla_breached_at) for t in found
    )


def _watched_state(conversations: ConversationStore, tickets: TicketDesk, ticket_id: str) -> Hashable:
    """A key that changes whenever the watched ticket gets a message, a note or a new owner."""
    record = conversations.get_handoff(ticket_id)
    if record is None:
        return None
    messages = transcript_messages(conversations.events(record.sender_id))
    notes, undelivered = tickets.notes(ticket_id), tickets.undelivered(record)
    return record.status, record.assigned_to, len(messages), len(notes), len(undelivered)


@router.get("/tickets", summary="Tickets, most urgent (soonest SLA due) first")
async def list_tickets(
    agent: TicketWorker,
    conversations: Conversations,
    status: Literal["open", "queued", "assigned", "resolved"] = Query("open"),
) -> list[dict[str, Any]]:
    if status == "open":
        found = await asyncio.to_thread(open_tickets, conversations)
    else:
        found = await asyncio.to_thread(conversations.list_handoffs, status)
    return [ticket_view(t) for t in found]


@router.get("/tickets/{ticket_id}", summary="A ticket with its packet, live transcript and notes")
async def get_ticket(
    ticket_id: str,
    agent: TicketWorker,
    conversations: Conversations,
    tickets: Tickets,
    audit: Annotated[AuditLog, Depends(provided(AuditLog))],
) -> dict[str, Any]:
    ticket = await existing(conversations, ticket_id)
    events = await asyncio.to_thread(conversations.events, ticket.sender_id)
    notes = await asyncio.to_thread(tickets.notes, ticket_id)
    undelivered = await asyncio.to_thread(tickets.undelivered, ticket)
    # Opening a ticket shows its transcript: who read whose conversation goes to the audit log.
    await asyncio.to_thread(audit.record, agent.id, READ_TICKET, ticket.sender_id, f"ticket {ticket_id}")
    return ticket_detail(ticket, events, notes, undelivered)


@router.post("/tickets/{ticket_id}/claim", summary="Take the ticket; 409 if someone else has it")
async def claim(ticket_id: str, agent: TicketWorker, tickets: Tickets) -> dict[str, Any]:
    return ticket_view(await asyncio.to_thread(tickets.claim, ticket_id, agent))


@router.post("/tickets/{ticket_id}/reply", summary="Answer the customer on their channel")
async def reply(ticket_id: str, body: TextBody, agent: TicketWorker, tickets: Tickets) -> dict[str, Any]:
    sent = await asyncio.to_thread(tickets.reply, ticket_id, agent, body.text)
    return {"ticket": ticket_view(sent.ticket), "message": sent.event}


@router.post("/tickets/{ticket_id}/notes", summary="An internal note (never shown to the customer)")
async def note(ticket_id: str, body: TextBody, agent: TicketWorker, tickets: Tickets) -> dict[str, Any]:
    saved = await asyncio.to_thread(tickets.note, ticket_id, agent, body.text)
    return {"author": saved.author, "text": saved.text, "created_at": saved.created_at.isoformat()}


@router.post("/tickets/{ticket_id}/transfer", summary="To another agent, or back to the queue")
async def transfer(
    ticket_id: str, body: TransferBody, agent: TicketWorker, agents: Agents, tickets: Tickets
) -> dict[str, Any]:
    target = None
    if body.to_agent is not None:
        target = await asyncio.to_thread(agents.get, body.to_agent)
        if target is None or not target.can("agent"):
            raise Invalid(f"no agent {body.to_agent!r} who can work tickets")
    return ticket_view(await asyncio.to_thread(tickets.transfer, ticket_id, agent, target))


@router.post("/tickets/{ticket_id}/resolve", summary="Close; the bot takes over and asks for a rating")
async def resolve(
    ticket_id: str,
    agent: TicketWorker,
    conversations: Conversations,
    tickets: Tickets,
    renderer: Annotated[ResponseRenderer, Depends(provided(ResponseRenderer))],
) -> dict[str, Any]:
    ticket = await existing(conversations, ticket_id)
    closing = rating_request(renderer, ticket.sender_id)
    return ticket_view(await asyncio.to_thread(tickets.resolve, ticket_id, agent, closing=closing))


@router.post(
    "/tickets/{ticket_id}/kb-suggestion",
    summary="Propose a question and answer for the knowledge base (editors review it)",
)
async def kb_suggestion(
    ticket_id: str,
    body: KBSuggestionBody,
    agent: TicketWorker,
    conversations: Conversations,
    suggestions: Annotated[TicketSuggestions, Depends(provided(TicketSuggestions))],
) -> dict[str, Any]:
    await existing(conversations, ticket_id)
    suggestion = await asyncio.to_thread(suggestions.propose, ticket_id, [body.question], body.answer, agent.id)
    return {"id": suggestion.id, "status": suggestion.status, "created": True}
