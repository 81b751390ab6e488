"""Reading evaluation data: labelled messages, KB queries and conversation test stories.

Every reader reports a bad file as a `ProjectFileError` naming the file, the line and the column
or key, like the project's own files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crowddesk.bot.project.training_data import load_training_file
from crowddesk.bot.project.yaml_files import (
    ProjectFileError,
    YamlFile,
    display_path,
    item_line,
    key_line,
    plain,
    read_yaml,
    reject_unknown_keys,
    require_mapping,
    require_sequence,
    require_str,
)
from crowddesk.nlu.types import TrainingExample

CSV_SUFFIXES = (".csv",)
YAML_SUFFIXES = (".yml", ".yaml")
# Accepted CSV headers per field; BANKING77 ships `text,category`.
MESSAGE_COLUMNS = {"text": ("text",), "intent": ("intent", "category")}
QUERY_COLUMNS = {"query": ("query",), "entry_id": ("entry_id",)}
STORY_KEYS = ("story", "steps", "metadata")
STEP_KEYS = ("user", "intent", "action", "slot_was_set")


@dataclass(frozen=True)
class KBQuery:
    """A customer question and the id of the KB entry that answers it."""

    query: str
    entry_id: str
    source: str  # "file:line"


@dataclass(frozen=True)
class UserTurn:
    """`- user: text` (+ optional `intent: name`): send the text, check the recognised intent."""

    text: str
    intent: str | None
    number: int  # 1-based position among the story's steps
    source: str


@dataclass(frozen=True)
class ExpectedAction:
    """`- action: name`: the bot's next action in this turn."""

    name: str
    number: int
    source: str


@dataclass(frozen=True)
class ExpectedSlot:
    """One slot of `- slot_was_set:`; `value` None means "set to anything"."""

    slot: str
    value: Any
    any_value: bool
    number: int
    source: str


StoryStep = UserTurn | ExpectedAction | ExpectedSlot


@dataclass(frozen=True)
class ConversationStory:
    name: str
    steps: tuple[StoryStep, ...]
    source: str


def load_labelled_messages(path: Path, *, root: Path | None = None) -> list[TrainingExample]:
    """Messages with their intents from a Rasa nlu.yml or a CSV with `text,intent` columns."""
    if path.suffix.lower() in CSV_SUFFIXES:
        return [
            TrainingExample(text=row["text"], intent=row["intent"], source=source)
            for source, row in _csv_rows(path, MESSAGE_COLUMNS, root)
        ]
    _require_suffix(path, root, (*CSV_SUFFIXES, *YAML_SUFFIXES))
    examples = load_training_file(path, root=root).examples
    if not examples:
        raise ProjectFileError(display_path(path, root), None, None, "no `intent:` examples in this file")
    return examples


def load_kb_queries(path: Path, *, root: Path | None = None) -> list[KBQuery]:
    """Queries labelled with their KB entry, from a CSV (`query,entry_id`) or a YAML list."""
    if path.suffix.lower() in CSV_SUFFIXES:
        queries = [
            KBQuery(row["query"], row["entry_id"], source) for source, row in _csv_rows(path, QUERY_COLUMNS, root)
        ]
    else:
        _require_suffix(path, root, (*CSV_SUFFIXES, *YAML_SUFFIXES))
        queries = _yaml_queries(read_yaml(path, root))
    if not queries:
        raise ProjectFileError(display_path(path, root), None, None, "no queries in this file")
    return queries


def load_conversation_stories(path: Path, *, root: Path | None = None) -> list[ConversationStory]:
    """Rasa test stories (`tests/test_stories.yml`): `stories:` whose steps are `user` turns,
    `action`s and `slot_was_set` checks."""
    file = read_yaml(path, root)
    top = require_mapping(file, file.content, "stories file", 1)
    reject_unknown_keys(file, top, ("version", "stories"), "")
    stories = require_sequence(file, top.get("stories"), "stories", key_line(top, "stories"))
    if not stories:
        raise file.error(key_line(top, "stories"), "stories", "expected at least one story")
    return [_story(file, stories, index) for index in range(len(stories))]


def _require_suffix(path: Path, root: Path | None, suffixes: tuple[str, ...]) -> None:
    if path.suffix.lower() not in suffixes:
        raise ProjectFileError(
            display_path(path, root),
            None,
            None,
            f"unsupported file type {path.suffix or '(none)'!r}; expected one of: {', '.join(suffixes)}",
        )


