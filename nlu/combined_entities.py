"""The project's entity extractor: rules, the learned CRF and system entities, merged into
one list without overlaps."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from crowddesk.nlu.entities import RuleEntityExtractor, without_overlaps
from crowddesk.nlu.learned_entities import CRFEntityExtractor
from crowddesk.nlu.system_entities import SystemEntityExtractor
from crowddesk.nlu.types import Entity

FORMAT_VERSION = 1
# Tie-breaks between equally long overlapping finds: the learned entity knows the context
# (and the role), a phrase seen in training only its words, a system entity neither.
_LEARNED, _ANNOTATED_PHRASE, _SYSTEM = range(3)


@dataclass(frozen=True)
class _Find:
    entity: Entity
    known: bool  # a lookup entry or regex match: wins any overlap
    rank: int

    @property
    def start(self) -> int:
        return self.entity.start

    @property
    def end(self) -> int:
        return self.entity.end


class CombinedEntityExtractor:
    """Runs every extractor and keeps a non-overlapping union: a lookup-table entry or regex
    match wins any overlap; otherwise the longer span wins. A rule find that the CRF found with
    the same span and entity takes the CRF's role and group. Values of the CRF are mapped through
    the synonyms, as the rule extractor maps its own."""

    def __init__(
        self,
        rules: RuleEntityExtractor,
        learned: CRFEntityExtractor | None = None,
        system: SystemEntityExtractor | None = None,
    ) -> None:
        self.rules = rules
        self.learned = learned
        self.system = system

    def extract(self, text: str) -> list[Entity]:
        finds = [_Find(match.entity, match.known, _ANNOTATED_PHRASE) for match in self.rules.find(text)]
        learned = [
            replace(entity, value=self.rules.canonical(entity.text))
            for entity in (self.learned.extract(text) if self.learned else [])
        ]
        finds.extend(_Find(entity, False, _LEARNED) for entity in learned)
        finds.extend(_Find(entity, False, _SYSTEM) for entity in (self.system.extract(text) if self.system else []))
        kept = without_overlaps(finds, lambda find: (not find.known, find.start - find.end, find.rank, find.start))
        roles = {(e.start, e.end, e.entity): e for e in learned}
        return [_with_role(find.entity, roles.get((find.start, find.end, find.entity.entity))) for find in kept]

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state; the CRF's model is saved apart (`learned.model`, bytes)."""
        return {
            "format_version": FORMAT_VERSION,
            "rules": self.rules.to_dict(),
            "learned": self.learned is not None,
            "system": list(self.system.dimensions) if self.system else [],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], learned_model: bytes | None) -> CombinedEntityExtractor:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(f"entity state has format_version {version!r}; this version reads {FORMAT_VERSION}")
        try:
            rules = RuleEntityExtractor.from_dict(data["rules"])
            if data["learned"] and learned_model is None:
                raise ValueError("the learned entity model is missing")
            language = data["rules"]["language"]
            learned = CRFEntityExtractor(language, learned_model) if data["learned"] and learned_model else None
            system = SystemEntityExtractor(data["system"], language) if data["system"] else None
        except KeyError as err:
            raise ValueError(f"entity state is missing the key {err}") from err
        return cls(rules, learned, system)


def _with_role(entity: Entity, learned: Entity | None) -> Entity:
    if learned is None or learned is entity or entity.role or entity.group:
        return entity
    return replace(entity, role=learned.role, group=learned.group)
