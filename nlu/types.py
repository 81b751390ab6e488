"""Plain data passed between the NLU seams and the rest of the bot."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Entity:
    """An entity found in a message, with character offsets into the original text."""

    entity: str
    value: Any
    start: int
    end: int
    extractor: str
    text: str = ""
    role: str | None = None
    group: str | None = None
    # What a system entity's value was read from, as Rasa's Duckling extractor reports it
    # (e.g. {"value": 20, "type": "value", "unit": "USD"} for an amount of money).
    additional_info: dict[str, Any] | None = None

    def as_rasa(self) -> dict[str, Any]:
        """Rasa's parse data shape; `role`, `group` and `additional_info` only when set."""
        data = {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "extractor": self.extractor,
        }
        optional = {"role": self.role, "group": self.group, "additional_info": self.additional_info}
        return data | {key: value for key, value in optional.items() if value is not None}


@dataclass(frozen=True)
class EntitySpan:
    """An annotated span in a training example (`[text](type)`, or with a role and group
    `[text]{"entity": "city", "role": "from"}` in Rasa's nlu.yml)."""

    entity: str
    start: int
    end: int
    value: str
    role: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class TrainingExample:
    """One labelled utterance; `intent` may be a retrieval intent such as `faq/card_arrival`."""

    text: str
    intent: str
    entities: tuple[EntitySpan, ...] = ()
    source: str = ""  # "file:line", so errors and reports can point at it


@dataclass(frozen=True)
class IntentScore:
    name: str
    confidence: float


@dataclass
class Parse:
    """What NLU understood of one message: calibrated intent ranking and entities."""

    text: str
    intent: IntentScore
    intent_ranking: list[IntentScore]
    entities: list[Entity] = field(default_factory=list)

    def as_rasa(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "intent": {"name": self.intent.name, "confidence": self.intent.confidence},
            "entities": [e.as_rasa() for e in self.entities],
            "intent_ranking": [{"name": s.name, "confidence": s.confidence} for s in self.intent_ranking],
        }
