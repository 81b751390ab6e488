"""The agent API: list, claim, reply, note, transfer and resolve handoff tickets.

Every call needs `Authorization: Bearer <token>` (see `crowddesk desk agent add`).
No `from __future__ import annotations` here: FastAPI reads the dependency annotations at run
time, and the ones declared inside `desk_router` are not module globals.
"""


import asyncio
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from crowddesk.bot.agents import Agent, AgentDirectory, AuthError
from crowddesk.bot.store import ConversationStore, HandoffRecord
from crowddesk.bot.tickets import MAX_AGENT_TEXT, TicketDesk

Closing = Any  # a callable giving the bot events to store when a ticket is resolved


class TextBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_AGENT_TEXT)


class TransferBody(BaseModel):
    to_agent: str | None = Field(default=None, description="agent id, or null to put it back in the queue")


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
        "assigned_to": ticket.assigned_to,
        "first_response_at": ticket.first_response_at.isoformat() if ticket.first_response_at else None,
        "resolved_at": ticket.resolved_at.isoformat() if ticket.resolved_at else None,
        "rating": ticket.rating,
        "summary": ticket.packet.get("summary"),
        "channel": ticket.packet.get("channel"),
    }


def desk_router(
    agents: AgentDirectory, tickets: TicketDesk, conversations: ConversationStore, closing: Closing,
) -> APIRouter:
    router = APIRouter(prefix="/desk/api", tags=["agent desk"])
    bearer = HTTPBearer(auto_error=False)

    async def current_agent(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> Agent:
        if credentials is None:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        try:
            agent = await asyncio.to_thread(agents.authenticate_token, credentials.credentials)
        except AuthError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
        if not agent.can("agent"):
            raise HTTPException(403, f"role {agent.role!r} can't work tickets")
        return agent

    AgentDep = Annotated[Agent, Depends(current_agent)]

    async def existing(ticket_id: str) -> HandoffRecord:
        ticket = await asyncio.to_thread(conversations.get_handoff, ticket_id)
        if ticket is None:
            raise HTTPException(404, f"no ticket {ticket_id!r}")
        return ticket

    @router.get("/tickets", summary="Tickets, most urgent (soonest SLA due) first")
    async def list_tickets(
        agent: AgentDep,
        status: Literal["open", "queued", "assigned", "resolved"] = Query("open"),
    ) -> list[dict[str, Any]]:
        found = await asyncio.to_thread(conversations.list_handoffs, None if status == "open" else status)
        if status == "open":
            found = [t for t in found if t.status in ("queued", "assigned")]
        return [ticket_view(t) for t in found]

    @router.get("/tickets/{ticket_id}", summary="A ticket with its packet, live transcript and notes")
    async def get_ticket(ticket_id: str, agent: AgentDep) -> dict[str, Any]:
        ticket = await existing(ticket_id)
        events = await asyncio.to_thread(conversations.events, ticket.sender_id)
        notes = await asyncio.to_thread(tickets.notes, ticket_id)
        return {
            **ticket_view(ticket),
            "packet": ticket.packet,
            "messages": [
                {"role": "customer" if e["event"] == "user" else
                 ("agent" if (e.get("metadata") or {}).get("agent_id") else "bot"),
                 "text": e.get("text"), "timestamp": e["timestamp"]}
                for e in events if e["event"] in ("user", "bot")
            ],
            "notes": [{"author": n.author, "text": n.text, "created_at": n.created_at.isoformat()}
                      for n in notes],
        }

    @router.post("/tickets/{ticket_id}/claim", summary="Take the ticket; 409 if someone else has it")
    async def claim(ticket_id: str, agent: AgentDep) -> dict[str, Any]:
        return ticket_view(await asyncio.to_thread(tickets.claim, ticket_id, agent))

    @router.post("/tickets/{ticket_id}/reply", summary="Answer the customer on their channel")
    async def reply(ticket_id: str, body: TextBody, agent: AgentDep) -> dict[str, Any]:
        sent = await asyncio.to_thread(tickets.reply, ticket_id, agent, body.text)
        return {"ticket": ticket_view(sent.ticket), "message": sent.event}

    @router.post("/tickets/{ticket_id}/notes", summary="An internal note (never shown to the customer)")
    async def note(ticket_id: str, body: TextBody, agent: AgentDep) -> dict[str, Any]:
        saved = await asyncio.to_thread(tickets.note, ticket_id, agent, body.text)
        return {"author": saved.author, "text": saved.text, "created_at": saved.created_at.isoformat()}

    @router.post("/tickets/{ticket_id}/transfer", summary="To another agent, or back to the queue")
    async def transfer(ticket_id: str, body: TransferBody, agent: AgentDep) -> dict[str, Any]:
        target = None
        if body.to_agent is not None:
            target = await asyncio.to_thread(agents.get, body.to_agent)
            if target is None or not target.can("agent"):
                raise HTTPException(422, f"no agent {body.to_agent!r} who can work tickets")
        return ticket_view(await asyncio.to_thread(tickets.transfer, ticket_id, agent, target))

    @router.post("/tickets/{ticket_id}/resolve", summary="Close; the bot takes over and asks for a rating")
    async def resolve(ticket_id: str, agent: AgentDep) -> dict[str, Any]:
        ticket = await existing(ticket_id)
        events = closing(ticket.sender_id)
        return ticket_view(await asyncio.to_thread(tickets.resolve, ticket_id, agent, closing=events))

    return router
