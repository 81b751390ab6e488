"""What each `crowddesk desk` verb does, on the project's database; bot/cli/desk.py only parses.

Kept apart from the parser so that `crowddesk --help` need not import SQLAlchemy and FastAPI.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from crowddesk.bot.cli.output import refuse, say
from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES, TicketStatus
from crowddesk.bot.conversations.store import ConversationStore, HandoffRecord
from crowddesk.bot.desk.agents import Agent, AgentDirectory, UnknownAgent
from crowddesk.bot.desk.api import open_tickets, ticket_detail, ticket_view
from crowddesk.bot.desk.rating import rating_request
from crowddesk.bot.desk.tickets import TicketDesk, TicketNotFound
from crowddesk.bot.project.loading import Project, load_project
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.bot.server.database import open_database
from crowddesk.errors import CrowdDeskError, Forbidden, Rejected

# The desk console says the same (bot/static/desk.js) when no KB answer had enough evidence.
NO_EVIDENT_ANSWER = "No knowledge-base answer has enough evidence for this question."


@dataclass
class Desk:
    """What the verbs work with, all on one database."""

    project: Project
    agents: AgentDirectory
    tickets: TicketDesk
    conversations: ConversationStore

    def acting(self, agent_id: str) -> Agent:
        """The agent named by `--as`, who must be active and allowed to work tickets."""
        agent = self.agents.get(agent_id)
        if agent is None:
            raise UnknownAgent(f"no active agent {agent_id!r} (see `crowddesk desk agent list`)")
        if not agent.can("agent"):
            raise Forbidden(f"agent {agent_id!r} has role {agent.role!r}, which can't work tickets")
        return agent

    def ticket(self, ticket_id: str) -> HandoffRecord:
        """The ticket with this id, of any status."""
        ticket = self.conversations.get_handoff(ticket_id)
        if ticket is None:
            raise TicketNotFound(f"no ticket {ticket_id!r} (see `crowddesk desk tickets`)")
        return ticket


Verb = Callable[[Desk, argparse.Namespace], int]


# ---- agents ----------------------------------------------------------------------------------


def agent_add(desk: Desk, args: argparse.Namespace) -> int:
    """`desk agent add`: a new account, with a password from stdin if asked."""
    password = _read_password() if args.password_stdin else None
    agent = desk.agents.add(args.agent, args.name or args.agent, args.role, password)
    say(f"Added {agent.role} {agent.id} ({agent.name}).")
    if password is None:
        say(f"No password, so no console sign-in; for the API: crowddesk desk agent token {agent.id}")
    return 0


def _read_password() -> str:
    # Like `docker login --password-stdin`: the whole input, minus the newline `echo` adds.
    password = sys.stdin.read().rstrip("\r\n")
    if not password:
        raise Rejected("--password-stdin: no password on standard input")
    return password


def agent_list(desk: Desk, args: argparse.Namespace) -> int:
    """`desk agent list`: accounts by id."""
    agents = desk.agents.list(include_disabled=args.all)
    for agent in agents:
        status = "" if agent.active else "  disabled"
        say(f"{agent.id:24}  {agent.role:6}  {agent.name}{status}")
    say(f"{len(agents)} agent(s)")
    return 0


def agent_token(desk: Desk, args: argparse.Namespace) -> int:
    """`desk agent token`: a new API token, printed once."""
    token = desk.agents.issue_token(args.agent, days=args.days)
    expires = (datetime.now(UTC) + timedelta(days=args.days)).date().isoformat()
    # The token alone on stdout, so `TOKEN=$(crowddesk desk agent token ana)` works.
    print(f"Token for {args.agent}, valid until {expires}; it is shown only this once.", file=sys.stderr)
    say(token)
    return 0


def agent_revoke_tokens(desk: Desk, args: argparse.Namespace) -> int:
    """`desk agent revoke-tokens`: sign the agent out everywhere."""
    revoked = desk.agents.revoke_tokens(args.agent)
    say(f"Revoked {revoked} token(s) of {args.agent}; their console sessions end within seconds.")
    return 0


def agent_disable(desk: Desk, args: argparse.Namespace) -> int:
    """`desk agent disable`: no more sign-ins; the agent's tickets go back to the queue."""
    agent = desk.agents.disable(args.agent)
    released = desk.tickets.release(agent)
    say(f"Disabled {agent.id}: every token revoked, no more sign-ins.")
    if released:
        say(f"Back in the queue: {', '.join(t.id for t in released)}")
    return 0


# ---- tickets ---------------------------------------------------------------------------------


def list_tickets(desk: Desk, args: argparse.Namespace) -> int:
    """`desk tickets`: most urgent first, with the time left to the SLA."""
    found = open_tickets(desk.conversations) if args.status is None else desk.conversations.list_handoffs(args.status)
    now = datetime.now(UTC)
    for ticket in found:
        view = ticket_view(ticket, now)
        say(
            f"{ticket.id}  {ticket.status:8}  {_time_left(view):>14}  {ticket.assigned_to or '-':16}  "
            f"{view['channel'] or '-':8}  {ticket.reason:16}  {(view['summary'] or '')[:60]}"
        )
    which = args.status or " or ".join(OPEN_TICKET_STATUSES)
    say(f"{len(found)} {which} ticket(s), most urgent first")
    return 0


