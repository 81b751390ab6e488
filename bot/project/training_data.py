"""Training data (Rasa 3.x `data/*.yml`): NLU examples with entity annotations, rules, stories."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.scalarstring import LiteralScalarString

from crowddesk.bot.project.domain import Response, parse_responses, response_sources
from crowddesk.bot.project.yaml_files import (
    ProjectFileError,
    YamlFile,
    item_line,
    key_line,
    plain,
    read_yaml,
    reject_unknown_keys,
    require_bool,
    require_mapping,
    require_sequence,
    require_str,
    split_source,
    value_line,
)
from crowddesk.nlu.types import EntitySpan, TrainingExample

DATA_KEYS = ("version", "nlu", "rules", "stories", "responses")
NLU_KINDS = ("intent", "synonym", "regex", "lookup")
STEP_KINDS = ("intent", "action", "slot_was_set", "active_loop")
CONDITION_KINDS = ("slot_was_set", "active_loop")

# `[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}` and `[text][{...}, {...}]`.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+)\]"
    r"(?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\})|(?P<json_list>\[\s*\{.*?\}\s*\]))"
)
_ANNOTATION_JSON_KEYS = ("entity", "value", "role", "group")


@dataclass(frozen=True)
class RegexPattern:
    name: str
    pattern: str
    source: str = ""


@dataclass(frozen=True)
class RuleStep:
    """One rule/story step. `value`: entities of an intent step, the value of a slot_was_set step
    (None also for a bare slot name, meaning "any value"); an active_loop step's `name` is ""
    for `active_loop: null` (the loop was deactivated)."""

    kind: str
    name: str
    value: Any
    source: str


@dataclass
class Rule:
    name: str
    steps: list[RuleStep]
    conversation_start: bool
    condition: list[RuleStep]
    source: str
    wait_for_user_input: bool = True


@dataclass
class Story:
    name: str
    steps: list[RuleStep]
    source: str


@dataclass
class TrainingData:
    """Everything under data/. `sources` maps "synonyms.<variant>" and "responses.<name>" to the
    "path:line" that defined them, so merges can report where a conflict came from."""

    examples: list[TrainingExample] = field(default_factory=list)
    synonyms: dict[str, str] = field(default_factory=dict)
    regexes: list[RegexPattern] = field(default_factory=list)
    lookups: dict[str, list[str]] = field(default_factory=dict)
    rules: list[Rule] = field(default_factory=list)
    stories: list[Story] = field(default_factory=list)
    responses: dict[str, list[Response]] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)

    def intents(self) -> list[str]:
        """Intents that have examples, in first-seen order (retrieval intents as `faq/<key>`)."""
        return list(dict.fromkeys(example.intent for example in self.examples))


def find_training_files(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.rglob("*") if p.suffix in (".yml", ".yaml") and p.is_file())


def load_training_data(paths: Iterable[Path], *, root: Path | None = None) -> TrainingData:
    return merge_training_data([load_training_file(path, root=root) for path in paths])


def merge_training_data(parts: Iterable[TrainingData]) -> TrainingData:
    merged = TrainingData()
    for part in parts:
        merged.examples.extend(part.examples)
        merged.regexes.extend(part.regexes)
        merged.rules.extend(part.rules)
        merged.stories.extend(part.stories)
        merged.files.extend(part.files)
        for name, items in part.lookups.items():
            merged.lookups.setdefault(name, []).extend(items)
        for variant, canonical in part.synonyms.items():
            _add_synonym(merged, variant, canonical, part.sources[f"synonyms.{variant}"])
        for name, variations in part.responses.items():
            key = f"responses.{name}"
            if name in merged.responses:
                path, line = split_source(part.sources[key])
                raise ProjectFileError(Path(path), line, key, f"already defined at {merged.sources[key]}")
            merged.responses[name] = variations
            merged.sources[key] = part.sources[key]
    return merged


def load_training_file(path: Path, *, root: Path | None = None) -> TrainingData:
    file = read_yaml(path, root)
    top = file.content
    if not isinstance(top, dict) or not any(key in top for key in DATA_KEYS[1:]):
        raise file.error(1, None, "not a training data file: expected nlu, rules, stories or responses")
    reject_unknown_keys(file, top, DATA_KEYS, "")
    data = TrainingData(files=[path])
    if top.get("nlu") is not None:
        _parse_nlu(file, require_sequence(file, top["nlu"], "nlu", key_line(top, "nlu")), data)
    if top.get("rules") is not None:
        rules = require_sequence(file, top["rules"], "rules", key_line(top, "rules"))
        data.rules = [_parse_rule(file, rules, index) for index in range(len(rules))]
    if top.get("stories") is not None:
        stories = require_sequence(file, top["stories"], "stories", key_line(top, "stories"))
        data.stories = [_parse_story(file, stories, index) for index in range(len(stories))]
    data.responses = parse_responses(file, top.get("responses"), key_line(top, "responses"), "responses")
    data.sources.update(response_sources(file, top.get("responses")))
    return data


def _parse_nlu(file: YamlFile, items: Any, data: TrainingData) -> None:
    for index, node in enumerate(items):
        key = f"nlu[{index}]"
        item = require_mapping(file, node, key, item_line(items, index))
        kinds = [kind for kind in NLU_KINDS if kind in item]
        if len(kinds) != 1:
            raise file.error(item_line(items, index), key, f"expected exactly one of: {', '.join(NLU_KINDS)}")
        kind = kinds[0]
        reject_unknown_keys(file, item, (kind, "examples", "metadata"), key)
        name = require_str(file, item[kind], f"{key}.{kind}", key_line(item, kind))
        lines = _example_lines(file, item, f"{key}.examples")
        if kind == "intent":
            for text, line in lines:
                data.examples.append(_parse_example(file, text, name, line, f"{key}.examples", data))
        elif kind == "synonym":
            for text, line in lines:
                _add_synonym(data, text, name, file.source(line))
        elif kind == "regex":
            data.regexes.extend(RegexPattern(name, text, file.source(line)) for text, line in lines)
        else:
            data.lookups.setdefault(name, []).extend(text for text, _ in lines)


def _example_lines(file: YamlFile, item: Any, key: str) -> list[tuple[str, int | None]]:
    """The `- example` lines of an `examples:` entry, each with its own 1-based line number."""
    node = item.get("examples")
    if isinstance(node, list):
        return [
            (
                _list_example_text(file, entry, item_line(node, index), f"{key}[{index}]"),
                item_line(node, index),
            )
            for index, entry in enumerate(node)
        ]
    if not isinstance(node, str) or not node.strip():
        raise file.error(key_line(item, "examples"), key, "expected a block of `- example` lines")
    # Only a literal block (`|`) keeps its lines as written; other scalar styles fold them.
    first_line = value_line(item, "examples")
    offset = 1 if isinstance(node, LiteralScalarString) else 0
    examples: list[tuple[str, int | None]] = []
    for number, raw in enumerate(str(node).splitlines()):
        line = first_line + offset * (1 + number) if first_line is not None else None
        stripped = raw.strip()
        if not stripped:
            continue
        if not stripped.startswith("-") or not stripped[1:].strip():
            raise file.error(line, key, f"expected a line like `- example`, got {stripped!r}")
        examples.append((stripped[1:].strip(), line))
    return examples


def _list_example_text(file: YamlFile, entry: Any, line: int | None, key: str) -> str:
    if isinstance(entry, dict):
        reject_unknown_keys(file, entry, ("text", "metadata"), key)
        return require_str(file, entry.get("text"), f"{key}.text", line)
    return require_str(file, entry, key, line)


def _parse_example(
    file: YamlFile, raw: str, intent: str, line: int | None, key: str, data: TrainingData
) -> TrainingExample:
    """Strip entity annotations from `raw`, keeping their offsets in the cleaned text."""
    text = ""
    spans: list[EntitySpan] = []
    position = 0
    for match in _ANNOTATION.finditer(raw):
        text += raw[position : match.start()]
        start, surface = len(text), match["text"]
        text += surface
        for entity, value in _annotation_entities(file, match, line, key):
            spans.append(EntitySpan(entity=entity, start=start, end=len(text), value=value or surface))
            if value is not None and value != surface:
                _add_synonym(data, surface, value, file.source(line))
        position = match.end()
    text += raw[position:]
    if not text.strip():
        raise file.error(line, key, f"example {raw!r} has no text")
    return TrainingExample(text=text, intent=intent, entities=tuple(spans), source=file.source(line))


def _annotation_entities(
    file: YamlFile, match: re.Match[str], line: int | None, key: str
) -> list[tuple[str, str | None]]:
    if match["short"] is not None:
        entity, _, value = match["short"].partition(":")
        if not entity.strip():
            raise file.error(line, key, f"annotation {match[0]!r} has no entity name")
        return [(entity.strip(), value.strip() or None)]
    raw_json = match["json"] or match["json_list"]
    try:
        parsed = json.loads(raw_json)
    except json.JSONDecodeError as error:
        raise file.error(line, key, f"annotation {match[0]!r} is not valid JSON: {error.msg}") from error
    return [
        _json_entity(file, entry, match[0], line, key) for entry in (parsed if isinstance(parsed, list) else [parsed])
    ]


def _json_entity(file: YamlFile, entry: Any, annotation: str, line: int | None, key: str) -> tuple[str, str | None]:
    if not isinstance(entry, dict) or not isinstance(entry.get("entity"), str) or not entry["entity"]:
        raise file.error(line, key, f'annotation {annotation!r} needs an "entity" name')
    unknown = sorted(set(entry) - set(_ANNOTATION_JSON_KEYS))
    if unknown:
        raise file.error(line, key, f"annotation {annotation!r} has unknown keys: {', '.join(unknown)}")
    value = entry.get("value")
    if value is not None and not isinstance(value, str):
        raise file.error(line, key, f'annotation {annotation!r}: "value" must be a string')
    return entry["entity"], value


def _add_synonym(data: TrainingData, variant: str, canonical: str, source: str) -> None:
    normalised = variant.lower()
    if normalised == canonical:
        return
    known = data.synonyms.get(normalised)
    if known is not None and known != canonical:
        path, line = split_source(source)
        raise ProjectFileError(
            Path(path),
            line,
            f"synonyms.{normalised}",
            f"{variant!r} maps to {canonical!r} here but to {known!r} at {data.sources[f'synonyms.{normalised}']}",
        )
    data.synonyms[normalised] = canonical
    data.sources.setdefault(f"synonyms.{normalised}", source)


def _parse_rule(file: YamlFile, rules: Any, index: int) -> Rule:
    line = item_line(rules, index)
    key = f"rules[{index}]"
    node = require_mapping(file, rules[index], key, line)
    reject_unknown_keys(
        file,
        node,
        ("rule", "steps", "conversation_start", "condition", "wait_for_user_input", "metadata"),
        key,
    )
    name = require_str(file, node.get("rule"), f"{key}.rule", line)
    condition: list[RuleStep] = []
    if node.get("condition") is not None:
        condition = _parse_steps(file, node, "condition", f"{key}.condition", CONDITION_KINDS)
    flags = {
        flag: require_bool(file, node[flag], f"{key}.{flag}", value_line(node, flag))
        for flag in ("conversation_start", "wait_for_user_input")
        if flag in node
    }
    return Rule(
        name=name,
        steps=_parse_steps(file, node, "steps", f"{key}.steps", STEP_KINDS),
        conversation_start=flags.get("conversation_start", False),
        condition=condition,
        source=file.source(line),
        wait_for_user_input=flags.get("wait_for_user_input", True),
    )


def _parse_story(file: YamlFile, stories: Any, index: int) -> Story:
    line = item_line(stories, index)
    key = f"stories[{index}]"
    node = require_mapping(file, stories[index], key, line)
    reject_unknown_keys(file, node, ("story", "steps", "metadata"), key)
    return Story(
        name=require_str(file, node.get("story"), f"{key}.story", line),
        steps=_parse_steps(file, node, "steps", f"{key}.steps", STEP_KINDS),
        source=file.source(line),
    )


def _parse_steps(file: YamlFile, parent: Any, field_name: str, key: str, kinds: tuple[str, ...]) -> list[RuleStep]:
    items = require_sequence(file, parent.get(field_name), key, key_line(parent, field_name))
    if not items:
        raise file.error(key_line(parent, field_name), key, "expected at least one step")
    steps: list[RuleStep] = []
    for index, node in enumerate(items):
        steps.extend(_parse_step(file, node, item_line(items, index), f"{key}[{index}]", kinds))
    return steps


def _parse_step(file: YamlFile, node: Any, line: int | None, key: str, kinds: tuple[str, ...]) -> list[RuleStep]:
    step = require_mapping(file, node, key, line)
    present = [kind for kind in kinds if kind in step]
    extra = [str(name) for name in step if name not in kinds and not (name == "entities" and "intent" in step)]
    if len(present) != 1 or extra:
        raise file.error(
            line,
            key,
            f"unsupported step with keys {', '.join(map(str, step))}; a step has exactly one of: {', '.join(kinds)}",
        )
    kind = present[0]
    source = file.source(line)
    if kind == "slot_was_set":
        return _slot_steps(file, step["slot_was_set"], line, f"{key}.slot_was_set", source)
    if kind == "active_loop":
        loop = step["active_loop"]
        name = "" if loop is None else require_str(file, loop, f"{key}.active_loop", line)
        return [RuleStep("active_loop", name, None, source)]
    name = require_str(file, step[kind], f"{key}.{kind}", line)
    entities = plain(step.get("entities")) if kind == "intent" else None
    return [RuleStep(kind, name, entities, source)]


def _slot_steps(file: YamlFile, node: Any, line: int | None, key: str, source: str) -> list[RuleStep]:
    items = require_sequence(file, node, key, line)
    steps: list[RuleStep] = []
    for index, item in enumerate(items):
        if isinstance(item, dict):
            steps.extend(RuleStep("slot_was_set", str(slot), plain(value), source) for slot, value in item.items())
        else:
            slot = require_str(file, item, f"{key}[{index}]", item_line(items, index))
            steps.append(RuleStep("slot_was_set", slot, None, source))
    return steps
