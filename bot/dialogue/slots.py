"""Slot values: where a conversation starts, and what a customer's message fills through the
domain's slot mappings, as Rasa 3's `action_extract_slots` does after every user message.

A mapping applies when its intent / not_intent allow the message's intent (an active form's
`ignored_intents` count as not_intent), and its `conditions` hold: one of them names the active
form (and, if given, the slot it asks for) or, with `active_loop: null`, no form is active.
The first applicable mapping that yields a value fills the slot. `from_trigger_intent` applies
only while its form is active (the form itself runs it at activation); `custom` mappings are left
to the project's actions.
"""

from __future__ import annotations

from typing import Any

from crowddesk.bot.conversations.store import ConversationRecord
from crowddesk.bot.dialogue.tracker import DialogueTracker, Event
from crowddesk.bot.project.domain import REQUESTED_SLOT, Domain, SlotMapping


class SlotFiller:
    def __init__(self, domain: Domain) -> None:
        self.domain = domain

    def initial(self, record: ConversationRecord | None) -> dict[str, Any]:
        """The domain's initial values, overlaid with what the stored conversation holds."""
        slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        if record:
            slots.update(record.slots)
        return slots

    def extract(self, tracker: DialogueTracker) -> list[Event]:
        """`slot` events for what the latest message fills."""
        events: list[Event] = []
        for name, slot in self.domain.slots.items():
            if name == REQUESTED_SLOT:
                continue
            for mapping in slot.mappings:
                if not self._applies(mapping, tracker, name):
                    continue
                values = _values(mapping, tracker)
                if not values:
                    continue
                value = values if slot.type == "list" else values[-1]
                # Set again even to the value it has: a form counts what this message filled.
                if value is not None or tracker.slots.get(name) is not None:
                    events.append({"event": "slot", "name": name, "value": value})
                    break
        return events

    def _applies(self, mapping: SlotMapping, tracker: DialogueTracker, slot: str) -> bool:
        if mapping.type == "from_entity" and mapping.entity not in self.domain.entities:
            return False
        intent = tracker.latest_intent()
        wanted = _listed(mapping.intent)
        unwanted = _listed(mapping.not_intent)
        loop = tracker.active_loop_name
        if loop is not None:
            unwanted += _listed((self.domain.forms.get(loop) or {}).get("ignored_intents"))
        if wanted and intent not in wanted:
            return False
        if not wanted and intent in unwanted:
            return False
        if mapping.type == "from_trigger_intent":
            loops = [condition.get("active_loop") for condition in mapping.conditions or []]
            return loop is not None and (not loops or loop in loops)
        return _conditions_hold(mapping, tracker, slot)


def _conditions_hold(mapping: SlotMapping, tracker: DialogueTracker, slot: str) -> bool:
    if not mapping.conditions:
        return True
    requested = tracker.slots.get(REQUESTED_SLOT)
    if tracker.loop_rejected and requested == slot:
        return False
    for condition in mapping.conditions:
        loop = condition.get("active_loop")
        asked = condition.get("requested_slot")
        if loop and loop == tracker.active_loop_name and (not asked or asked == requested):
            return True
        if loop is None and tracker.active_loop_name is None:
            return True
    return False


def _values(mapping: SlotMapping, tracker: DialogueTracker) -> list[Any]:
    message = tracker.latest_message or {}
    if mapping.type == "from_entity":
        entities = (message.get("parse_data") or {}).get("entities") or []
        return [
            entity.get("value")
            for entity in entities
            if (entity.get("entity"), entity.get("role"), entity.get("group"))
            == (mapping.entity, mapping.role, mapping.group)
        ]
    if mapping.type in ("from_intent", "from_trigger_intent"):
        return [mapping.value]
    if mapping.type == "from_text":
        return [message.get("text")]
    return []


def _listed(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]
