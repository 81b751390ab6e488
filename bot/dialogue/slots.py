"""Slot values: where a conversation starts, and what a parsed message fills through the
domain's slot mappings."""

from __future__ import annotations

from typing import Any

from crowddesk.bot.conversations.store import ConversationRecord
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import Domain
from crowddesk.nlu.types import Parse


class SlotFiller:
    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    def initial(self, record: ConversationRecord | None) -> dict[str, Any]:
        """The domain's initial values, overlaid with what the stored conversation holds."""
        slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        if record:
            slots.update(record.slots)
        return slots

    def fill(self, turn: Turn, parse: Parse) -> None:
        """Set each slot whose first matching mapping gives a new value, with a `slot` event."""
        for name, slot in self.domain.slots.items():
            for mapping in slot.mappings:
                value = _mapped_value(mapping, parse)
                if value is not None and turn.slots.get(name) != value:
                    turn.slots[name] = value
                    turn.add("slot", name=name, value=value)
                    break


def _mapped_value(mapping: Any, parse: Parse) -> Any:
    intents = mapping.intent if isinstance(mapping.intent, list) else [mapping.intent] if mapping.intent else []
    if intents and parse.intent.name not in intents:
        return None
    if mapping.type == "from_entity":
        return next((e.value for e in parse.entities if e.entity == mapping.entity), None)
    if mapping.type == "from_intent" and intents:
        return mapping.value
    return None
