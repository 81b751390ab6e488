"""Handing a conversation to a human: the packet an agent sees and the SLA clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Sequence

from crowddesk.bot.policy import Decision, HandoffReason
from crowddesk.bot.store import NewHandoff
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.types import Parse

# Channels where customers expect chat-speed replies (42% expect an answer within 60 minutes,
# 24% within 30); everything else gets the longer default target.
MESSAGING_CHANNELS = frozenset({"telegram", "slack", "webchat", "whatsapp", "messenger", "shell"})
TRANSCRIPT_LIMIT = 50
SUMMARY_CHARS = 200


@dataclass(frozen=True)
class SlaTargets:
    """Minutes to the first human reply."""

    messaging_minutes: int = 30
    other_minutes: int = 60
    high_priority_factor: float = 0.5
    minutes_per_ticket: int = 5

    def due_at(self, channel: str, priority: str, now: datetime) -> datetime:
        minutes = self.messaging_minutes if channel in MESSAGING_CHANNELS else self.other_minutes
        if priority == "high":
            minutes *= self.high_priority_factor
        return now + timedelta(minutes=minutes)

    def expected_wait_minutes(self, channel: str, queued_ahead: int) -> int:
        """An estimate from the live queue: each ticket ahead takes about one handling slot,
        never promised beyond the channel's SLA target."""
        target = self.messaging_minutes if channel in MESSAGING_CHANNELS else self.other_minutes
        return max(1, min(target, (queued_ahead + 1) * self.minutes_per_ticket))


def transcript(events: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """What was said, oldest first: customer and bot lines only."""
    lines = [
        {"role": "customer" if e["event"] == "user" else "bot", "text": e.get("text") or "",
         "timestamp": e["timestamp"]}
        for e in events if e["event"] in ("user", "bot")
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
    now = now or datetime.now(timezone.utc)
    reason = decision.handoff_reason or HandoffReason.LOW_CONFIDENCE
    priority = "high" if reason is HandoffReason.FAILED_TURNS else "normal"
    due_at = sla.due_at(channel, priority, now)
    packet = {
        "sender_id": sender_id,
        "channel": channel,
        "reason": reason.value,
        "priority": priority,
        "created_at": now.isoformat(),
        "sla_due_at": due_at.isoformat(),
        "summary": _summary(parse, reason),
        "intent": {"name": parse.intent.name, "confidence": round(parse.intent.confidence, 4)},
        "entities": [e.as_rasa() for e in parse.entities],
        "kb_candidates": [
            {**c.as_dict(), "confidence": round(conf, 4),
             "source_url": entry.source_url if entry else "",
             "answer": entry.answer if entry else ""}
            for c, conf, entry in candidates
        ],
        "transcript": transcript(events),
    }
    return NewHandoff(reason=reason.value, priority=priority, packet=packet, due_at=due_at)


def _summary(parse: Parse, reason: HandoffReason) -> str:
    asked = parse.text if len(parse.text) <= SUMMARY_CHARS else parse.text[:SUMMARY_CHARS] + "…"
    return (
        f"Customer asked: {asked!r}. Bot's best guess: {parse.intent.name} "
        f"({parse.intent.confidence:.0%}). Handed off: {reason.value.replace('_', ' ')}."
    )
