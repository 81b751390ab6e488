"""The steps of Rasa 3.x stories, rules and test stories, and their parser.

A step is what one turn of a conversation shows: the customer's message (`UserStep`), the bot's
action or end-to-end text, a slot being set, a form (loop) starting or ending, a checkpoint
joining stories, or `or:` alternatives. Steps are frozen and compare without their `source`,
so the dialogue layer can key tables by them.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from crowddesk.bot.project.annotations import strip_annotations
from crowddesk.bot.project.yaml_files import (
    FileWarning,
    YamlFile,
    item_line,
    key_line,
    plain,
    require_mapping,
    require_sequence,
    require_str,
    value_line,
)

# The kinds of step, by the key that introduces them (a user step by `intent` and/or `user`).
USER, ACTION, BOT, SLOT_WAS_SET, ACTIVE_LOOP, CHECKPOINT, OR = (
    "user",
    "action",
    "bot",
    "slot_was_set",
    "active_loop",
    "checkpoint",
    "or",
)
STORY_STEP_KINDS = frozenset({USER, ACTION, BOT, SLOT_WAS_SET, ACTIVE_LOOP, CHECKPOINT, OR})
RULE_STEP_KINDS = frozenset({USER, ACTION, SLOT_WAS_SET, ACTIVE_LOOP, OR})
CONDITION_STEP_KINDS = frozenset({SLOT_WAS_SET, ACTIVE_LOOP})
_USER_KEYS = ("intent", "user", "entities", "metadata")
# A checkpoint may carry slot conditions; every other step holds its own key (and metadata).
_CHECKPOINT_KEYS = (CHECKPOINT, SLOT_WAS_SET, "metadata")
_INTENT_PREFIX = "/"


class StepEntity(NamedTuple):
    """An entity the customer's message carries; `value` None means "any value" (a bare name)."""

    entity: str
    value: str | None = None
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class UserStep:
    """The customer's message: its intent (None for an end-to-end step with text only), its text
    (None when only the intent is given) and its entities."""

    intent: str | None
    text: str | None = None
    entities: tuple[StepEntity, ...] = ()
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class ActionStep:
    name: str
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class BotStep:
    """An end-to-end step: the bot's text instead of an action name."""

    text: str
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class SlotStep:
    """A slot was set to `value` (lists frozen to tuples), or to any value when `any_value`."""

    name: str
    value: Hashable = None
    any_value: bool = False
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class ActiveLoopStep:
    """A form (loop) became active, or none is when `name` is None (`active_loop: null`)."""

    name: str | None
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class CheckpointStep:
    """Joins stories: one ending in a checkpoint continues with every story starting with it;
    `slots` are conditions on the slots at that point."""

    name: str
    slots: tuple[SlotStep, ...] = ()
    source: str = field(default="", compare=False)


@dataclass(frozen=True)
class OrStep:
    """Any one of `alternatives` may happen here (a slot_was_set alternative gives one per slot)."""

    alternatives: tuple[UserStep | SlotStep, ...]
    source: str = field(default="", compare=False)


Step = UserStep | ActionStep | BotStep | SlotStep | ActiveLoopStep | CheckpointStep | OrStep


def freeze(value: Any) -> Hashable:
    """A slot value as a hashable one: lists become tuples, mappings sorted (key, value) tuples."""
    value = plain(value)
    if isinstance(value, list):
        return tuple(freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((key, freeze(item)) for key, item in value.items()))
    return value


