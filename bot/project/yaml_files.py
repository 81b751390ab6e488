"""Reading project YAML files with line numbers, and the error that points back into them."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML, CommentedMap, CommentedSeq
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from crowddesk.errors import Rejected


class ProjectFileError(Rejected):
    """A problem in one project file, located by file, 1-based line and dotted key path."""

    def __init__(self, path: Path, line: int | None, key: str | None, message: str) -> None:
        self.path = path
        self.line = line
        self.key = key
        self.message = message
        super().__init__(str(self))

    def __str__(self) -> str:
        location = str(self.path) if self.line is None else f"{self.path}:{self.line}"
        return f"{location}: {self.key}: {self.message}" if self.key else f"{location}: {self.message}"


@dataclass(frozen=True)
class FileWarning:
    """Something in a project file that loads but is ignored or read differently than in Rasa,
    located like ProjectFileError; `crowddesk data validate` reports it as a warning."""

    path: Path
    line: int | None
    key: str | None
    message: str

    def __str__(self) -> str:
        return str(ProjectFileError(self.path, self.line, self.key, self.message))


@dataclass(frozen=True)
class YamlFile:
    """One parsed YAML file; `display_path` is how messages name it (relative to the project)."""

    path: Path
    display_path: Path
    content: Any

    def source(self, line: int | None) -> str:
        """The "path:line" string stored on loaded records so later checks can point back here."""
        return f"{self.display_path}:{line}" if line is not None else str(self.display_path)

    def error(self, line: int | None, key: str | None, message: str) -> ProjectFileError:
        return ProjectFileError(self.display_path, line, key, message)

    def warning(self, line: int | None, key: str | None, message: str) -> FileWarning:
        return FileWarning(self.display_path, line, key, message)


def display_path(path: Path, root: Path | None) -> Path:
    if root is None:
        return path
    try:
        return path.relative_to(root)
    except ValueError:
        return path


def read_yaml(path: Path, root: Path | None = None) -> YamlFile:
    """Parse `path` keeping line numbers; duplicate keys and invalid YAML raise ProjectFileError."""
    shown = display_path(path, root)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise ProjectFileError(shown, None, None, f"cannot read file: {error}") from error
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        content = yaml.load(text)
    except DuplicateKeyError as error:
        raise ProjectFileError(shown, _mark_line(error), None, str(error.problem)) from error
    except MarkedYAMLError as error:
        problem = error.problem or "invalid YAML"
        context = f" ({error.context})" if error.context else ""
        raise ProjectFileError(shown, _mark_line(error), None, f"invalid YAML: {problem}{context}") from error
    except YAMLError as error:
        raise ProjectFileError(shown, None, None, f"invalid YAML: {error}") from error
    return YamlFile(path=path, display_path=shown, content=content)


def _mark_line(error: MarkedYAMLError) -> int | None:
    mark = error.problem_mark or error.context_mark
    return mark.line + 1 if mark is not None else None


def node_line(node: Any) -> int | None:
    """1-based line where a mapping or sequence node starts."""
    if isinstance(node, (CommentedMap, CommentedSeq)):
        return node.lc.line + 1
    return None


def key_line(mapping: Any, key: Any) -> int | None:
    """1-based line of `key` inside a mapping loaded by read_yaml."""
    if isinstance(mapping, CommentedMap) and key in mapping:
        return mapping.lc.key(key)[0] + 1
    return node_line(mapping)


def value_line(mapping: Any, key: Any) -> int | None:
    """1-based line where the value of `key` starts (the `|` line for block scalars)."""
    if isinstance(mapping, CommentedMap) and key in mapping:
        return mapping.lc.value(key)[0] + 1
    return node_line(mapping)


def item_line(sequence: Any, index: int) -> int | None:
    """1-based line of item `index` inside a sequence loaded by read_yaml."""
    if isinstance(sequence, CommentedSeq) and 0 <= index < len(sequence):
        return sequence.lc.item(index)[0] + 1
    return node_line(sequence)


def require_mapping(file: YamlFile, node: Any, key: str, line: int | None) -> CommentedMap:
    if not isinstance(node, CommentedMap):
        raise file.error(line, key, f"expected a mapping, got {_kind(node)}")
    return node


def require_sequence(file: YamlFile, node: Any, key: str, line: int | None) -> CommentedSeq:
    if not isinstance(node, CommentedSeq):
        raise file.error(line, key, f"expected a list, got {_kind(node)}")
    return node


def require_str(file: YamlFile, node: Any, key: str, line: int | None) -> str:
    if not isinstance(node, str) or not node.strip():
        raise file.error(line, key, f"expected a non-empty string, got {_kind(node)}")
    return str(node)


def require_bool(file: YamlFile, node: Any, key: str, line: int | None) -> bool:
    if not isinstance(node, bool):
        raise file.error(line, key, f"expected true or false, got {_kind(node)}")
    return node


def reject_unknown_keys(file: YamlFile, mapping: Mapping[Any, Any], allowed: Iterable[str], key_prefix: str) -> None:
    allowed_keys = list(allowed)
    for key in mapping:
        if key not in allowed_keys:
            raise file.error(
                key_line(mapping, key),
                join_key(key_prefix, str(key)),
                f"unknown key; expected one of: {', '.join(allowed_keys)}",
            )


def join_key(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def plain(node: Any) -> Any:
    """Convert ruamel's round-trip containers and scalar strings to plain Python data."""
    if isinstance(node, dict):
        return {str(key): plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def split_source(source: str) -> tuple[str, int | None]:
    """Inverse of YamlFile.source: "data/nlu.yml:34" -> ("data/nlu.yml", 34)."""
    path, _, line = source.rpartition(":")
    if path and line.isdigit():
        return path, int(line)
    return source, None


def _kind(node: Any) -> str:
    if node is None:
        return "nothing"
    if isinstance(node, bool):
        return f"boolean {node}"
    if isinstance(node, dict):
        return "a mapping"
    if isinstance(node, list):
        return "a list"
    if isinstance(node, str):
        return f"string {str(node)!r}" if node.strip() else "an empty string"
    return f"{type(node).__name__} {node!r}"
