"""A handoff ticket as a Slack message: the packet in Block Kit, with the buttons its status allows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from crowddesk.bot.conversations.states import TicketStatus
from crowddesk.bot.conversations.store import HandoffRecord
from crowddesk.connectors.slack import CHANNEL_NAME, parse_sender
from crowddesk.connectors.slack_blocks import Block, actions, button, escape, mrkdwn, plain, sections

CLAIM_ACTION = "crowddesk_desk_claim"
RESOLVE_ACTION = "crowddesk_desk_resolve"
SLACK_AGENT_PREFIX = "slack-"
"""Agents created for Slack users are `slack-<user id>`; see `bot.desk.slack.slack_agent`."""
LAST_CUSTOMER_MESSAGES = 3
KB_CANDIDATES_SHOWN = 3
HEADER_CHARS = 150


def agent_mention(agent_id: str) -> str:
    """A Slack mention for agents who work from Slack, the agent id for everyone else."""
    if agent_id.startswith(SLACK_AGENT_PREFIX):
        return f"<@{agent_id.removeprefix(SLACK_AGENT_PREFIX)}>"
    return f"`{escape(agent_id)}`"


def customer_mention(ticket: HandoffRecord) -> str:
    channel = str(ticket.packet.get("channel") or "?")
    if channel == CHANNEL_NAME:
        return f"<@{parse_sender(ticket.sender_id)[1]}> on Slack"
    return f"`{escape(ticket.sender_id)}` on {escape(channel)}"


def slack_date(moment: datetime) -> str:
    """A time every reader sees in their own time zone (Slack's date formatting)."""
    return f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} {{time}}|{moment.isoformat()}>"


def status_line(ticket: HandoffRecord) -> str:
    who = agent_mention(ticket.assigned_to) if ticket.assigned_to else "nobody"
    lines: dict[str, str] = {
        TicketStatus.QUEUED: "Waiting for an agent",
        TicketStatus.ASSIGNED: f"Claimed by {who}",
        TicketStatus.RESOLVED: f"Resolved by {who}",
    }
    return lines.get(ticket.status, ticket.status)


def _customer_lines(packet: dict[str, Any]) -> str:
    said = [line["text"] for line in packet.get("transcript") or [] if line.get("role") == "customer"]
    return "\n".join(f"> {escape(text)}" for text in said[-LAST_CUSTOMER_MESSAGES:]) or "_none_"


def _candidate_lines(packet: dict[str, Any]) -> str:
    lines = []
    for candidate in (packet.get("kb_candidates") or [])[:KB_CANDIDATES_SHOWN]:
        line = (
            f"• {escape(str(candidate.get('title') or candidate.get('id')))} — "
            f"{float(candidate.get('confidence') or 0):.0%} (`{escape(str(candidate.get('id')))}`)"
        )
        if candidate.get("source_url"):
            line += f" <{candidate['source_url']}|source>"
        lines.append(line)
    return "\n".join(lines) or "_none_"


def render_ticket(ticket: HandoffRecord) -> tuple[str, list[Block]]:
    """The notification text and blocks of the desk message for `ticket` as it stands now."""
    packet = ticket.packet
    reason = ticket.reason.replace("_", " ")
    text = f"Handoff ({reason}, {ticket.priority} priority): {packet.get('summary') or ''}"
    fields = [
        ("Customer", customer_mention(ticket)),
        ("Status", status_line(ticket)),
        ("Reason", escape(reason)),
        ("Priority", escape(ticket.priority)),
        ("SLA due", slack_date(ticket.due_at)),
        ("Ticket", f"`{ticket.id}`"),
    ]
    blocks: list[Block] = [
        {"type": "header", "text": plain(f"Handoff: {reason} · {ticket.priority} priority", HEADER_CHARS)},
        {"type": "section", "fields": [mrkdwn(f"*{name}*\n{value}") for name, value in fields]},
        *sections(f"*Summary*\n{escape(str(packet.get('summary') or ''))}"),
        *sections(f"*Last customer messages*\n{_customer_lines(packet)}"),
        *sections(f"*Knowledge base candidates*\n{_candidate_lines(packet)}"),
    ]
    if ticket.status == TicketStatus.QUEUED:
        blocks.extend(actions([button("Claim", CLAIM_ACTION, ticket.id, "primary")]))
    elif ticket.status == TicketStatus.ASSIGNED:
        blocks.extend(actions([button("Resolve", RESOLVE_ACTION, ticket.id, "danger")]))
    hint = (
        "Claim it, then reply in this thread to answer the customer."
        if ticket.status != TicketStatus.RESOLVED
        else "Resolved: the conversation is back with the bot."
    )
    blocks.append({"type": "context", "elements": [mrkdwn(hint)]})
    return escape(text), blocks