@dataclass
class StepParser:
    """Parses the steps of one file; entries Rasa ignores are skipped with a warning in `warnings`."""

    file: YamlFile
    warnings: list[FileWarning] = field(default_factory=list)

    def steps(self, parent: Any, field_name: str, key: str, kinds: frozenset[str], what: str) -> tuple[Step, ...]:
        """The steps under `parent[field_name]`; `what` names the container ("a rule") in errors."""
        items = require_sequence(self.file, parent.get(field_name), key, key_line(parent, field_name))
        if not items:
            raise self.file.error(key_line(parent, field_name), key, "expected at least one step")
        steps: list[Step] = []
        for index, node in enumerate(items):
            steps.extend(self._step(node, item_line(items, index), f"{key}[{index}]", kinds, what))
        return tuple(steps)

    def _step(self, node: Any, line: int | None, key: str, kinds: frozenset[str], what: str) -> list[Step]:
        step = require_mapping(self.file, node, key, line)
        kind = _kind_of(step)
        if kind is None:
            if set(step) == {"metadata"}:
                return []  # Rasa skips a step holding only metadata
            raise self.file.error(
                line, key, f"unsupported step with keys {', '.join(map(str, step))}; expected one of: {_listed(kinds)}"
            )
        if kind not in kinds:
            raise self.file.error(
                line, key, f"a `{kind}` step is not allowed in {what}; expected one of: {_listed(kinds)}"
            )
        source = self.file.source(line)
        if kind == USER:
            return [self._user(step, line, key, source)]
        self._reject_extra_keys(step, _CHECKPOINT_KEYS if kind == CHECKPOINT else (kind, "metadata"), line, key)
        if kind == SLOT_WAS_SET:
            return [*self._slots(step[SLOT_WAS_SET], line, f"{key}.{SLOT_WAS_SET}", source)]
        if kind == ACTIVE_LOOP:
            loop = step[ACTIVE_LOOP]
            name = None if loop is None else require_str(self.file, loop, f"{key}.{ACTIVE_LOOP}", line)
            return [ActiveLoopStep(name, source)]
        if kind == CHECKPOINT:
            return [self._checkpoint(step, line, key, source)]
        if kind == OR:
            return [self._or(step, line, key, source)]
        text = require_str(self.file, step[kind], f"{key}.{kind}", line).strip()
        return [ActionStep(text, source) if kind == ACTION else BotStep(text, source)]

    def _reject_extra_keys(self, step: Any, allowed: tuple[str, ...], line: int | None, key: str) -> None:
        extra = [str(name) for name in step if name not in allowed]
        if extra:
            raise self.file.error(
                line,
                key,
                f"unsupported step with keys {', '.join(map(str, step))}; a step has exactly one of: "
                f"{_listed(STORY_STEP_KINDS)}",
            )

    def _user(self, step: Any, line: int | None, key: str, source: str) -> UserStep:
        self._reject_extra_keys(step, _USER_KEYS, line, key)
        intent = None
        if "intent" in step:
            intent = require_str(self.file, step["intent"], f"{key}.intent", value_line(step, "intent")).strip()
            intent = intent.removeprefix(_INTENT_PREFIX)
        if "user" not in step:
            entities = self._entities(step, key) if step.get("entities") is not None else ()
            return UserStep(intent, None, entities, source)
        raw = require_str(self.file, step["user"], f"{key}.user", value_line(step, "user")).strip()
        text, annotations = strip_annotations(self.file, raw, value_line(step, "user"), f"{key}.user")
        if "entities" in step:
            self.warnings.append(
                self.file.warning(
                    key_line(step, "entities"),
                    f"{key}.entities",
                    "ignored: with `user` text, the entities are the ones annotated in the text (as in Rasa)",
                )
            )
        entities = tuple(
            StepEntity(a.entity, a.value if a.value is not None else a.surface, a.role, a.group) for a in annotations
        )
        return UserStep(intent, text, entities, source)

    def _entities(self, step: Any, key: str) -> tuple[StepEntity, ...]:
        """`entities:` of an intent step in Rasa's forms: names, `{entity: value}` (with optional
        `role`/`group` keys beside it), or `{entity: name, value: ..., role: ..., group: ...}`."""
        items = require_sequence(self.file, step["entities"], f"{key}.entities", key_line(step, "entities"))
        entities: list[StepEntity] = []
        for index, item in enumerate(items):
            item_key, line = f"{key}.entities[{index}]", item_line(items, index)
            if not isinstance(item, dict):
                entities.append(StepEntity(require_str(self.file, item, item_key, line)))
                continue
            texts = {name: self._scalar(item[name], f"{item_key}.{name}", line) for name in item}
            if "entity" in texts:
                unknown = sorted(set(texts) - {"entity", "value", "role", "group"})
                if unknown:
                    raise self.file.error(line, item_key, f"unknown keys {', '.join(unknown)} beside `entity`")
                entities.append(
                    StepEntity(texts["entity"] or "", texts.get("value"), texts.get("role"), texts.get("group"))
                )
                continue
            names = [name for name in texts if name not in ("role", "group")]
            if len(names) != 1:
                raise self.file.error(line, item_key, "expected one `entity_name: value`, with optional role and group")
            entities.append(StepEntity(names[0], texts[names[0]], texts.get("role"), texts.get("group")))
        if any(not entity.entity for entity in entities):
            raise self.file.error(key_line(step, "entities"), f"{key}.entities", "an entity needs a name")
        return tuple(entities)

    def _scalar(self, value: Any, key: str, line: int | None) -> str | None:
        if value is None:
            return None
        if isinstance(value, (dict, list)):
            raise self.file.error(line, key, "expected a single value")
        return str(plain(value))

    def _slots(self, node: Any, line: int | None, key: str, source: str, *, named_only: bool = False) -> list[SlotStep]:
        items = require_sequence(self.file, node, key, line)
        slots: list[SlotStep] = []
        for index, item in enumerate(items):
            if isinstance(item, dict):
                slots.extend(SlotStep(str(name), freeze(value), False, source) for name, value in item.items())
            elif named_only:
                raise self.file.error(item_line(items, index), f"{key}[{index}]", "expected `slot_name: value`")
            else:
                name = require_str(self.file, item, f"{key}[{index}]", item_line(items, index))
                slots.append(SlotStep(name, None, True, source))
        return slots

    def _checkpoint(self, step: Any, line: int | None, key: str, source: str) -> CheckpointStep:
        name = require_str(self.file, step[CHECKPOINT], f"{key}.{CHECKPOINT}", line).strip()
        slots: list[SlotStep] = []
        if step.get(SLOT_WAS_SET) is not None:
            slots = self._slots(step[SLOT_WAS_SET], line, f"{key}.{SLOT_WAS_SET}", source, named_only=True)
        return CheckpointStep(name, tuple(slots), source)

    def _or(self, step: Any, line: int | None, key: str, source: str) -> OrStep:
        items = require_sequence(self.file, step[OR], f"{key}.{OR}", line)
        alternatives: list[UserStep | SlotStep] = []
        for index, node in enumerate(items):
            item_key, item_at = f"{key}.{OR}[{index}]", item_line(items, index)
            item = require_mapping(self.file, node, item_key, item_at)
            kind = _kind_of(item)
            if kind == USER:
                alternatives.append(self._user(item, item_at, item_key, self.file.source(item_at)))
            elif kind == SLOT_WAS_SET:
                self._reject_extra_keys(item, (SLOT_WAS_SET,), item_at, item_key)
                alternatives.extend(
                    self._slots(item[SLOT_WAS_SET], item_at, f"{item_key}.{SLOT_WAS_SET}", self.file.source(item_at))
                )
            else:
                raise self.file.error(
                    item_at, item_key, "an `or` alternative is an intent/user step or a slot_was_set step"
                )
        if len(alternatives) < 2:
            raise self.file.error(line, f"{key}.{OR}", "an `or` step needs at least two alternatives")
        return OrStep(tuple(alternatives), source)


def _kind_of(step: Any) -> str | None:
    """The step's kind by Rasa's precedence (user before or, action, checkpoint, slot_was_set)."""
    if "intent" in step or "user" in step:
        return USER
    return next((kind for kind in (OR, ACTION, BOT, CHECKPOINT, SLOT_WAS_SET, ACTIVE_LOOP) if kind in step), None)


def _listed(kinds: frozenset[str]) -> str:
    order = (USER, ACTION, BOT, SLOT_WAS_SET, ACTIVE_LOOP, CHECKPOINT, OR)
    return ", ".join("intent/user" if kind == USER else kind for kind in order if kind in kinds)
