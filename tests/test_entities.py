from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import pytest

from crowddesk.nlu.entities import RuleEntityExtractor
from crowddesk.nlu.types import Entity, EntitySpan, TrainingExample


def _extractor(
    *,
    regexes: Sequence[tuple[str, str]] = (),
    lookups: Mapping[str, Sequence[str]] | None = None,
    examples: Sequence[TrainingExample] = (),
    synonyms: Mapping[str, str] | None = None,
) -> RuleEntityExtractor:
    return RuleEntityExtractor(
        language="en",
        regexes=regexes,
        lookups=lookups or {},
        examples=examples,
        synonyms=synonyms or {},
    )


def _found(entities: list[Entity]) -> list[tuple[str, str, int, int]]:
    return [(e.entity, e.value, e.start, e.end) for e in entities]


def test_lookup_phrases_match_case_insensitively_with_original_offsets() -> None:
    extractor = _extractor(lookups={"city": ["São Paulo", "Zürich"]})
    text = "Flights from SÃO PAULO to zürich, then back to São Paulo"
    entities = extractor.extract(text)
    assert _found(entities) == [
        ("city", "SÃO PAULO", 13, 22),
        ("city", "zürich", 26, 32),
        ("city", "São Paulo", 47, 56),
    ]
    assert all(text[e.start : e.end] == e.text for e in entities)
    assert {e.extractor for e in entities} == {"RuleEntityExtractor"}


def test_repeated_words_each_get_their_own_offsets() -> None:
    extractor = _extractor(lookups={"card": ["visa"]})
    text = "visa, visa and VISA – not visafree"
    assert [(e.start, e.end) for e in extractor.extract(text)] == [(0, 4), (6, 10), (15, 19)]


def test_annotated_training_values_become_patterns_and_synonyms() -> None:
    example = TrainingExample(
        text="I lost my Mastercard Gold yesterday",
        intent="lost_card",
        entities=(EntitySpan(entity="card", start=10, end=25, value="mastercard_gold"),),
        source="data/nlu.yml:12",
    )
    extractor = _extractor(examples=[example])
    (entity,) = extractor.extract("is the mastercard gold insured?")
    assert (entity.entity, entity.value) == ("card", "mastercard_gold")
    assert entity.text == "mastercard gold"


def test_synonyms_map_any_case_to_the_canonical_value() -> None:
    extractor = _extractor(
        lookups={"card": ["credit card", "CC"]},
        synonyms={"cc": "credit_card", "Credit Card": "credit_card"},
    )
    assert [e.value for e in extractor.extract("My CC, I mean my credit card")] == [
        "credit_card",
        "credit_card",
    ]


def test_regexes_match_across_token_boundaries() -> None:
    extractor = _extractor(regexes=[("order_id", r"ORD-\d{3}-[A-Z]{2}"), ("amount", r"\d+(?:[.,]\d+)? ?€")])
    text = "Order ord-123-ab: refund 12,50 € please"
    assert _found(extractor.extract(text)) == [
        ("order_id", "ord-123-ab", 6, 16),
        ("amount", "12,50 €", 25, 32),
    ]


def test_longest_match_wins_and_matches_never_overlap() -> None:
    extractor = _extractor(
        lookups={"product": ["premium account", "account"], "plan": ["premium"]},
        regexes=[("account_number", r"account \d+")],
    )
    found = _found(extractor.extract("upgrade my premium account or account 12345 or account"))
    assert found == [
        ("product", "premium account", 11, 26),
        ("account_number", "account 12345", 30, 43),
        ("product", "account", 47, 54),
    ]


def test_equally_long_phrase_beats_regex() -> None:
    extractor = _extractor(lookups={"plan": ["gold"]}, regexes=[("colour", r"gold|silver")])
    assert _found(extractor.extract("gold or silver")) == [
        ("plan", "gold", 0, 4),
        ("colour", "silver", 8, 14),
    ]


def test_state_round_trips_through_json() -> None:
    example = TrainingExample(
        text="send it to Köln",
        intent="inform",
        entities=(EntitySpan(entity="city", start=11, end=15, value="Cologne"),),
    )
    extractor = _extractor(
        lookups={"city": ["Berlin"]},
        examples=[example],
        regexes=[("zip", r"\b\d{5}\b")],
        synonyms={"berlin": "Berlin"},
    )
    restored = RuleEntityExtractor.from_dict(json.loads(json.dumps(extractor.to_dict())))
    text = "from berlin 10115 to KÖLN"
    assert restored.extract(text) == extractor.extract(text)
    assert [e.value for e in restored.extract(text)] == ["Berlin", "10115", "Cologne"]


def test_state_from_another_version_is_refused() -> None:
    state = _extractor().to_dict()
    state["format_version"] = 7
    with pytest.raises(ValueError, match="format_version 7"):
        RuleEntityExtractor.from_dict(state)


def test_invalid_regex_names_entity_and_pattern() -> None:
    with pytest.raises(ValueError, match=r"entity 'order_id'.*'ORD-\(\\\\d\+'"):
        _extractor(regexes=[("order_id", r"ORD-(\d+")])


def test_conflicting_annotations_name_both_sources() -> None:
    examples = [
        TrainingExample("my Visa card", "x", (EntitySpan("card", 3, 7, "debit"),), "nlu.yml:3"),
        TrainingExample("a visa please", "x", (EntitySpan("card", 2, 6, "credit"),), "nlu.yml:9"),
    ]
    with pytest.raises(ValueError, match=r"nlu\.yml:9.*nlu\.yml:3"):
        _extractor(examples=examples)
    # An explicit synonym settles the conflict.
    extractor = _extractor(examples=examples, synonyms={"visa": "visa_card"})
    assert [e.value for e in extractor.extract("VISA")] == ["visa_card"]


def test_span_outside_the_example_text_names_its_source() -> None:
    example = TrainingExample("short", "x", (EntitySpan("thing", 2, 40, "x"),), "nlu.yml:21")
    with pytest.raises(ValueError, match=r"nlu\.yml:21"):
        _extractor(examples=[example])


def test_unknown_language_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="language 'zz'"):
        RuleEntityExtractor(language="zz", regexes=[], lookups={}, examples=[], synonyms={})


def test_nothing_to_match_finds_nothing() -> None:
    assert _extractor().extract("any text at all") == []
