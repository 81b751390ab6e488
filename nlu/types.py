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

    def as_rasa(self) -> dict[str, Any]:
        return {
            "entity": self.entity,
            "value": self.value,
            "start": self.start,
            "end": self.end,
            "extractor": self.extractor,
        }


@dataclass(frozen=True)
class EntitySpan:
    """An annotated span in a training example (`[text](type)` in Rasa's nlu.yml)."""

    entity: str
    start: int
    end: int
    value: str


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
