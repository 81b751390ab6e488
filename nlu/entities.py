"""Rule-based entity extraction: phrase lists (lookups, annotated values) via spaCy, regexes,
and lookup entries with a small typo."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar, cast

import spacy
from spacy.pipeline import EntityRuler

from crowddesk.nlu.fuzzy_lookup import FuzzyLookup
from crowddesk.nlu.types import Entity, TrainingExample

FORMAT_VERSION = 2
# Pattern ids of the entity ruler: where a phrase comes from.
_LOOKUP = "lookup"
_ANNOTATED = "annotated"


class EntityExtractor(Protocol):
    """Finds entities in a message; offsets are character positions in the original text."""

    def extract(self, text: str) -> list[Entity]: ...


@dataclass(frozen=True)
class RuleMatch:
    """An extracted entity; `known` when it is a lookup-table entry or a regex match, not
    merely a value annotated in training."""

    entity: Entity
    known: bool


@dataclass(frozen=True)
class _Match:
    entity: str
    start: int
    end: int
    rank: int  # tie-break between equally long matches: lower wins
    known: bool
    entry: str | None = None  # the lookup entry a typo stands for


class RuleEntityExtractor:
    """Matches known phrases case-insensitively and regexes; longest match wins, no overlaps.

    Phrases come from lookup tables and from the values annotated in training examples; they
    match on whole tokens only. Regexes run on the raw text with re.IGNORECASE (as Rasa's
    RegexEntityExtractor does by default) and may cross token boundaries. Lookup entries of 5
    or more characters also match with a small typo (see fuzzy_lookup), their value then being
    the entry. On equally long overlapping matches, phrases win over regexes, and both over
    typos. The extracted value is the matched text (or entry), mapped through the synonyms
    (case-insensitively) to its canonical value.

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
        annotated: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        """`annotated` adds phrases already collected from examples (as `to_dict` saves them)."""
        self._language = language
        self._regexes = [(entity, pattern, _compile(entity, pattern)) for entity, pattern in regexes]
        self._lookups = _collect_phrases(lookups, examples=())
        self._annotated = _collect_phrases(annotated or {}, examples, known=self._lookups)
        self._synonyms = _collect_synonyms(synonyms, examples)
        self._nlp = _phrase_pipeline(language, self._lookups, self._annotated)
        self._fuzzy = FuzzyLookup(self._lookups, lambda entry: [token.text for token in self._nlp.tokenizer(entry)])

    def extract(self, text: str) -> list[Entity]:
        return [match.entity for match in self.find(text)]

    def find(self, text: str) -> list[RuleMatch]:
        """The entities of `extract`, each marked whether it is a lookup entry or regex match."""
        doc = self._nlp(text)
        matches = [
            _Match(span.label_, span.start_char, span.end_char, rank=0, known=span.ent_id_ == _LOOKUP)
            for span in doc.ents
        ]
        for rank, (entity, _pattern, compiled) in enumerate(self._regexes, start=1):
            matches.extend(
                _Match(entity, m.start(), m.end(), rank, known=True)
                for m in compiled.finditer(text)
                if m.end() > m.start()
            )
        typo_rank = len(self._regexes) + 1
        matches.extend(
            _Match(m.entity, doc[m.start].idx, doc[m.end - 1].idx + len(doc[m.end - 1]), typo_rank, True, m.entry)
            for m in self._fuzzy.find([token.text for token in doc])
        )
        found = []
        for match in _longest_without_overlaps(matches):
            surface = text[match.start : match.end]
            extracted = Entity(
                entity=match.entity,
                value=self.canonical(match.entry or surface),
                start=match.start,
                end=match.end,
                extractor=self.name,
                text=surface,
            )
            found.append(RuleMatch(extracted, match.known))
        return found

    def canonical(self, value: str) -> str:
        """`value` mapped through the synonyms, case-insensitively; itself when it has none."""
        return self._synonyms.get(value.lower(), value)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable state for the model artifact (training examples are not kept)."""
        return {
            "format_version": FORMAT_VERSION,
            "language": self._language,
            "regexes": [[entity, pattern] for entity, pattern, _compiled in self._regexes],
            "lookups": {entity: list(phrases) for entity, phrases in self._lookups.items()},
            "phrases": {entity: list(phrases) for entity, phrases in self._annotated.items()},
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
                lookups=data["lookups"],
                examples=(),
                synonyms=data["synonyms"],
                annotated=data["phrases"],
            )
        except KeyError as err:
            raise ValueError(f"entity extractor state is missing the key {err}") from err


def _compile(entity: str, pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern, re.IGNORECASE)
    except re.error as err:
        raise ValueError(f"invalid regex for entity {entity!r}: {pattern!r} ({err})") from err


def _collect_phrases(
    listed: Mapping[str, Sequence[str]],
    examples: Sequence[TrainingExample],
    known: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, list[str]]:
    """Phrases per entity, first spelling kept when the same phrase recurs in another case;
    phrases already `known` are left out."""
    phrases: dict[str, list[str]] = {}
    seen = {(entity, phrase.lower()) for entity, entity_phrases in (known or {}).items() for phrase in entity_phrases}

    def add(entity: str, phrase: str, where: str) -> None:
        if not phrase.strip():
            raise ValueError(f"{where}: empty phrase for entity {entity!r}")
        key = (entity, phrase.lower())
        if key not in seen:
            seen.add(key)
            phrases.setdefault(entity, []).append(phrase)

    for entity, values in listed.items():
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


def blank_pipeline(language: str) -> Any:
    """spaCy's tokenizer for `language`, without trained components."""
    try:
        return spacy.blank(language)
    except ImportError as err:
        raise ValueError(f"spaCy has no language {language!r} ({err})") from err


def _phrase_pipeline(
    language: str, lookups: Mapping[str, Sequence[str]], annotated: Mapping[str, Sequence[str]]
) -> Any:
    nlp = blank_pipeline(language)
    patterns: list[dict[str, Any]] = [
        {"label": entity, "pattern": phrase, "id": source}
        for source, phrases in ((_LOOKUP, lookups), (_ANNOTATED, annotated))
        for entity, entity_phrases in phrases.items()
        for phrase in entity_phrases
    ]
    if not patterns:
        return nlp  # an entity ruler without patterns warns on every call
    ruler = cast(EntityRuler, nlp.add_pipe("entity_ruler", config={"phrase_matcher_attr": "LOWER"}))
    ruler.add_patterns(patterns)
    return nlp


def _longest_without_overlaps(matches: list[_Match]) -> list[_Match]:
    """Longest first (then leftmost, then rank)."""
    return without_overlaps(matches, lambda m: (m.start - m.end, m.start, m.rank))


class Span(Protocol):
    @property
    def start(self) -> int: ...

    @property
    def end(self) -> int: ...


SpanT = TypeVar("SpanT", bound=Span)


def without_overlaps(spans: Iterable[SpanT], priority: Callable[[SpanT], Any]) -> list[SpanT]:
    """Greedy: each span in `priority` order (lowest first) is kept unless it overlaps one kept
    before it; the result is in text order."""
    kept: list[SpanT] = []
    for span in sorted(spans, key=priority):
        if all(span.end <= other.start or other.end <= span.start for other in kept):
            kept.append(span)
    return sorted(kept, key=lambda span: span.start)
