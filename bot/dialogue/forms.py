"""Forms, run as Rasa 3's FormAction runs them, with no action server unless the project has one.

Activated, a form fills what the message already gave (its `from_trigger_intent` mappings
included), then asks for the first of its `required_slots` without a value, with
`action_ask_<form>_<slot>`, `utter_ask_<form>_<slot>`, `action_ask_<slot>` or `utter_ask_<slot>`,
and keeps the slot's name in `requested_slot`. Each answer is what slot extraction filled for the
form's slots; `validate_<form>` (a rasa_sdk FormValidationAction), when the domain lists it,
checks those values first. An answer that fills nothing rejects the form for this message, so
rules and stories decide (an interruption); when no slot is left to ask, the form deactivates.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from crowddesk.bot.dialogue.custom_actions import CustomActions
from crowddesk.bot.dialogue.policies.ensemble import NextAction, record_action
from crowddesk.bot.dialogue.slots import SlotFiller
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker, Event
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import REQUESTED_SLOT, Domain
from crowddesk.bot.project.responses import ResponseRenderer


def required_slots(domain: Domain, form: str) -> list[str]:
    """The form's `required_slots`, in order."""
    slots = (domain.forms.get(form) or {}).get("required_slots") or []
    return [str(slot) for slot in slots]


def answers_form(domain: Domain, tracker: DialogueTracker, extracted: Sequence[Event]) -> bool:
    """Whether `extracted` (slots a message filled) holds one the active form needs."""
    form = tracker.active_loop_name
    if form is None or form not in domain.forms:
        return False
    wanted = {*required_slots(domain, form), tracker.slots.get(REQUESTED_SLOT)}
    return any(event.get("name") in wanted for event in extracted)


class Forms:
    def __init__(
        self, domain: Domain, renderer: ResponseRenderer, slots: SlotFiller, custom_actions: CustomActions
    ) -> None:
        self.domain = domain
        self.renderer = renderer
        self.slots = slots
        self.custom_actions = custom_actions

    def is_form(self, action: str) -> bool:
        return action in self.domain.forms

    async def run(self, turn: Turn, chosen: NextAction) -> bool:
        """Run the chosen form for this turn; False when it rejects the message (nothing was
        recorded but the rejection). A form that comes back after an interruption
        (`loop_was_interrupted`) doesn't validate the answer to a different question."""
        form, interrupted = chosen.action, chosen.loop_was_interrupted
        before = turn.transcript()
        tracker = DialogueTracker.replay(self.domain, before)
        events: list[Event] = []
        if tracker.active_loop_name != form:
            events += await self._activate(turn, form, before)
        else:
            needs_validation = tracker.latest_action_name == ACTION_LISTEN and not interrupted
            candidates = self._answer(before, form, tracker) if needs_validation else {}
            validated = await self._validate(turn, form, before, candidates) if candidates else []
            if needs_validation and tracker.slots.get(REQUESTED_SLOT) and not candidates and not _filled(validated):
                turn.add("action_execution_rejected", name=form, policy=chosen.policy, confidence=chosen.confidence)
                return False
            events += validated
        if interrupted:
            turn.add("loop_interrupted", is_interrupted=True)
        record_action(turn, chosen)
        start = len(turn.events)
        for event in events:
            turn.apply(event)
        if not _done(events):
            await self._request_next_slot(turn, form, events)
        if _done(turn.events[start:]):
            turn.add("active_loop", name=None)
        return True

    async def _activate(self, turn: Turn, form: str, before: list[Event]) -> list[Event]:
        """The form becomes active and takes what the message already said, validated."""
        activation: Event = {"event": "active_loop", "name": form}
        tracker = DialogueTracker.replay(self.domain, [*before, activation])
        extracted = self.slots.extract(tracker)
        for event in extracted:
            tracker.update(event)
        prefilled = {slot: tracker.slots.get(slot) for slot in required_slots(self.domain, form)}
        prefilled = {slot: value for slot, value in prefilled.items() if value is not None}
        validated = await self._validate(turn, form, [*before, activation], prefilled) if prefilled else []
        checked = {event.get("name") for event in validated if event.get("event") == "slot"}
        return [activation, *validated, *(e for e in extracted if e.get("name") not in checked)]

    def _answer(self, before: list[Event], form: str, tracker: DialogueTracker) -> dict[str, Any]:
        """The form's slots the latest message filled (slot events since it, in order)."""
        wanted = set(required_slots(self.domain, form))
        if tracker.slots.get(REQUESTED_SLOT):
            wanted.add(str(tracker.slots[REQUESTED_SLOT]))
        answer: dict[str, Any] = {}
        for event in reversed(before):
            if event.get("event") == "user":
                break
            if event.get("event") == "slot" and event.get("name") in wanted:
                answer.setdefault(event["name"], event.get("value"))
        return answer

    async def _validate(self, turn: Turn, form: str, before: list[Event], candidates: dict[str, Any]) -> list[Event]:
        """`validate_<form>`'s verdict on the candidate values, or the values as they are when the
        domain lists no such action. Its messages are sent."""
        as_events = [{"event": "slot", "name": name, "value": value} for name, value in candidates.items()]
        action = f"validate_{form}"
        if action not in self.domain.actions:
            return as_events
        requested = DialogueTracker.replay(self.domain, before).slots.get(REQUESTED_SLOT)
        context = [
            *before,
            {"event": "slot", "name": REQUESTED_SLOT, "value": requested},
            {"event": "action", "name": form},
            *as_events,
        ]
        result = await self.custom_actions.call(turn, action, context)
        for response in result.responses:
            turn.say(self.custom_actions.response(turn, response))
        validated = list(result.events)
        named = {event.get("name") for event in validated if event.get("event") == "slot"}
        return [*validated, *(event for event in as_events if event["name"] not in named)]

    async def _request_next_slot(self, turn: Turn, form: str, events: Sequence[Event]) -> None:
        requested = next(
            (e.get("value") for e in reversed(events) if e.get("event") == "slot" and e.get("name") == REQUESTED_SLOT),
            None,
        )
        if requested is None:
            requested = next((s for s in required_slots(self.domain, form) if turn.slots.get(s) is None), None)
            turn.add("slot", name=REQUESTED_SLOT, value=requested)
        if requested is not None:
            await self._ask(turn, form, str(requested))

    async def _ask(self, turn: Turn, form: str, slot: str) -> None:
        for name in (
            f"action_ask_{form}_{slot}",
            f"utter_ask_{form}_{slot}",
            f"action_ask_{slot}",
            f"utter_ask_{slot}",
        ):
            if name.startswith("utter_") and self.renderer.has(name):
                turn.say(turn.render(self.renderer, name), name)
                return
            if name.startswith("action_") and name in self.domain.actions:
                result = await self.custom_actions.call(turn, name, turn.transcript())
                self.custom_actions.apply(turn, result)
                return


def _filled(events: Sequence[Event]) -> bool:
    return any(e.get("event") == "slot" and e.get("name") != REQUESTED_SLOT for e in events)


def _done(events: Sequence[Event]) -> bool:
    """A form is done when the last word on `requested_slot` is None, or a validation ended it."""
    last_requested = next(
        (e for e in reversed(events) if e.get("event") == "slot" and e.get("name") == REQUESTED_SLOT), None
    )
    last_loop = next((e for e in reversed(events) if e.get("event") == "active_loop"), None)
    return (last_requested is not None and last_requested.get("value") is None) or (
        last_loop is not None and last_loop.get("name") is None
    )
