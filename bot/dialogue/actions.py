"""Running one action the dialogue chose: a domain response (a retrieval intent's answer
included), a form, one of Rasa's default actions, or a custom action on the action server."""

from __future__ import annotations

import logging

from crowddesk.bot.dialogue.custom_actions import CustomActions
from crowddesk.bot.dialogue.forms import Forms
from crowddesk.bot.dialogue.policies.ensemble import NextAction, record_action
from crowddesk.bot.dialogue.tracker import RETRIEVAL_SEPARATOR, Event
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import REQUESTED_SLOT, Domain
from crowddesk.bot.project.responses import ResponseRenderer

logger = logging.getLogger(__name__)

# Rasa's default actions: the response each utters (when the domain has it) and its events.
DEFAULT_ACTIONS: dict[str, tuple[str | None, tuple[Event, ...]]] = {
    "action_restart": ("utter_restart", ({"event": "restart"},)),
    "action_back": ("utter_back", ({"event": "rewind"}, {"event": "rewind"})),
    "action_default_fallback": ("utter_default", ({"event": "rewind"},)),
    # CrowdDesk's own clarification replaces Rasa's two-stage fallback: asked for, it falls back.
    "action_two_stage_fallback": ("utter_default", ({"event": "rewind"},)),
    "action_deactivate_loop": (
        None,
        ({"event": "active_loop", "name": None}, {"event": "slot", "name": REQUESTED_SLOT, "value": None}),
    ),
    "action_session_start": (None, ({"event": "session_started"}, {"event": "action", "name": "action_listen"})),
    "action_unlikely_intent": (None, ()),
    "action_extract_slots": (None, ()),
    "action_revert_fallback_events": (None, ()),
}


class DialogueActions:
    def __init__(self, domain: Domain, renderer: ResponseRenderer, forms: Forms, custom_actions: CustomActions) -> None:
        self.domain = domain
        self.renderer = renderer
        self.forms = forms
        self.custom_actions = custom_actions

    async def run(self, turn: Turn, chosen: NextAction) -> bool:
        """Run `chosen`; False when a form rejects the message (the dialogue decides again).
        ActionServerError when a custom action (or a form's validation) fails."""
        name = chosen.action
        if self.forms.is_form(name):
            return await self.forms.run(turn, chosen)
        if name in DEFAULT_ACTIONS:
            response, events = DEFAULT_ACTIONS[name]
            record_action(turn, chosen)
            if response is not None and self.renderer.has(response):
                turn.say(turn.render(self.renderer, response), response)
            for event in events:
                turn.apply(event)
            return True
        response = await self._response_name(turn, name)
        if response is not None:
            record_action(turn, chosen)
            turn.say(turn.render(self.renderer, response), name)
            return True
        await self.custom_actions.run(turn, chosen)
        return True

    async def _response_name(self, turn: Turn, action: str) -> str | None:
        """The response `action` utters: its own, or for `utter_<retrieval intent>` the one for
        the message's full retrieval intent (`utter_chitchat/ask_weather`)."""
        if not action.startswith("utter_"):
            return None
        if self.renderer.has(action):
            return action
        intent = _latest_full_intent(turn.transcript())
        if intent and RETRIEVAL_SEPARATOR in intent:
            base, key = intent.split(RETRIEVAL_SEPARATOR, 1)
            selected = f"{action}{RETRIEVAL_SEPARATOR}{key}"
            if action == f"utter_{base}" and self.renderer.has(selected):
                return selected
        logger.warning("%s: %r has no response for this message", turn.sender_id, action)
        return None


def _latest_full_intent(events: list[Event]) -> str | None:
    for event in reversed(events):
        if event.get("event") == "user":
            return ((event.get("parse_data") or {}).get("intent") or {}).get("name")
    return None
