"""One test story played as a conversation with the engine, and checked with Rasa's test semantics.

A user step with text sends the text (its intent and annotated entities, when given,
must be what NLU recognised); a user step with only an intent sends it as Rasa's payload
`/intent{"entity": "value"}`, bypassing NLU as `rasa test core` does. After every user step,
the bot's actions in that turn must match the story's following `action` and `bot` steps in
order; `slot_was_set` and `active_loop` steps check the conversation at that point. A story goes
on after a failing step, so every later action step is still counted, as Rasa counts them; its
later turns run on what the bot actually did. Two names follow Rasa's conventions rather than the
engine's event names:

- a knowledge-base answer matches `utter_faq` or `utter_faq/<key>` (the retrieval intent's
  response) as well as `action_answer_from_kb`;
- a hand-off is ONE step, the bot's hand-off message: `utter_out_of_scope` for out-of-scope
  messages and `utter_handoff` for every other reason; the queue notice that follows it
  (`utter_handoff_queued`) is part of the hand-off and is not listed.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.tracker import DialogueTracker
from crowddesk.bot.project.story_steps import (
    ActionStep,
    ActiveLoopStep,
    BotStep,
    SlotStep,
    Step,
    StepEntity,
    UserStep,
    freeze,
)
from crowddesk.bot.project.training_data import Story
from crowddesk.connectors.types import InboundMessage

HANDOFF_UTTERANCES = ("utter_handoff", "utter_out_of_scope")
LISTEN = "action_listen"
# Bookkeeping actions, and the hand-off's queue notice: not something a story asserts.
NOT_COMPARED = frozenset({LISTEN, "action_session_start", "utter_handoff_queued"})
CHANNEL = "rest"
# What a failing step checked; "listen" is the bot acting where the story waits for the customer.
ACTION, INTENT, ENTITIES, SLOT, ACTIVE_LOOP, LISTENING = "action", "intent", "entities", "slot", "active_loop", "listen"


@dataclass(frozen=True)
class BotAction:
    """One action the bot took, shown as `shown`, matched by any of `names`; `text` is its first
    message. Its events run from `start` to `end` (where the next compared action starts)."""

    shown: str
    names: frozenset[str]
    text: str | None
    start: int
    end: int


@dataclass(frozen=True)
class StepFailure:
    """A step that did not hold: `step` counts the story's steps as written, `index` is its position
    in the parsed steps (the story's length for "the story should have ended here")."""

    story: str
    step: int
    index: int
    source: str
    kind: str
    expected: str
    actual: str
    predicted: str  # what the bot did instead, for the failed story's `# predicted:` comment

    def __str__(self) -> str:
        return f"{self.source}: story {self.story!r}, step {self.step}: expected {self.expected}, got {self.actual}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "story": self.story,
            "step": self.step,
            "source": self.source,
            "kind": self.kind,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class StoryResult:
    story: Story
    failures: tuple[StepFailure, ...]
    actions: int  # action and bot steps
    correct_actions: int

    @property
    def failure(self) -> StepFailure | None:
        """The first failing step: where the story stopped being what the bot does."""
        return self.failures[0] if self.failures else None


@dataclass
class StoryRun:
    """One story played as one conversation with `sender`."""

    engine: Engine
    story: Story
    sender: str
    events: list[dict[str, Any]] = field(default_factory=list)
    pending: list[BotAction] = field(default_factory=list)  # this turn's actions not yet matched by a step
    cursor: int = 0  # slot and loop checks read the events before this one
    failures: list[StepFailure] = field(default_factory=list)
    actions: int = 0
    correct_actions: int = 0

    async def play(self) -> StoryResult:
        numbers = step_numbers(self.story.steps)
        for index, step in enumerate(self.story.steps):
            if isinstance(step, UserStep):
                await self._user(step, index, numbers[index])
            elif isinstance(step, (ActionStep, BotStep)):
                self._action(step, index, numbers[index])
            elif isinstance(step, SlotStep):
                self._slot(step, index, numbers[index])
            elif isinstance(step, ActiveLoopStep):
                self._active_loop(step, index, numbers[index])
            # Linear stories hold no checkpoints and no `or:` steps.
        if self.pending and self.story.steps:
            last = len(self.story.steps) - 1
            self._fail_listen(len(self.story.steps), numbers[last], self.story.steps[last].source, "the story to end")
        return StoryResult(self.story, tuple(self.failures), self.actions, self.correct_actions)

    def _fail(self, index: int, number: int, kind: str, expected: str, actual: str, predicted: str) -> None:
        source = self.story.steps[index].source
        self.failures.append(StepFailure(self.story.name, number, index, source, kind, expected, actual, predicted))

    def _fail_listen(self, index: int, number: int, source: str, expected: str) -> None:
        extra = self.pending[0].shown
        failure = StepFailure(self.story.name, number, index, source, LISTENING, expected, f"action {extra}", extra)
        self.failures.append(failure)

    async def _user(self, step: UserStep, index: int, number: int) -> None:
        message = step.text if step.text is not None else payload_text(step)
        if self.pending:
            self._fail_listen(index, number, step.source, f"the customer's next message {message!r}")
        await self.engine.handle(InboundMessage(CHANNEL, self.sender, message))
        turn_start = len(self.events)
        self.events = await asyncio.to_thread(self.engine.store.events, self.sender)
        parse = _user_parse(self.events[turn_start:])
        intent = (parse.get("intent") or {}).get("name") if parse else None
        if step.intent is not None and not _intent_matches(step.intent, intent):
            got = f"intent {intent}" if intent else "no intent (a person owns the conversation)"
            self._fail(index, number, INTENT, f"intent {step.intent}", got, f"{intent}: {message}")
        if step.text is not None and step.entities:
            found = [_parsed_entity(entity) for entity in (parse or {}).get("entities") or []]
            if Counter(found) != Counter(step.entities):
                expected, got = _describe_entities(step.entities), _describe_entities(found)
                self._fail(index, number, ENTITIES, f"entities {expected}", f"entities {got}", got)
        self.pending = await asyncio.to_thread(self._bot_actions, turn_start)
        self.cursor = self.pending[0].start if self.pending else len(self.events)

    def _action(self, step: ActionStep | BotStep, index: int, number: int) -> None:
        self.actions += 1
        expected = f"action {step.name}" if isinstance(step, ActionStep) else f"bot message {step.text!r}"
        if not self.pending:
            self._fail(index, number, ACTION, expected, "no further action in this turn", LISTEN)
            return
        actual = self.pending.pop(0)
        self.cursor = actual.end
        if isinstance(step, ActionStep):
            matched, got = step.name in actual.names, f"action {actual.shown}"
        else:
            said = (actual.text or "").strip()
            matched, got = said == step.text, f"bot message {said!r} ({actual.shown})"
        if matched:
            self.correct_actions += 1
        else:
            self._fail(index, number, ACTION, expected, got, actual.shown)

    def _slot(self, step: SlotStep, index: int, number: int) -> None:
        value = freeze(self._tracker().slots.get(step.name))
        if (value is None) if step.any_value else (value != step.value):
            expected = f"slot {step.name} " + ("set" if step.any_value else f"= {step.value!r}")
            got = f"slot {step.name} = {value!r}"
            self._fail(index, number, SLOT, expected, got, got)

    def _active_loop(self, step: ActiveLoopStep, index: int, number: int) -> None:
        active = self._tracker().active_loop_name
        if active != step.name:
            got = f"active_loop {active or 'null'}"
            self._fail(index, number, ACTIVE_LOOP, f"active_loop {step.name or 'null'}", got, got)

    def _tracker(self) -> DialogueTracker:
        return DialogueTracker.replay(self.engine.domain, self.events[: self.cursor])

    def _bot_actions(self, turn_start: int) -> list[BotAction]:
        """The compared actions of the turn whose events start at `turn_start`."""
        events = self.events
        turn = events[turn_start:]
        handoff = next((event.get("reason") for event in turn if event["event"] == "handoff"), None)
        starts = [
            position
            for position in range(turn_start, len(events))
            if events[position]["event"] == "action" and str(events[position].get("name")) not in NOT_COMPARED
        ]
        actions = []
        for start, end in zip(starts, [*starts[1:], len(events)]):
            name = str(events[start].get("name"))
            own = events[start:end]
            text = next((str(event.get("text") or "") for event in own if event["event"] == "bot"), None)
            if name == ANSWER_ACTION:
                shown, names = self._kb_answer(own)
            elif name in HANDOFF_UTTERANCES and handoff:
                shown, names = f"{name} (hand-off: {handoff})", frozenset({name})
            else:
                shown, names = name, frozenset({name})
            actions.append(BotAction(shown, names, text, start, end))
        if handoff and not any(action.names & set(HANDOFF_UTTERANCES) for action in actions):
            # The domain has no hand-off response, so the engine said nothing; the hand-off happened.
            shown = f"utter_handoff (hand-off: {handoff})"
            actions.append(BotAction(shown, frozenset({"utter_handoff"}), None, len(events), len(events)))
        return actions

    def _kb_answer(self, events: Sequence[dict[str, Any]]) -> tuple[str, frozenset[str]]:
        """The answer's entry is in the bot message that follows the action event."""
        message = next((event for event in events if event["event"] == "bot"), {})
        entry_id = ((message.get("data") or {}).get("custom") or {}).get("kb_entry", "")
        entry = self.engine.knowledge_base.entry(entry_id)
        if entry is None or not entry.intent:
            return f"{ANSWER_ACTION} ({entry_id})", frozenset({ANSWER_ACTION})
        base = entry.intent.split("/", 1)[0]
        return f"utter_{entry.intent}", frozenset({ANSWER_ACTION, f"utter_{entry.intent}", f"utter_{base}"})


def step_numbers(steps: Sequence[Step]) -> list[int]:
    """1-based step numbers as the story is written: the slots of one `slot_was_set` share theirs."""
    numbers: list[int] = []
    for position, step in enumerate(steps):
        same = position > 0 and isinstance(step, SlotStep) and step.source == steps[position - 1].source
        numbers.append((numbers[-1] if numbers else 0) + (0 if same else 1))
    return numbers


def payload_text(step: UserStep) -> str:
    """Rasa's `/intent{"entity": "value"}` for an intent-only step; an entity the story names
    without a value is sent as null, so the dialogue still sees that it was there."""
    entities = {entity.entity: entity.value for entity in step.entities}
    return f"/{step.intent}" + (json.dumps(entities, ensure_ascii=False) if entities else "")


def _user_parse(events: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    """What NLU made of the turn's message; None when no one parsed it (a person owns the conversation)."""
    message = next((event for event in events if event["event"] == "user"), None)
    return (message or {}).get("parse_data") or None


def _parsed_entity(entity: dict[str, Any]) -> StepEntity:
    # Values compare as text, as Rasa's evaluation compares them with the test story's strings.
    return StepEntity(str(entity.get("entity")), str(entity.get("value")), entity.get("role"), entity.get("group"))


def _describe_entities(entities: Iterable[StepEntity]) -> str:
    """`city='Berlin' (role from)`, in a stable order; `none` for no entities."""
    described = []
    for entity in entities:
        extras = [f"{label} {value}" for label, value in (("role", entity.role), ("group", entity.group)) if value]
        described.append(f"{entity.entity}={entity.value!r}" + (f" ({', '.join(extras)})" if extras else ""))
    return ", ".join(sorted(described)) or "none"


def _intent_matches(expected: str, actual: str | None) -> bool:
    """`faq` (a retrieval intent) matches any `faq/<key>`; other names must be equal."""
    return actual is not None and (actual == expected or actual.startswith(f"{expected}/"))
