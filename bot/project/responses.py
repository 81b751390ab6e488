"""Renders domain responses (`utter_*`) into outbound messages, the way Rasa does."""

from __future__ import annotations

import random
import re
from collections.abc import Mapping
from typing import Any

from crowddesk.bot.project.domain import Domain, Response
from crowddesk.connectors.types import Button, OutboundMessage

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


class ResponseRenderer:
    def __init__(self, domain: Domain, *, rng: random.Random | None = None) -> None:
        self.domain = domain
        self._rng = rng or random.Random()

    def has(self, name: str) -> bool:
        return name in self.domain.responses

    def render(
        self,
        name: str,
        recipient_id: str,
        slots: Mapping[str, Any],
        *,
        channel: str | None = None,
        **values: Any,
    ) -> OutboundMessage:
        """One variation of response `name` as Rasa picks it for `channel` and `slots`, with
        `{slot}` and `{value}` placeholders filled. When no variation fits, any of them is sent
        (Rasa would send nothing; CrowdDesk never leaves the customer without a reply)."""
        chosen = self._rng.choice(self.variations(name, slots, channel) or self.domain.responses[name])
        fill = {**{k: v for k, v in slots.items() if v is not None}, **values}
        return OutboundMessage(
            recipient_id=recipient_id,
            text=_fill(chosen.text, fill),
            buttons=tuple(Button(_fill(b.title, fill), b.payload) for b in chosen.buttons),
            image=chosen.image,
            custom=dict(chosen.custom or {}),
        )

    def variations(self, name: str, slots: Mapping[str, Any], channel: str | None) -> list[Response]:
        """Rasa's order: variations whose `condition` holds for this channel, then unconditional
        ones for this channel, then conditional ones for any channel, then unconditional ones."""
        responses = self.domain.responses[name]
        conditional = [r for r in responses if r.condition and _condition_holds(r, slots)]
        unconditional = [r for r in responses if not r.condition]
        for group in (conditional, unconditional):
            for_channel = [r for r in group if channel is not None and r.channel == channel]
            if for_channel:
                return for_channel
        return [r for r in conditional if r.channel is None] or [r for r in unconditional if r.channel is None]


def bot_event_data(reply: OutboundMessage) -> dict[str, Any]:
    """The `data` of a Rasa `bot` event for a rendered reply."""
    return {
        "buttons": [b.as_dict() for b in reply.buttons] or None,
        "image": reply.image,
        "custom": reply.custom or None,
    }


def _fill(template: str, values: Mapping[str, Any]) -> str:
    # Unknown placeholders stay as they are, as in Rasa, rather than failing the reply.
    return _PLACEHOLDER.sub(lambda m: str(values[m.group(1)]) if m.group(1) in values else m.group(0), template)


def _condition_holds(response: Response, slots: Mapping[str, Any]) -> bool:
    """Every `type: slot` condition holds; strings compare case-insensitively, as in Rasa."""
    for condition in response.condition or []:
        name = condition.get("name")
        value = slots.get(name) if isinstance(name, str) else None
        expected = condition.get("value")
        if isinstance(value, str) and isinstance(expected, str):
            value, expected = value.casefold(), expected.casefold()
        if value != expected:
            return False
    return True
