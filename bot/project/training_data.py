"""Training data (Rasa 3.x `data/*.yml`): NLU examples with entity annotations, rules, stories."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml.scalarstring import LiteralScalarString

from crowddesk.bot.project.annotations import strip_annotations
from crowddesk.bot.project.domain import Response, parse_responses, response_sources
from crowddesk.bot.project.story_steps import (
    CONDITION_STEP_KINDS,
    RULE_STEP_KINDS,
    STORY_STEP_KINDS,
    Step,
    StepParser,
)
from crowddesk.bot.project.yaml_files import (
    FileWarning,
    ProjectFileError,
    YamlFile,
    item_line,
    key_line,
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
TEST_STORY_KEYS = ("version", "stories", "rules")


@dataclass(frozen=True)
class RegexPattern:
    name: str
    pattern: str
    source: str = ""


@dataclass(frozen=True)
class Rule:
    """A rule: `condition` (slot_was_set and active_loop steps) must hold before `steps` apply."""

    name: str
    steps: tuple[Step, ...]
    conversation_start: bool
    condition: tuple[Step, ...]
    source: str
    wait_for_user_input: bool = True


@dataclass(frozen=True)
class Story:
    name: str
    steps: tuple[Step, ...]
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
    warnings: list[FileWarning] = field(default_factory=list, compare=False)

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
        merged.warnings.extend(part.warnings)
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
    parser = StepParser(file, data.warnings)
    if top.get("nlu") is not None:
        _parse_nlu(file, require_sequence(file, top["nlu"], "nlu", key_line(top, "nlu")), data)
    if top.get("rules") is not None:
        rules = require_sequence(file, top["rules"], "rules", key_line(top, "rules"))
        data.rules = [_parse_rule(parser, rules, index) for index in range(len(rules))]
    data.stories = _parse_stories(parser, top)
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
    text, annotations = strip_annotations(file, raw, line, key)
    if not text.strip():
        raise file.error(line, key, f"example {raw!r} has no text")
    for annotation in annotations:
        if annotation.value is not None and annotation.value != annotation.surface:
            _add_synonym(data, annotation.surface, annotation.value, file.source(line))
    spans = tuple(
        EntitySpan(entity=a.entity, start=a.start, end=a.end, value=a.value or a.surface, role=a.role, group=a.group)
        for a in annotations
    )
    return TrainingExample(text=text, intent=intent, entities=spans, source=file.source(line))


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


def load_test_stories(path: Path, *, root: Path | None = None) -> tuple[list[Story], list[FileWarning]]:
    """The stories of a test file (`tests/test_stories.yml`), parsed like training stories."""
    file = read_yaml(path, root)
    top = require_mapping(file, file.content, "test stories", 1)
    reject_unknown_keys(file, top, TEST_STORY_KEYS, "")
    parser = StepParser(file)
    if top.get("rules") is not None:  # as `rasa test` does: rules are training data, not tests
        parser.warnings.append(
            file.warning(key_line(top, "rules"), "rules", "ignored: a test file's rules are not run as tests")
        )
    return _parse_stories(parser, top), parser.warnings


def _parse_stories(parser: StepParser, top: Any) -> list[Story]:
    if top.get("stories") is None:
        return []
    stories = require_sequence(parser.file, top["stories"], "stories", key_line(top, "stories"))
    return [_parse_story(parser, stories, index) for index in range(len(stories))]


def _parse_rule(parser: StepParser, rules: Any, index: int) -> Rule:
    file = parser.file
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
    condition: tuple[Step, ...] = ()
    if node.get("condition") is not None:
        condition = parser.steps(node, "condition", f"{key}.condition", CONDITION_STEP_KINDS, "a rule's condition")
    flags = {
        flag: require_bool(file, node[flag], f"{key}.{flag}", value_line(node, flag))
        for flag in ("conversation_start", "wait_for_user_input")
        if flag in node
    }
    return Rule(
        name=name,
        steps=parser.steps(node, "steps", f"{key}.steps", RULE_STEP_KINDS, "a rule"),
        conversation_start=flags.get("conversation_start", False),
        condition=condition,
        source=file.source(line),
        wait_for_user_input=flags.get("wait_for_user_input", True),
    )


def _parse_story(parser: StepParser, stories: Any, index: int) -> Story:
    file = parser.file
    line = item_line(stories, index)
    key = f"stories[{index}]"
    node = require_mapping(file, stories[index], key, line)
    reject_unknown_keys(file, node, ("story", "steps", "metadata"), key)
    return Story(
        name=require_str(file, node.get("story"), f"{key}.story", line),
        steps=parser.steps(node, "steps", f"{key}.steps", STORY_STEP_KINDS, "a story"),
        source=file.source(line),
    )
