"""Custom actions: the tracker a rasa_sdk action server expects, and what its answer adds to the
turn (events, slot values, responses)."""

from __future__ import annotations

import time
from typing import Any

from crowddesk.bot.dialogue.action_client import ActionClient, ActionServerError
from crowddesk.bot.dialogue.policy import Decision
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.responses import ResponseRenderer, bot_event_data
from crowddesk.connectors.types import Button, OutboundMessage
from crowddesk.nlu.types import Parse


class CustomActions:
    """Runs the project's custom actions on its action server (`action_endpoint`)."""

    def __init__(self, client: ActionClient | None, domain: Domain, renderer: ResponseRenderer) -> None:
        self.client = client
        self.domain = domain
        self.renderer = renderer

    async def run(self, turn: Turn, parse: Parse, action: str, decision: Decision) -> None:
        """Run `action` and add its events and responses to `turn`; ActionServerError when it fails."""
        if self.client is None:
            raise ActionServerError(f"{action!r} needs an action server; set action_endpoint in endpoints.yml")
        tracker = {
            "sender_id": turn.sender_id,
            "slots": turn.slots,
            "latest_message": parse.as_rasa(),
            "events": await turn.transcript(),  # Rasa's action server gets the whole history
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
            "latest_input_channel": turn.channel,
        }
        result = await self.client.run(action, turn.sender_id, tracker, self.domain.as_rasa_dict())
        turn.add("action", name=action, policy="SupportPolicy", confidence=decision.confidence)
        for event in result.events:
            if event.get("event") == "slot" and isinstance(event.get("name"), str):
                turn.slots[event["name"]] = event.get("value")
            turn.events.append({**event, "timestamp": event.get("timestamp") or time.time()})
        for response in result.responses:
            reply = self._response(turn, response)
            turn.replies.append(reply)
            turn.add("bot", text=reply.text, data=bot_event_data(reply))

    def _response(self, turn: Turn, response: dict[str, Any]) -> OutboundMessage:
        """A `dispatcher.utter_message`: a domain response by name, or text, buttons and media."""
        template = response.get("response") or response.get("template")
        if template and self.renderer.has(template):
            extras = {k: v for k, v in response.items() if k not in ("response", "template")}
            return self.renderer.render(template, turn.sender_id, turn.slots, **extras)
        return OutboundMessage(
            turn.sender_id,
            str(response.get("text") or ""),
            tuple(Button(b["title"], b["payload"]) for b in response.get("buttons") or []),
            image=response.get("image"),
            custom=response.get("custom") or {},
        )