def _time_left(view: dict[str, Any]) -> str:
    if view["status"] == TicketStatus.RESOLVED:
        return f"rated {view['rating']}" if view["rating"] is not None else "resolved"
    seconds = view["seconds_to_due"]
    minutes, rest = divmod(abs(seconds), 60)
    clock = f"{minutes:02d}:{rest:02d}"
    return f"{clock} left" if seconds >= 0 else f"{clock} overdue"


def show(desk: Desk, args: argparse.Namespace) -> int:
    """`desk show`: the packet, transcript and notes of one ticket."""
    ticket = desk.ticket(args.ticket)
    detail = ticket_detail(
        ticket,
        desk.conversations.events(ticket.sender_id),
        desk.tickets.notes(ticket.id),
        desk.tickets.undelivered(ticket),
    )
    if args.json:
        say(json.dumps(detail, indent=2, ensure_ascii=False))
        return 0
    conversation = desk.conversations.get(ticket.sender_id)
    for line in _detail_lines(detail, conversation.channel if conversation else "?"):
        say(line)
    return 0


def _detail_lines(detail: dict[str, Any], channel: str) -> list[str]:
    packet = detail["packet"]
    owner = f"assigned to {detail['assigned_to']}" if detail["assigned_to"] else detail["status"]
    intent = packet.get("intent") or {}
    lines = [
        f"Ticket {detail['id']}: {owner}, {detail['reason']}, {detail['priority']} priority, {_time_left(detail)}",
        f"Customer {detail['sender_id']} on {channel}",
        f"Summary: {detail['summary']}",
        f"Intent: {intent.get('name')} ({intent.get('confidence', 0):.0%})" if intent else "Intent: none",
        "Entities: " + (", ".join(f"{e['entity']}={e['value']}" for e in packet.get("entities", [])) or "none"),
        "Answers the bot considered:",
        *(
            f"  {c.get('title') or c['id']} ({c.get('confidence', 0):.0%}) {c.get('source_url', '')}".rstrip()
            for c in packet.get("kb_candidates", [])
        ),
        *([] if packet.get("kb_candidates") else [f"  {NO_EVIDENT_ANSWER}"]),
        "Transcript:",
        *(f"  {_clock(m['timestamp'])} {m['role']:8} {m['text']}" for m in detail["messages"]),
    ]
    if detail["undelivered"]:
        lines += ["Not delivered:", *(f"  {u['text']} ({u['error']})" for u in detail["undelivered"])]
    if detail["notes"]:
        lines += ["Internal notes:", *(f"  {n['author']}: {n['text']}" for n in detail["notes"])]
    return lines


def _clock(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%H:%M")


def claim(desk: Desk, args: argparse.Namespace) -> int:
    """`desk claim`: take a queued ticket."""
    ticket = desk.tickets.claim(args.ticket, desk.acting(args.agent))
    say(f"{ticket.assigned_to} owns ticket {ticket.id}; the bot stays silent until it is resolved.")
    return 0


def reply(desk: Desk, args: argparse.Namespace) -> int:
    """`desk reply`: answer the customer (delivered by the server's outbox)."""
    sent = desk.tickets.reply(args.ticket, desk.acting(args.agent), args.text)
    say(f"Reply stored for {sent.ticket.sender_id} on {sent.channel}; the server delivers it.")
    return 0


def note(desk: Desk, args: argparse.Namespace) -> int:
    """`desk note`: an internal note."""
    desk.tickets.note(args.ticket, desk.acting(args.agent), args.text)
    say(f"Note added to ticket {args.ticket} (never shown to the customer).")
    return 0


def transfer(desk: Desk, args: argparse.Namespace) -> int:
    """`desk transfer`: to another agent, or back to the queue."""
    agent = desk.acting(args.agent)
    target = desk.acting(args.to) if args.to else None
    ticket = desk.tickets.transfer(args.ticket, agent, target)
    say(f"Ticket {ticket.id} is now {'with ' + target.id if target else 'back in the queue'}.")
    return 0


def resolve(desk: Desk, args: argparse.Namespace) -> int:
    """`desk resolve`: close the ticket; the bot asks for a rating."""
    agent = desk.acting(args.agent)
    ticket = desk.ticket(args.ticket)
    closing = rating_request(ResponseRenderer(desk.project.domain), ticket.sender_id)
    desk.tickets.resolve(ticket.id, agent, closing=closing)
    asked = "; the bot asks the customer for a rating" if closing else ""
    say(f"Resolved ticket {ticket.id}: the conversation is back with the bot{asked}.")
    return 0


VERBS: dict[str, Verb] = {
    "agent add": agent_add,
    "agent list": agent_list,
    "agent token": agent_token,
    "agent revoke-tokens": agent_revoke_tokens,
    "agent disable": agent_disable,
    "tickets": list_tickets,
    "show": show,
    "claim": claim,
    "reply": reply,
    "note": note,
    "transfer": transfer,
    "resolve": resolve,
}


def run_verb(args: argparse.Namespace) -> int:
    """Run the verb `args.desk_verb` names on the project's database; errors are one line on stderr."""
    project = load_project(args.project)
    database = open_database(project, args.database_url)
    # Suggestions made when a ticket is resolved here are redacted with the project's patterns
    # too, as when the server resolves it.
    tickets = TicketDesk(database, redactor=project.config.retriever.ingestion.redactor())
    desk = Desk(project, AgentDirectory(database), tickets, ConversationStore(database))
    verb = VERBS[args.desk_verb]
    try:
        return verb(desk, args)
    except CrowdDeskError as exc:
        return refuse(exc)
    finally:
        database.dispose()
