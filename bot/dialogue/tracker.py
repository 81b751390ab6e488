"""A conversation's dialogue state, replayed from its events as Rasa's DialogueStateTracker does.

Events are Rasa's JSON events (what the conversation store keeps and rasa_sdk returns). The
state the next-action policies read is Rasa's too: a dict of sub-states `user` (intent, entity
labels, or text for an end-to-end message), `prev_action`, `active_loop` and featurized `slots`.
Stories and live conversations go through the same replay, so their states compare equal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from crowddesk.bot.project.domain import Domain, Slot

ACTION_LISTEN = "action_listen"
# A rule's "…": anything may come before (or after, without wait_for_user_input) these steps.
RULE_SNIPPET_ACTION = "..."
# In a rule, `slot: null` and `active_loop: null` mean "must not be set" rather than "unset".
SHOULD_NOT_BE_SET = "should_not_be_set"
# Rasa's separator between an entity label and its role or group ("city#from").
ENTITY_LABEL_SEPARATOR = "#"
RETRIEVAL_SEPARATOR = "/"

Event = dict[str, Any]
State = dict[str, dict[str, Any]]


def state_key(states: Sequence[State]) -> str:
    """A canonical string for a sequence of states (sorted keys, tuples as lists)."""
    return json.dumps(list(states), sort_keys=True)


def slot_features(slot: Slot, value: Any) -> tuple[float, ...]:
    """The slot's featurization as Rasa's slot types give it; () when it doesn't influence
    the conversation. An all-zero tuple means "unset" and is left out of the state."""
    if not slot.influence_conversation or slot.type == "any":
        return ()
    if slot.type == "bool":
        return (0.0, 0.0) if value is None else (1.0, 1.0 if _truthy(value) else 0.0)
    if slot.type == "categorical":
        values = [str(v).lower() for v in slot.values or []]
        if "__other__" not in values:
            values.append("__other__")
        features = [0.0] * len(values)
        if value is not None:
            text = str(value).lower()
            features[values.index(text) if text in values else values.index("__other__")] = 1.0
        return tuple(features)
    if slot.type == "float":
        low = 0.0 if slot.min_value is None else slot.min_value
        high = 1.0 if slot.max_value is None else slot.max_value
        try:
            capped = max(low, min(high, float(value)))
        except (TypeError, ValueError):
            return (0.0, 0.0)
        return (1.0, (capped - low) / (abs(high - low) or 1.0))
    if slot.type == "list":
        return (1.0,) if value else (0.0,)
    return (0.0,) if value is None else (1.0,)  # text and custom types: set or not


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes", "y", "on")
    return bool(value)


def applied_events(events: Iterable[Event]) -> list[Event]:
    """The events that still count: a restart or a new session starts afresh, a rewind
    (UserUtteranceReverted) takes back the last user message, an undo (ActionReverted) the last
    action, and a loop's happy-path turns collapse into its latest run (Rasa's `applied_events`)."""
    events = list(events)
    loop_names = {e.get("name") for e in events if e.get("event") == "active_loop" and e.get("name")}
    applied: list[Event] = []
    for event in events:
        kind = event.get("event")
        if kind in ("restart", "session_started"):
            applied = []
        elif kind == "undo":
            _undo_till(applied, "action")
        elif kind == "rewind":
            _undo_till(applied, "user")
            _undo_till(applied, "action")
        elif kind == "action" and event.get("name") in loop_names and not _first_run_or_unhappy(event["name"], applied):
            _undo_till_loop_run(applied, event["name"])
        else:
            applied.append(event)
    return applied


def _undo_till(applied: list[Event], kind: str) -> None:
    while applied:
        if applied.pop().get("event") == kind:
            return


def _first_run_or_unhappy(loop: str, applied: list[Event]) -> bool:
    next_action: str | None = None
    for event in reversed(applied):
        kind = event.get("event")
        if kind == "active_loop" and event.get("name") is None:
            return True
        if kind == "action_execution_rejected" and event.get("name") == loop:
            return True
        if kind == "user" and next_action is not None and next_action != loop:
            return True
        if kind == "action":
            if event.get("name") == loop:
                return False
            next_action = event.get("name")
    return True


def _undo_till_loop_run(applied: list[Event], loop: str) -> None:
    index = len(applied) - 1
    while index >= 0:
        event = applied[index]
        if event.get("event") == "action" and event.get("name") == loop:
            return
        if event.get("event") in ("action", "user"):
            del applied[index]
        index -= 1


@dataclass
class DialogueTracker:
    """The dialogue state after a sequence of events."""

    domain: Domain
    slots: dict[str, Any] = field(default_factory=dict)
    set_slots: set[str] = field(default_factory=set)
    """Slots an event set (Rasa's `has_been_set`): a rule's state shows only these."""
    latest_message: Event | None = None
    latest_action: dict[str, str] | None = None
    active_loop: str | None = None
    loop_rejected: bool = False
    followup_action: str | None = None
    paused: bool = False

    def __post_init__(self) -> None:
        if not self.slots:
            self.reset_slots()

    @classmethod
    def replay(cls, domain: Domain, events: Iterable[Event]) -> DialogueTracker:
        tracker = cls(domain)
        for event in applied_events(events):
            tracker.update(event)
        return tracker

    @property
    def latest_action_name(self) -> str | None:
        return None if self.latest_action is None else self.latest_action.get("action_name")

    @property
    def active_loop_name(self) -> str | None:
        return None if self.active_loop in (None, SHOULD_NOT_BE_SET) else self.active_loop

    def latest_intent(self) -> str | None:
        intent = ((self.latest_message or {}).get("parse_data") or {}).get("intent") or {}
        name = intent.get("name")
        return None if not name else str(name).split(RETRIEVAL_SEPARATOR, 1)[0]

    def reset_slots(self) -> None:
        self.slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        self.set_slots = set()

    def update(self, event: Event) -> None:
        """Apply one event (Rasa's `Event.apply_to`)."""
        kind = event.get("event")
        if kind == "user":
            self.latest_message = event
            self.followup_action = None
        elif kind == "action":
            name = event.get("name")
            self.latest_action = {"action_text": event["action_text"]} if name is None else {"action_name": name}
            self.followup_action = None
            if name == self.active_loop_name:
                self.loop_rejected = False
        elif kind == "slot":
            self.slots[event["name"]] = event.get("value")
            self.set_slots.add(event["name"])
        elif kind == "active_loop":
            self.active_loop = event.get("name")
            self.loop_rejected = False
        elif kind == "action_execution_rejected":
            self.loop_rejected = event.get("name") == self.active_loop_name
        elif kind == "followup":
            self.followup_action = event.get("name")
        elif kind == "reset_slots":
            self.reset_slots()
        elif kind == "pause":
            self.paused = True
        elif kind == "resume":
            self.paused = False

    def state(self, *, omit_unset_slots: bool = False) -> State:
        """Rasa's `get_active_state`: empty sub-states are left out."""
        state: State = {}
        user = self._user_sub_state()
        if user:
            state["user"] = user
        slots = self._slot_sub_state(omit_unset_slots)
        if slots:
            state["slots"] = slots
        if self.latest_action:
            state["prev_action"] = dict(self.latest_action)
        if self.active_loop:
            state["active_loop"] = {"name": self.active_loop}
        return state

    def _user_sub_state(self) -> dict[str, Any]:
        message = self.latest_message
        if message is None:
            return {}
        parse = message.get("parse_data") or {}
        intent = self.latest_intent()
        sub_state: dict[str, Any] = {}
        if intent:
            sub_state["intent"] = intent
        elif message.get("text"):
            sub_state["text"] = message["text"]
        known = set(self.domain.entities)
        labels: set[str] = set()
        for entity in parse.get("entities") or []:
            name = entity.get("entity")
            if name not in known:
                continue
            labels.add(name)
            labels.update(
                f"{name}{ENTITY_LABEL_SEPARATOR}{entity[key]}" for key in ("role", "group") if entity.get(key)
            )
        if labels:
            sub_state["entities"] = tuple(sorted(labels))
        return sub_state

    def _slot_sub_state(self, omit_unset_slots: bool) -> dict[str, Any]:
        slots: dict[str, Any] = {}
        for name, slot in self.domain.slots.items():
            if omit_unset_slots and name not in self.set_slots:
                continue
            value = self.slots.get(name)
            if value == SHOULD_NOT_BE_SET:
                slots[name] = SHOULD_NOT_BE_SET
                continue
            features = slot_features(slot, value)
            if any(features):
                slots[name] = features
        return slots


def prior_states(
    domain: Domain, events: Iterable[Event], *, omit_unset_slots: bool = False
) -> Iterator[tuple[State, Event | None]]:
    """The state before each action, with that action event; last, the current state with None
    (Rasa's `generate_all_prior_trackers`)."""
    tracker = DialogueTracker(domain)
    for event in applied_events(events):
        if event.get("event") == "action":
            yield tracker.state(omit_unset_slots=omit_unset_slots), event
        tracker.update(event)
    yield tracker.state(omit_unset_slots=omit_unset_slots), None


def track(domain: Domain, events: Iterable[Event]) -> tuple[DialogueTracker, list[State]]:
    """The tracker after `events`, and the states before each action followed by the current
    state (the one the next action is predicted from)."""
    tracker = DialogueTracker(domain)
    states: list[State] = []
    for event in applied_events(events):
        if event.get("event") == "action":
            states.append(tracker.state())
        tracker.update(event)
    states.append(tracker.state())
    return tracker, states


def story_states(domain: Domain, events: Iterable[Event]) -> list[State]:
    """The states the story-based policies see (Rasa's `ignore_rule_only_turns`): the turns of
    rules no story shows (actions marked `hide_rule_turn`) are left out, and the turn after
    them reads as if it followed the last turn a story could show."""
    tracker = DialogueTracker(domain)
    states: list[State] = []
    last_shown_action: dict[str, str] | None = None
    hidden = False
    for event in [*applied_events(events), None]:
        if event is None or event.get("event") == "action":
            if not hidden:
                last_shown_action = tracker.latest_action
            # A followup or a form's own run doesn't change whether the turn is shown.
            if not tracker.followup_action and tracker.latest_action_name != tracker.active_loop_name:
                hidden = bool(event and event.get("hide_rule_turn"))
            if not hidden:
                state = tracker.state()
                if states and not after_listen(state):  # the user input of the last turn shown
                    if "user" in states[-1]:
                        state["user"] = states[-1]["user"]
                    else:
                        state.pop("user", None)
                if last_shown_action:
                    state["prev_action"] = dict(last_shown_action)
                states.append(state)
        if event is not None:
            tracker.update(event)
    return states


def after_listen(state: State) -> bool:
    """Whether the user just spoke in `state` (the previous action was listening)."""
    return (state.get("prev_action") or {}).get("action_name") == ACTION_LISTEN
