"""Entity annotations inside example text (`[Berlin](city)`, `[Berlin]{"entity": "city", "role": "from"}`),
as NLU examples and end-to-end story steps write them."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from crowddesk.bot.project.yaml_files import YamlFile

# `[text](entity)`, `[text](entity:value)`, `[text]{"entity": ...}` and `[text][{...}, {...}]`.
_ANNOTATION = re.compile(
    r"\[(?P<text>[^\]]+)\]"
    r"(?:\((?P<short>[^)]+)\)|(?P<json>\{[^}]*\})|(?P<json_list>\[\s*\{.*?\}\s*\]))"
)
_JSON_KEYS = ("entity", "value", "role", "group")


@dataclass(frozen=True)
class Annotation:
    """One annotated entity; `start`/`end` index the text with annotations removed, `value` is
    None when the annotation gives none (the entity's value is then the annotated text)."""

    entity: str
    start: int
    end: int
    surface: str
    value: str | None = None
    role: str | None = None
    group: str | None = None


def strip_annotations(file: YamlFile, raw: str, line: int | None, key: str) -> tuple[str, list[Annotation]]:
    """`raw` without its annotation markup, and the annotations found in it."""
    text = ""
    annotations: list[Annotation] = []
    position = 0
    for match in _ANNOTATION.finditer(raw):
        text += raw[position : match.start()]
        start, surface = len(text), match["text"]
        text += surface
        annotations.extend(
            Annotation(start=start, end=len(text), surface=surface, **fields)
            for fields in _annotation_fields(file, match, line, key)
        )
        position = match.end()
    return text + raw[position:], annotations


def _annotation_fields(file: YamlFile, match: re.Match[str], line: int | None, key: str) -> list[dict[str, Any]]:
    if match["short"] is not None:
        entity, _, value = match["short"].partition(":")
        if not entity.strip():
            raise file.error(line, key, f"annotation {match[0]!r} has no entity name")
        return [{"entity": entity.strip(), "value": value.strip() or None}]
    raw_json = match["json"] or match["json_list"]
    try:
        parsed = json.loads(raw_json)
    except json.JSONDecodeError as error:
        raise file.error(line, key, f"annotation {match[0]!r} is not valid JSON: {error.msg}") from error
    entries = parsed if isinstance(parsed, list) else [parsed]
    return [_json_fields(file, entry, match[0], line, key) for entry in entries]


def _json_fields(file: YamlFile, entry: Any, annotation: str, line: int | None, key: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not isinstance(entry.get("entity"), str) or not entry["entity"]:
        raise file.error(line, key, f'annotation {annotation!r} needs an "entity" name')
    unknown = sorted(set(entry) - set(_JSON_KEYS))
    if unknown:
        raise file.error(line, key, f"annotation {annotation!r} has unknown keys: {', '.join(unknown)}")
    for name in ("value", "role", "group"):
        if entry.get(name) is not None and not isinstance(entry[name], str):
            raise file.error(line, key, f'annotation {annotation!r}: "{name}" must be a string')
    return {name: entry.get(name) for name in _JSON_KEYS}
