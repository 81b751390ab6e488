"""Custom actions: the tracker a rasa_sdk action server expects, and what its answer adds to the
turn. Its events are recorded as Rasa records them (after the action's own `action` event) and
take effect through the tracker replay: `SlotSet`, `AllSlotsReset`, `Restarted`,
`FollowupAction`, `ActiveLoop`, `UserUtteranceReverted`, `ActionReverted`, `ConversationPaused`
and `ConversationResumed` (a paused conversation goes to a person: see executors.FollowDialogue).
Its messages (`dispatcher.utter_message`) are sent."""

from __future__ import annotations

import logging
import time
from typing import Any

from crowddesk.bot.dialogue.action_client import ActionClient, ActionResult, ActionServerError
from crowddesk.bot.dialogue.policies.ensemble import NextAction, record_action
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker, Event, applied_events
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.connectors.types import Button, OutboundMessage

logger = logging.getLogger(__name__)

# Events CrowdDesk keeps but has no scheduler for: a reminder is logged, never fired.
UNSCHEDULED = frozenset({"reminder", "cancel_reminder"})


class CustomActions:
    """Runs the project's custom actions on its action server (`action_endpoint`)."""

    def __init__(self, client: ActionClient | None, domain: Domain, renderer: ResponseRenderer) -> None:
        self.client = client
        self.domain = domain
        self.renderer = renderer

    async def run(self, turn: Turn, chosen: NextAction) -> None:
        """Run the chosen action and record it, its events and its messages; ActionServerError
        when it fails."""
        result = await self.call(turn, chosen.action, turn.transcript())
        record_action(turn, chosen)
        self.apply(turn, result)

    async def call(self, turn: Turn, action: str, events: list[Event]) -> ActionResult:
        """Ask the action server to run `action` on a conversation made of `events`."""
        if self.client is None:
            raise ActionServerError(f"{action!r} needs an action server; set action_endpoint in endpoints.yml")
        tracker = rasa_tracker(self.domain, turn.sender_id, turn.channel, events)
        return await self.client.run(action, turn.sender_id, tracker, self.domain.as_rasa_dict())

    def apply(self, turn: Turn, result: ActionResult) -> None:
        """Record the action server's events and send its messages."""
        for event in result.events:
            if event.get("event") in UNSCHEDULED:
                logger.warning("%s: a %s event is recorded but not scheduled", turn.sender_id, event["event"])
            turn.apply({**event, "timestamp": event.get("timestamp") or time.time()})
        for response in result.responses:
            turn.say(self.response(turn, response))

    def response(self, turn: Turn, response: dict[str, Any]) -> OutboundMessage:
        """A `dispatcher.utter_message`: a domain response by name, or text, buttons and media."""
        template = response.get("response") or response.get("template")
        if template and self.renderer.has(template):
            extras = {k: v for k, v in response.items() if k not in ("response", "template")}
            return turn.render(self.renderer, template, **extras)
        return OutboundMessage(
            turn.sender_id,
            str(response.get("text") or ""),
            tuple(Button(b["title"], b["payload"]) for b in response.get("buttons") or []),
            image=response.get("image"),
            custom=response.get("custom") or {},
        )


def rasa_tracker(domain: Domain, sender_id: str, channel: str, events: list[Event]) -> dict[str, Any]:
    """The tracker JSON Rasa sends to its action server (`DialogueStateTracker.current_state`)."""
    tracker = DialogueTracker.replay(domain, events)
    latest = tracker.latest_message or {}
    parse = latest.get("parse_data") or {}
    loop = tracker.active_loop_name
    applied = applied_events(events)
    return {
        "sender_id": sender_id,
        "slots": tracker.slots,
        "latest_message": {**parse, "text": latest.get("text"), "message_id": latest.get("message_id")},
        "latest_event_time": applied[-1].get("timestamp") if applied else None,
        "followup_action": tracker.followup_action,
        "paused": tracker.paused,
        "events": events,
        "latest_input_channel": latest.get("input_channel") or channel,
        "active_loop": {} if loop is None else {"name": loop, "validate": True, "rejected": tracker.loop_rejected},
        "latest_action": tracker.latest_action or {"action_name": ACTION_LISTEN},
        "latest_action_name": tracker.latest_action_name or ACTION_LISTEN,
    }