def _csv_rows(
    path: Path, columns: Mapping[str, tuple[str, ...]], root: Path | None
) -> Iterator[tuple[str, dict[str, str]]]:
    """("file:line", {field: value}) per data row; every field must be present and non-empty."""
    shown = display_path(path, root)
    try:
        handle = path.open(encoding="utf-8-sig", newline="")
    except OSError as error:
        raise ProjectFileError(shown, None, None, f"cannot read file: {error}") from error
    with handle:
        reader = csv.reader(handle)
        header = [name.strip().lower() for name in next(reader, [])]
        positions: dict[str, int] = {}
        for field, accepted in columns.items():
            found = [header.index(name) for name in accepted if name in header]
            if not found:
                raise ProjectFileError(
                    shown,
                    1,
                    None,
                    f"expected columns {_describe_columns(columns)}; the header has: {', '.join(header) or 'nothing'}",
                )
            positions[field] = found[0]
        row_start = reader.line_num + 1
        for cells in reader:
            line, row_start = row_start, reader.line_num + 1
            if not any(cell.strip() for cell in cells):
                continue
            if len(cells) != len(header):
                raise ProjectFileError(
                    shown, line, None, f"expected {len(header)} fields like the header, got {len(cells)}"
                )
            row = {field: cells[position].strip() for field, position in positions.items()}
            for field, value in row.items():
                if not value:
                    raise ProjectFileError(shown, line, header[positions[field]], "empty value")
            yield f"{shown}:{line}", row


def _describe_columns(columns: Mapping[str, tuple[str, ...]]) -> str:
    """`text and intent (or category)`."""
    return " and ".join(
        names[0] + (f" (or {', '.join(names[1:])})" if len(names) > 1 else "") for names in columns.values()
    )


def _yaml_queries(file: YamlFile) -> list[KBQuery]:
    items = require_sequence(file, file.content, "queries", 1)
    queries = []
    for index, node in enumerate(items):
        key, line = f"[{index}]", item_line(items, index)
        item = require_mapping(file, node, key, line)
        reject_unknown_keys(file, item, QUERY_COLUMNS, key)
        queries.append(
            KBQuery(
                query=require_str(file, item.get("query"), f"{key}.query", key_line(item, "query")),
                entry_id=require_str(file, item.get("entry_id"), f"{key}.entry_id", key_line(item, "entry_id")),
                source=file.source(line),
            )
        )
    return queries


def _story(file: YamlFile, stories: Any, index: int) -> ConversationStory:
    key, line = f"stories[{index}]", item_line(stories, index)
    node = require_mapping(file, stories[index], key, line)
    reject_unknown_keys(file, node, STORY_KEYS, key)
    name = require_str(file, node.get("story"), f"{key}.story", line)
    items = require_sequence(file, node.get("steps"), f"{key}.steps", key_line(node, "steps"))
    if not items:
        raise file.error(key_line(node, "steps"), f"{key}.steps", "expected at least one step")
    steps: list[StoryStep] = []
    for position, item in enumerate(items):
        steps.extend(_steps(file, item, f"{key}.steps[{position}]", item_line(items, position), position + 1))
    return ConversationStory(name, tuple(steps), file.source(line))


def _steps(file: YamlFile, node: Any, key: str, line: int | None, number: int) -> list[StoryStep]:
    step = require_mapping(file, node, key, line)
    reject_unknown_keys(file, step, STEP_KEYS, key)
    source = file.source(line)
    if "user" in step:
        if "action" in step or "slot_was_set" in step:
            raise file.error(line, key, "a `user` step may only add `intent`; put actions in their own steps")
        text = require_str(file, step["user"], f"{key}.user", line).strip()
        intent = (
            require_str(file, step["intent"], f"{key}.intent", key_line(step, "intent")) if "intent" in step else None
        )
        return [UserTurn(text, intent, number, source)]
    if "intent" in step:
        raise file.error(line, key, "a test step needs the customer's words: `- user: |` with `intent:` under it")
    if "action" in step:
        if len(step) != 1:
            raise file.error(line, key, "an `action` step has no other keys")
        return [ExpectedAction(require_str(file, step["action"], f"{key}.action", line), number, source)]
    if "slot_was_set" not in step:
        raise file.error(line, key, f"expected one of: {', '.join(STEP_KEYS)}")
    slots = require_sequence(file, step["slot_was_set"], f"{key}.slot_was_set", line)
    checks: list[StoryStep] = []
    for position, item in enumerate(slots):
        if isinstance(item, Mapping):
            checks.extend(ExpectedSlot(str(slot), plain(value), False, number, source) for slot, value in item.items())
        else:
            slot = require_str(file, item, f"{key}.slot_was_set[{position}]", item_line(slots, position))
            checks.append(ExpectedSlot(slot, None, True, number, source))
    return checks
