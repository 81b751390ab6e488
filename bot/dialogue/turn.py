"""One turn in the making: the events, replies and writes a message produces, gathered before
they are stored together in one transaction."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.store import ConversationRecord, NewHandoff
from crowddesk.bot.dialogue.policy import Decision
from crowddesk.bot.project.responses import ResponseRenderer, bot_event_data
from crowddesk.connectors.types import InboundMessage, OutboundMessage

History = list[dict[str, Any]]
# The policy named on the actions of the support decisions (answer from the KB, clarify, hand off);
# any other policy on an action event is the project's dialogue (rules, stories, learned).
SUPPORT_POLICY = "SupportPolicy"


@dataclass
class Turn:
    """What one message produced so far, and what the conversation was before it."""

    message: InboundMessage
    record: ConversationRecord | None
    slots: dict[str, Any]
    failed_turns: int
    history: History
    """The stored events before this turn, oldest first (none while a person owns the conversation)."""
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: list[OutboundMessage] = field(default_factory=list)
    handoff: NewHandoff | None = None
    outbox: Outbox | None = None
    """Where the replies are queued for delivery, in the turn's transaction (None: returned only)."""
    writes: list[Callable[[Session], Any]] = field(default_factory=list)
    """Other writes that commit with the turn or not at all (KB usage counts, answer feedback)."""
    initial_slots: dict[str, Any] = field(default_factory=dict)
    """The domain's initial slot values: what a restart or `AllSlotsReset` goes back to."""

    @property
    def sender_id(self) -> str:
        return self.message.sender_id

    @property
    def channel(self) -> str:
        return self.message.channel

    def transcript(self) -> History:
        """Stored events followed by this turn's: what an action server or an agent reads."""
        return [*self.history, *self.events]

    def render(self, renderer: ResponseRenderer, name: str, **values: Any) -> OutboundMessage:
        """Response `name` for this conversation: its variation chosen for this channel and these
        slots, its placeholders filled from them and `values`."""
        return renderer.render(name, self.sender_id, self.slots, channel=self.channel, **values)

    def add(self, event: str, **data: Any) -> None:
        self.apply({"event": event, **data})

    def apply(self, event: dict[str, Any]) -> None:
        """Record `event` (Rasa's JSON shape), keeping `slots` in step with the slot events."""
        event = {**event, "timestamp": event.get("timestamp") or time.time()}
        if event["event"] == "slot" and isinstance(event.get("name"), str):
            self.slots[event["name"]] = event.get("value")
        elif event["event"] in ("reset_slots", "restart"):
            self.slots = dict.fromkeys(self.slots) | self.initial_slots
        self.events.append(event)

    def add_user(self, parse_data: dict[str, Any] | None) -> None:
        """The customer's message as understood (`parse_data`; None when no one parsed it)."""
        message = self.message
        original = {"original_text": message.original_text} if message.original_text is not None else {}
        self.add(
            "user",
            text=message.text,
            input_channel=message.channel,
            message_id=message.message_id,
            parse_data=parse_data,
            **original,  # the text as sent, escaped, when the gateway had to repair it (for agents)
        )

    def add_action(
        self, name: str, policy: str | None = None, confidence: float = 1.0, *, hide_rule_turn: bool = False
    ) -> None:
        """Record that the bot ran `name`, chosen by `policy` with `confidence`. `hide_rule_turn`:
        a rule no story shows chose it, so the story-based policies look past this turn."""
        chosen = {} if policy is None else {"policy": policy, "confidence": round(confidence, 4)}
        self.add("action", name=name, **chosen, **({"hide_rule_turn": True} if hide_rule_turn else {}))

    def utter(self, action: str, decision: Decision, reply: OutboundMessage) -> None:
        """Send `reply` as the bot action `action`, chosen with `decision`'s confidence."""
        self.add_action(action, SUPPORT_POLICY, decision.confidence)
        self.say(reply, action)

    def say(self, reply: OutboundMessage, utter_action: str | None = None) -> None:
        """Send `reply` within the action that is running (a form's question, an action's message)."""
        metadata = {"utter_action": utter_action} if utter_action else {}
        self.add("bot", text=reply.text, data=bot_event_data(reply), metadata=metadata)
        self.replies.append(reply)


def last_bot_action(events: History) -> str | None:
    """The name of the last action other than listening, if any."""
    for event in reversed(events):
        if event["event"] == "action" and event.get("name") != "action_listen":
            return str(event.get("name"))
    return None
