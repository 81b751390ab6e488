"""Stories and rules as the Rasa events a conversation that follows them would have.

As in Rasa's StoryStep.explicit_events: an `action_listen` comes before every user message,
a message's entities set the slots they map to (`from_entity` mappings outside forms), and a
story ends listening. A rule starts with its conditions and, unless it is for the conversation's
start, with the "…" snippet action (anything may come before it); `slot: null` and
`active_loop: null` in a rule mean "must not be set".
"""

from __future__ import annotations

from typing import Any

from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, RULE_SNIPPET_ACTION, SHOULD_NOT_BE_SET, Event
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.story_steps import (
    ActionStep,
    ActiveLoopStep,
    BotStep,
    SlotStep,
    Step,
    UserStep,
)
from crowddesk.bot.project.training_data import Rule

# The value a bare `slot_was_set: - name` sets: "some value", which featurizes as set.
ANY_VALUE = "<any>"


def story_events(domain: Domain, steps: tuple[Step, ...]) -> list[Event]:
    """The events of one linear story (no `or:`, no checkpoints), ending with a listen."""
    events: list[Event] = []
    for step in steps:
        events.extend(step_events(domain, step, events, in_rule=False))
    _listen(events)
    return events


def rule_events(domain: Domain, rule: Rule, steps: tuple[Step, ...]) -> list[Event]:
    """The events of one rule with `steps` (one choice of its `or:` alternatives)."""
    events: list[Event] = []
    for step in rule.condition:
        events.extend(step_events(domain, step, events, in_rule=True))
    if not rule.conversation_start:
        events.append(_action(RULE_SNIPPET_ACTION))
    for step in steps:
        events.extend(step_events(domain, step, events, in_rule=True))
    if not rule.wait_for_user_input:
        events.append(_action(RULE_SNIPPET_ACTION))
    _listen(events)
    return events


def step_events(domain: Domain, step: Step, so_far: list[Event], *, in_rule: bool = False) -> list[Event]:
    """The events `step` adds after `so_far` (a listen before a user message goes into `so_far`)."""
    if isinstance(step, UserStep):
        _listen(so_far)
        user = user_event(step)
        return [user, *entity_slot_events(domain, user["parse_data"]["entities"])]
    if isinstance(step, ActionStep):
        return [_action(step.name)]
    if isinstance(step, BotStep):
        return [{"event": "action", "name": None, "action_text": step.text}]
    if isinstance(step, SlotStep):
        value: Any = ANY_VALUE if step.any_value else step.value
        if in_rule and value is None:
            value = SHOULD_NOT_BE_SET
        return [{"event": "slot", "name": step.name, "value": value}]
    if isinstance(step, ActiveLoopStep):
        name = SHOULD_NOT_BE_SET if in_rule and step.name is None else step.name
        return [{"event": "active_loop", "name": name}]
    return []  # checkpoints: joined already (story_graph.linear_stories)


def user_event(step: UserStep) -> Event:
    """A story's user step as a `user` event with Rasa's parse data."""
    entities = [
        {
            "entity": entity.entity,
            "value": "" if entity.value is None else entity.value,
            **({"role": entity.role} if entity.role else {}),
            **({"group": entity.group} if entity.group else {}),
        }
        for entity in step.entities
    ]
    intent = {"name": step.intent, "confidence": 1.0} if step.intent else {}
    return {
        "event": "user",
        "text": step.text if step.text is not None else (f"/{step.intent}" if step.intent else ""),
        "parse_data": {"intent": intent, "entities": entities, "text": step.text},
    }


def entity_slot_events(domain: Domain, entities: list[dict[str, Any]]) -> list[Event]:
    """Slots the message's entities fill through `from_entity` mappings that apply outside a
    form (Rasa's `Domain.slots_for_entities`); a list slot takes every value."""
    events: list[Event] = []
    for name, slot in domain.slots.items():
        values = [
            entity.get("value")
            for mapping in slot.mappings
            if mapping.type == "from_entity" and not _needs_active_loop(mapping.conditions)
            for entity in entities
            if (entity.get("entity"), entity.get("role"), entity.get("group"))
            == (mapping.entity, mapping.role, mapping.group)
        ]
        if values:
            events.append({"event": "slot", "name": name, "value": values if slot.type == "list" else values[-1]})
    return events


def _needs_active_loop(conditions: list[dict[str, Any]] | None) -> bool:
    return conditions is not None and bool(conditions) and conditions[0].get("active_loop") is not None


def _action(name: str) -> Event:
    return {"event": "action", "name": name}


def _listen(events: list[Event]) -> None:
    if not events or events[-1] != _action(ACTION_LISTEN):
        events.append(_action(ACTION_LISTEN))
