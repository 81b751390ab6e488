"""Reading evaluation data: labelled messages, KB queries and conversation test stories.

Every reader reports a bad file as a `ProjectFileError` naming the file, the line and the column
or key, like the project's own files.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from crowddesk.bot.project.story_graph import linear_stories
from crowddesk.bot.project.training_data import Story, load_test_stories, load_training_file
from crowddesk.bot.project.yaml_files import (
    FileWarning,
    ProjectFileError,
    YamlFile,
    display_path,
    item_line,
    key_line,
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


@dataclass(frozen=True)
class ConversationTests:
    """Test stories ready to run, what the loader warned about, and the files they came from."""

    stories: list[Story]
    warnings: list[FileWarning]
    files: list[Path]


@dataclass(frozen=True)
class KBQuery:
    """A customer question and the id of the KB entry that answers it."""

    query: str
    entry_id: str
    source: str  # "file:line"


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


def load_conversation_tests(path: Path, *, root: Path | None = None) -> ConversationTests:
    """Rasa test stories from one file or from every story file under a folder (Rasa's `tests/`),
    as straight lines: `or:` expanded and checkpoints joined across all the files."""
    files = _story_files(path, root) if path.is_dir() else [path]
    stories: list[Story] = []
    warnings: list[FileWarning] = []
    for file in files:
        _require_suffix(file, root, YAML_SUFFIXES)
        found, file_warnings = load_test_stories(file, root=root)
        stories.extend(found)
        warnings.extend(file_warnings)
    linear = linear_stories(stories)
    if not linear.stories:
        raise ProjectFileError(display_path(path, root), None, "stories", "expected at least one story")
    return ConversationTests(linear.stories, [*warnings, *linear.warnings], files)


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


def _story_files(folder: Path, root: Path | None) -> list[Path]:
    """The YAML files under `folder` whose top level holds `stories:`, in path order."""
    candidates = sorted(p for p in folder.rglob("*") if p.suffix.lower() in YAML_SUFFIXES and p.is_file())
    files = [path for path in candidates if _holds_stories(read_yaml(path, root))]
    if not files:
        raise ProjectFileError(
            display_path(folder, root), None, None, "no test story files (`*.yml` or `*.yaml` holding `stories:`)"
        )
    return files


def _holds_stories(file: YamlFile) -> bool:
    return isinstance(file.content, Mapping) and "stories" in file.content
