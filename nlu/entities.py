"""Rule-based entity extraction: phrase lists (lookups, annotated values) via spaCy + regexes."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast

import spacy
from spacy.pipeline import EntityRuler

from crowddesk.nlu.types import Entity, TrainingExample

FORMAT_VERSION = 1


class EntityExtractor(Protocol):
    """Finds entities in a message; offsets are character positions in the original text."""

    def extract(self, text: str) -> list[Entity]: ...


@dataclass(frozen=True)
class _Match:
    entity: str
    start: int
    end: int
    rank: int  # tie-break between equally long matches: lower wins


class RuleEntityExtractor:
    """Matches known phrases case-insensitively and regexes; longest match wins, no overlaps.

    Phrases come from lookup tables and from the values annotated in training examples; they
    match on whole tokens only. Regexes run on the raw text with re.IGNORECASE (as Rasa's
    RegexEntityExtractor does by default) and may cross token boundaries. On equally long
    overlapping matches, phrases win over regexes. The extracted value is the matched text,
    mapped through the synonyms (case-insensitively) to its canonical value.

    Example annotations whose value differs from their text (`[Visa](card){"value": "visa"}`)
    add a synonym, as in Rasa; explicit `synonyms` take precedence over them.
    """

    name = "RuleEntityExtractor"

    def __init__(
        self,
        *,
        language: str,
        regexes: Sequence[tuple[str, str]],
        lookups: Mapping[str, Sequence[str]],
        examples: Sequence[TrainingExample],
        synonyms: Mapping[str, str],
    ) -> None:
        self._language = language
        self._regexes = [(entity, pattern, _compile(entity, pattern)) for entity, pattern in regexes]
        self._phrases = _collect_phrases(lookups, examples)
        self._synonyms = _collect_synonyms(synonyms, examples)
        self._nlp = _phrase_pipeline(language, self._phrases)

    def extract(self, text: str) -> list[Entity]:
        matches = [_Match(span.label_, span.start_char, span.end_char, rank=0) for span in self._nlp(text).ents]
        for rank, (entity, _pattern, compiled) in enumerate(self._regexes, start=1):
            matches.extend(
                _Match(entity, m.start(), m.end(), rank) for m in compiled.finditer(text) if m.end() > m.start()
            )
        entities = []
        for match in _longest_without_overlaps(matches):
            surface = text[match.start : match.end]
            entities.append(
                Entity(
                    entity=match.entity,
                    value=self._synonyms.get(surface.lower(), surface),
                    start=match.start,
                    end=match.end,
                    extractor=self.name,
                    text=surface,
                )
            )
        return entities

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state for the model artifact (training examples are not kept)."""
        return {
            "format_version": FORMAT_VERSION,
            "language": self._language,
            "regexes": [[entity, pattern] for entity, pattern, _compiled in self._regexes],
            "phrases": {entity: list(phrases) for entity, phrases in self._phrases.items()},
            "synonyms": dict(self._synonyms),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RuleEntityExtractor:
        version = data.get("format_version")
        if version != FORMAT_VERSION:
            raise ValueError(
                f"entity extractor state has format_version {version!r}; this version reads {FORMAT_VERSION}"
            )
        try:
            return cls(
                language=data["language"],
                regexes=[(entity, pattern) for entity, pattern in data["regexes"]],
                lookups=data["phrases"],
                examples=(),
                synonyms=data["synonyms"],
            )
        except KeyError as err:
            raise ValueError(f"entity extractor state is missing the key {err}") from err


def _compile(entity: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise ValueError(f"invalid regex for entity {entity!r}: {pattern!r} ({err})") from err


def _collect_phrases(lookups: Mapping[str, Sequence[str]], examples: Sequence[TrainingExample]) -> dict[str, list[str]]:
    """Phrases per entity, first spelling kept when the same phrase recurs in another case."""
    phrases: dict[str, list[str]] = {}
    seen: set[tuple[str, str]] = set()

    def add(entity: str, phrase: str, where: str) -> None:
        if not phrase.strip():
            raise ValueError(f"{where}: empty phrase for entity {entity!r}")
        key = (entity, phrase.lower())
        if key not in seen:
            seen.add(key)
            phrases.setdefault(entity, []).append(phrase)

    for entity, values in lookups.items():
        if isinstance(values, str):
            raise ValueError(f"lookup {entity!r}: expected a list of phrases, got a string")
        for value in values:
            add(entity, value, f"lookup {entity!r}")
    for example in examples:
        for span in example.entities:
            add(span.entity, _surface(example, span.start, span.end), _where(example))
    return phrases


def _collect_synonyms(synonyms: Mapping[str, str], examples: Sequence[TrainingExample]) -> dict[str, str]:
    """Lower-cased surface text -> canonical value."""
    explicit: dict[str, str] = {}
    for surface, canonical in synonyms.items():
        key = surface.lower()
        if explicit.get(key, canonical) != canonical:
            raise ValueError(f"synonym {surface!r} maps to both {explicit[key]!r} and {canonical!r}")
        explicit[key] = canonical
    implied: dict[str, tuple[str, str]] = {}  # surface -> (canonical, where it was annotated)
    for example in examples:
        for span in example.entities:
            surface = _surface(example, span.start, span.end)
            key = surface.lower()
            if span.value == surface or key in explicit:
                continue
            earlier = implied.setdefault(key, (span.value, _where(example)))
            if earlier[0] != span.value:
                raise ValueError(
                    f"{_where(example)}: {surface!r} is annotated with value {span.value!r}, but "
                    f"with {earlier[0]!r} at {earlier[1]}; declare a synonym to settle it"
                )
    return {**{key: value for key, (value, _) in implied.items()}, **explicit}


def _surface(example: TrainingExample, start: int, end: int) -> str:
    if not 0 <= start < end <= len(example.text):
        raise ValueError(f"{_where(example)}: entity span {start}:{end} is outside the text {example.text!r}")
    return example.text[start:end]


def _where(example: TrainingExample) -> str:
    return example.source or f"example {example.text!r}"


def _phrase_pipeline(language: str, phrases: Mapping[str, Sequence[str]]) -> Any:
    try:
        nlp = spacy.blank(language)
    except ImportError as err:
        raise ValueError(f"spaCy has no language {language!r} ({err})") from err
    if not phrases:
        return nlp  # an entity ruler without patterns warns on every call
    ruler = cast(EntityRuler, nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"}))
    ruler.add_patterns(
        [
            {"label": entity, "pattern": phrase}
            for entity, entity_phrases in phrases.items()
            for phrase in entity_phrases
        ]
    )
    return nlp


def _longest_without_overlaps(matches: list[_Match]) -> list[_Match]:
    """Greedy: longest first (then leftmost, then rank); result in text order."""
    kept: list[_Match] = []
    for match in sorted(matches, key=lambda m: (m.start - m.end, m.start, m.rank)):
        if all(match.end <= other.start or other.end <= match.start for other in kept):
            kept.append(match)
    return sorted(kept, key=lambda m: m.start)
