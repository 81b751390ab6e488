"""Rasa's button payload syntax: `/intent` or `/intent{"entity": "value"}` skips NLU."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_PAYLOAD = re.compile(r"^/(?P<intent>[A-Za-z0-9_\-/.]+)(?P<entities>\{.*\})?\s*$", re.DOTALL)


@dataclass(frozen=True)
class Payload:
    intent: str
    entities: dict[str, Any]


def parse_payload(text: str) -> Payload | None:
    """The intent and entities a payload names, or None when `text` is not a payload."""
    match = _PAYLOAD.match(text.strip())
    if match is None:
        return None
    raw = match.group("entities")
    entities: dict[str, Any] = {}
    if raw:
        try:
            decoded = json.loads(raw)
        except json.JSONDecodeError:
            return None
        if not isinstance(decoded, dict):
            return None
        entities = decoded
    return Payload(match.group("intent"), entities)
