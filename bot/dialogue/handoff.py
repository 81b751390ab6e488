"""Handing a conversation to a human: the packet an agent sees and the SLA clock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from crowddesk.bot.conversations.store import NewHandoff
from crowddesk.bot.dialogue.policy import Decision, HandoffReason
from crowddesk.bot.project.config import SlaSettings
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.types import Parse

TRANSCRIPT_LIMIT = 50
SUMMARY_CHARS = 200
# Reasons that jump the queue: the bot already failed the customer, they are upset, the topic
# (fraud, a complaint) is one a person must handle, or a public post could go viral.
HIGH_PRIORITY_REASONS = frozenset(
    {HandoffReason.FAILED_TURNS, HandoffReason.FRUSTRATION, HandoffReason.ALWAYS_HUMAN, HandoffReason.PUBLIC_POST}
)


@dataclass(frozen=True)
class SlaTargets:
    """Minutes to the first human reply per channel and priority, as config.yml sets them.

    The defaults follow what customers expect on social channels (42% an answer within 60
    minutes, 24% within 30): 30 minutes on messaging channels, 60 elsewhere.
    """

    settings: SlaSettings = field(default_factory=SlaSettings)

    def minutes(self, channel: str, priority: str) -> float:
        """The target for a ticket from `channel`; high priority gets a fraction of it."""
        s = self.settings
        minutes = s.channel_minutes.get(channel) or (
            s.messaging_minutes if channel in s.messaging_channels else s.other_minutes
        )
        return minutes * s.high_priority_factor if priority == "high" else minutes

    def due_at(self, channel: str, priority: str, now: datetime) -> datetime:
        """When the first human reply is due for a ticket opened at `now`."""
        return now + timedelta(minutes=self.minutes(channel, priority))


def transcript(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What was said, oldest first: customer and bot lines only."""
    lines = [
        {
            "role": "customer" if e["event"] == "user" else "bot",
            "text": e.get("text") or "",
            "timestamp": e["timestamp"],
        }
        for e in events
        if e["event"] in ("user", "bot")
    ]
    return lines[-TRANSCRIPT_LIMIT:]


def build_handoff(
    *,
    sender_id: str,
    channel: str,
    parse: Parse,
    decision: Decision,
    candidates: Sequence[tuple[Candidate, float, KBEntry | None]],
    events: Sequence[dict[str, Any]],
    sla: SlaTargets,
    now: datetime | None = None,
) -> NewHandoff:
    """The ticket for an agent: everything the bot knew when it gave up."""
    now = now or datetime.now(UTC)
    reason = decision.handoff_reason or HandoffReason.LOW_CONFIDENCE
    priority = "high" if reason in HIGH_PRIORITY_REASONS or decision.priority_reasons else "normal"
    due_at = sla.due_at(channel, priority, now)
    packet: dict[str, Any] = {
        "sender_id": sender_id,
        "channel": channel,
        "reason": reason.value,
        "priority": priority,
        "created_at": now.isoformat(),
        "sla_due_at": due_at.isoformat(),
        "summary": _summary(parse, reason, decision.handoff_detail),
        "intent": {"name": parse.intent.name, "confidence": round(parse.intent.confidence, 4)},
        "entities": [e.as_rasa() for e in parse.entities],
        "kb_candidates": [
            {
                **c.as_dict(),
                "confidence": round(conf, 4),
                "source_url": entry.source_url if entry else "",
                "answer": entry.answer if entry else "",
            }
            for c, conf, entry in candidates
        ],
        "transcript": transcript(events),
    }
    if decision.priority_reasons:  # e.g. "frustrated", "12,400 followers" on a public post
        packet["priority_reasons"] = list(decision.priority_reasons)
    return NewHandoff(reason=reason.value, priority=priority, packet=packet, due_at=due_at)


def _summary(parse: Parse, reason: HandoffReason, detail: str) -> str:
    asked = parse.text if len(parse.text) <= SUMMARY_CHARS else parse.text[:SUMMARY_CHARS] + "…"
    why = reason.value.replace("_", " ") + (f": {detail}" if detail else "")
    return (
        f"Customer asked: {asked!r}. Bot's best guess: {parse.intent.name} "
        f"({parse.intent.confidence:.0%}). Handed off: {why}."
    )
