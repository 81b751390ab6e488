"""Entities beyond exact phrases: learned from examples (with roles and groups), lookup entries
with a typo, system entities (numbers, amounts, dates), and how the extractors combine."""

from __future__ import annotations

import json
import os
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest

from crowddesk.bot.project.training_data import TrainingData, load_training_file
from crowddesk.nlu.combined_entities import CombinedEntityExtractor
from crowddesk.nlu.entities import RuleEntityExtractor
from crowddesk.nlu.learned_entities import CRFEntityExtractor
from crowddesk.nlu.system_entities import SystemEntityExtractor
from crowddesk.nlu.types import Entity, EntitySpan, TrainingExample

RASA_PROJECTS = Path(
    os.environ.get("CROWDDESK_RASA_PROJECTS", Path(__file__).resolve().parents[1].parent / "shared" / "rasa_projects")
)
NOW = datetime(2024, 5, 1, 10, 30, tzinfo=timezone(timedelta(hours=2)))


def _example(text: str, *annotations: tuple[str, str, str | None]) -> TrainingExample:
    """`annotations` are (surface, entity, role); each surface is found in `text`."""
    spans = []
    for surface, entity, role in annotations:
        start = text.index(surface)
        spans.append(EntitySpan(entity, start, start + len(surface), surface, role))
    return TrainingExample(text, "inform", tuple(spans))


TRANSFERS = [
    _example("transfer 50 dollars to John", ("John", "person", None)),
    _example("send 10 euros to Anna", ("Anna", "person", None)),
    _example("please transfer money to Lisa", ("Lisa", "person", None)),
    _example("pay Peter 5 dollars", ("Peter", "person", None)),
    _example("transfer 20 euros to Tom now", ("Tom", "person", None)),
]
FLIGHTS = [
    _example("fly from London to Rome", ("London", "city", "from"), ("Rome", "city", "to")),
    _example("a flight from Madrid to Oslo", ("Madrid", "city", "from"), ("Oslo", "city", "to")),
    _example("I want to go to Vienna from Prague", ("Vienna", "city", "to"), ("Prague", "city", "from")),
    _example("from Lisbon to Athens please", ("Lisbon", "city", "from"), ("Athens", "city", "to")),
    _example("book me a flight to Dublin", ("Dublin", "city", "to")),
    _example("leaving from Warsaw tomorrow", ("Warsaw", "city", "from")),
]


def _rules(data: TrainingData | None = None, examples: Sequence[TrainingExample] = ()) -> RuleEntityExtractor:
    return RuleEntityExtractor(
        language="en",
        regexes=[(r.name, r.pattern) for r in data.regexes] if data else [],
        lookups=data.lookups if data else {},
        examples=examples,
        synonyms=data.synonyms if data else {},
    )


def _learned(examples: Sequence[TrainingExample]) -> CRFEntityExtractor:
    extractor = CRFEntityExtractor.train(examples, "en")
    assert extractor is not None
    return extractor


def _found(entities: list[Entity]) -> list[tuple[str, object, str | None]]:
    return [(e.entity, e.value, e.role) for e in entities]


def _corpus_file(project: str, name: str) -> Path:
    path = RASA_PROJECTS / project / "data" / name
    assert path.is_file(), f"{path} is missing: set CROWDDESK_RASA_PROJECTS to the Rasa projects corpus"
    return path


def test_an_unseen_value_in_a_seen_context_is_found() -> None:
    (entity,) = _learned(TRANSFERS).extract("transfer 20 dollars to Maria")
    assert (entity.entity, entity.value, entity.start, entity.end) == ("person", "Maria", 23, 28)
    assert entity.extractor == "CRFEntityExtractor"
    # The rule extractor alone knows only the names it saw.
    assert _rules(examples=TRANSFERS).extract("transfer 20 dollars to Maria") == []


def test_roles_are_learned_and_reported() -> None:
    found = _learned(FLIGHTS).extract("fly from Berlin to Paris")
    assert _found(found) == [("city", "Berlin", "from"), ("city", "Paris", "to")]
    assert found[0].as_rasa() == {
        "entity": "city",
        "value": "Berlin",
        "start": 9,
        "end": 15,
        "extractor": "CRFEntityExtractor",
        "role": "from",
    }


def test_groups_are_learned_with_roles() -> None:
    examples = [
        TrainingExample(
            "a large pizza and a small coke",
            "order",
            (EntitySpan("size", 2, 7, "large", group="1"), EntitySpan("size", 20, 25, "small", group="2")),
        ),
        TrainingExample(
            "one small pizza and one large coke",
            "order",
            (EntitySpan("size", 4, 9, "small", group="1"), EntitySpan("size", 24, 29, "large", group="2")),
        ),
    ]
    found = _learned(examples).extract("a small pizza and a large coke")
    assert [(e.value, e.group, e.role) for e in found] == [("small", "1", None), ("large", "2", None)]


def test_nothing_to_learn_without_annotations() -> None:
    assert CRFEntityExtractor.train([TrainingExample("hello there", "greet")], "en") is None


def test_training_is_deterministic() -> None:
    assert _learned(FLIGHTS).model == _learned(FLIGHTS).model


def test_roles_and_groups_are_read_from_annotations(tmp_path: Path) -> None:
    path = tmp_path / "nlu.yml"
    path.write_text(
        'version: "3.1"\nnlu:\n- intent: fly\n  examples: |\n'
        '    - from [Berlin]{"entity": "city", "role": "from", "group": "trip"} to [Paris](city)\n',
        encoding="utf-8",
    )
    (example,) = load_training_file(path).examples
    assert example.entities == (
        EntitySpan("city", 5, 11, "Berlin", role="from", group="trip"),
        EntitySpan("city", 15, 20, "Paris"),
    )


def test_carbon_bot_roles_on_held_out_examples() -> None:
    """Trained on 80 % of carbon-bot's role-annotated examples (and all others), scored on the
    rest: the span, entity and role must all be right."""
    data = load_training_file(_corpus_file("carbon-bot", "nlu.yml"))
    with_roles = [e for e in data.examples if any(span.role for span in e.entities)]
    random.Random(13).shuffle(with_roles)
    held_out = with_roles[: len(with_roles) // 5]
    held_out_texts = {e.text for e in held_out}
    training = [e for e in data.examples if e.text not in held_out_texts]
    rules = _rules(data, training)
    scores = {
        "rules": _f1(rules.extract, held_out),
        "learned": _f1(_learned(training).extract, held_out),
        "combined": _f1(CombinedEntityExtractor(rules, _learned(training)).extract, held_out),
    }
    print(f"carbon-bot role F1 on {len(held_out)} held-out examples: {scores}")
    assert scores["rules"] < 0.1  # the rules know no roles
    assert scores["learned"] > 0.75
    assert scores["combined"] > 0.75


def _f1(extract: Callable[[str], list[Entity]], examples: Sequence[TrainingExample]) -> float:
    true_positives = predicted = expected = 0
    for example in examples:
        gold = {(s.start, s.end, s.entity, s.role) for s in example.entities}
        found = {(e.start, e.end, e.entity, e.role) for e in extract(example.text)}
        true_positives += len(gold & found)
        predicted += len(found)
        expected += len(gold)
    return 2 * true_positives / (predicted + expected) if predicted + expected else 0.0


def test_a_lookup_entry_with_a_typo_is_found_as_the_entry() -> None:
    data = load_training_file(_corpus_file("pokedex", "nlu.yml"))
    rules = _rules(data)
    assert _found(rules.extract("tell me about pikachuu please")) == [("pokemon_name", "pikachu", None)]
    assert _found(rules.extract("is charmandr strong?")) == [("pokemon_name", "charmander", None)]
    (typo,) = rules.find("what about bulbasar")
    assert typo.known and typo.entity.text == "bulbasar"
    # Unrelated words, and short entries ("mew"), match exactly only.
    assert rules.extract("tell me about the weather today") == []
    assert rules.extract("mewo") == []


def test_typos_map_through_synonyms_and_lose_to_exact_phrases() -> None:
    rules = RuleEntityExtractor(
        language="en",
        regexes=[],
        lookups={"city": ["Hamburg", "Hamburg Altona"]},
        examples=[],
        synonyms={"hamburg": "HAM"},
    )
    assert _found(rules.extract("to hamburgg")) == [("city", "HAM", None)]
    assert _found(rules.extract("to Hamburg Altonaa")) == [("city", "Hamburg Altona", None)]


def _system(*dimensions: str) -> SystemEntityExtractor:
    return SystemEntityExtractor(dimensions, "en", clock=lambda: NOW)


def test_amounts_and_dates_are_read_as_duckling_gives_them() -> None:
    amount, when = _system("number", "amount-of-money", "time").extract("transfer 20 dollars tomorrow")
    assert amount.as_rasa() == {
        "entity": "amount-of-money",
        "value": 20,
        "start": 9,
        "end": 19,
        "extractor": "SystemEntityExtractor",
        "additional_info": {"value": 20, "type": "value", "unit": "USD"},
    }
    assert (when.entity, when.value, when.text) == ("time", "2024-05-02T00:00:00.000+02:00", "tomorrow")
    assert when.additional_info == {"value": when.value, "grain": "day", "type": "value"}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("refund 12,50 € please", [("amount-of-money", 12.5)]),
        ("it was $1,200.50", [("amount-of-money", 1200.5)]),
        ("I am 25 years old", [("number", 25)]),
        ("mail me at jo.doe@example.org", [("email", "jo.doe@example.org")]),
        ("next friday at 7pm", [("time", "2024-05-03T19:00:00.000+02:00")]),
        ("order 12345 next week", [("number", 12345), ("time", "2024-05-06T00:00:00.000+02:00")]),
        ("may the sun be with you for a second", []),
        ("may I ask something", []),
        ("transfer twenty dollars to Maria", [("amount-of-money", 20)]),
        ("two hundred and five tickets", [("number", 205)]),
        ("someone and everyone", []),
    ],
)
def test_system_entities(text: str, expected: list[tuple[str, object]]) -> None:
    found = _system("number", "amount-of-money", "time", "email").extract(text)
    assert [(e.entity, e.value) for e in found] == expected


def test_system_entities_only_when_the_domain_declares_them() -> None:
    assert SystemEntityExtractor.for_entities(["person", "city"], "en") is None
    extractor = SystemEntityExtractor.for_entities(["time", "person"], "en")
    assert extractor is not None and extractor.dimensions == ("time",)
    combined = CombinedEntityExtractor(_rules(examples=TRANSFERS), _learned(TRANSFERS), None)
    assert _found(combined.extract("transfer 20 dollars tomorrow to Maria")) == [("person", "Maria", None)]


def test_a_lookup_entry_beats_a_longer_learned_span_and_lends_it_no_role() -> None:
    examples = [
        _example("fly from New York City to Rome", ("New York City", "city", "from"), ("Rome", "city", "to")),
        _example("a flight from Salt Lake City to Oslo", ("Salt Lake City", "city", "from"), ("Oslo", "city", "to")),
        *FLIGHTS,
    ]
    lookups = RuleEntityExtractor(
        language="en", regexes=[], lookups={"town": ["Jersey"]}, examples=[], synonyms={"oslo": "OSL"}
    )
    learned = _learned(examples)
    text = "a flight from New Jersey City to Oslo"
    assert _found(learned.extract(text))[0] == ("city", "New Jersey City", "from")
    found = CombinedEntityExtractor(lookups, learned).extract(text)
    assert _found(found) == [("town", "Jersey", None), ("city", "OSL", "to")]
    assert [e.extractor for e in found] == ["RuleEntityExtractor", "CRFEntityExtractor"]


def test_a_lookup_match_takes_the_role_learned_for_the_same_span() -> None:
    rules = RuleEntityExtractor(language="en", regexes=[], lookups={"city": ["Berlin"]}, examples=[], synonyms={})
    (berlin, paris) = CombinedEntityExtractor(rules, _learned(FLIGHTS)).extract("fly from Berlin to Paris")
    assert (berlin.extractor, berlin.role) == ("RuleEntityExtractor", "from")
    assert (paris.extractor, paris.role) == ("CRFEntityExtractor", "to")


def test_the_longer_span_wins_between_a_seen_phrase_and_a_system_entity() -> None:
    rules = _rules(examples=[_example("my code is 12 34", ("12 34", "code", None))])
    combined = CombinedEntityExtractor(rules, None, _system("number", "time"))
    assert [(e.entity, e.value) for e in combined.extract("code 12 34 tomorrow")] == [
        ("code", "12 34"),
        ("time", "2024-05-02T00:00:00.000+02:00"),
    ]


def test_state_round_trips_with_the_learned_model() -> None:
    data = TrainingData(lookups={"city": ["Hamburg"]}, synonyms={"paris": "PAR"})
    combined = CombinedEntityExtractor(_rules(data, FLIGHTS), _learned(FLIGHTS), SystemEntityExtractor(["time"], "en"))
    assert combined.learned is not None
    restored = CombinedEntityExtractor.from_dict(json.loads(json.dumps(combined.to_dict())), combined.learned.model)
    text = "fly from Hamburgg to Paris on May 3"
    found = restored.extract(text)
    assert found == combined.extract(text)
    assert [(e.entity, e.value, e.role) for e in found][:2] == [("city", "Hamburg", "from"), ("city", "PAR", "to")]
    assert found[2].entity == "time"
    with pytest.raises(ValueError, match="learned entity model is missing"):
        CombinedEntityExtractor.from_dict(combined.to_dict(), None)


def test_the_default_clock_is_timezone_aware() -> None:
    (found,) = SystemEntityExtractor(["time"], "en").extract("see you tomorrow")
    moment = datetime.fromisoformat(found.value)
    assert moment.utcoffset() is not None
    assert moment.date() == (datetime.now(UTC).astimezone() + timedelta(days=1)).date()


def test_examples_without_entities_teach_where_there_are_none() -> None:
    """As Rasa trains its CRF on every example: a lone word answering "which cuisine?" is a
    cuisine, a lone "thanks" is not (Rasa's formbot taught a CRF otherwise when it saw only the
    annotated examples)."""
    cuisines = [_example(word, (word, "cuisine", None)) for word in ("italian", "thai", "mexican", "greek")]
    plain = [TrainingExample(text, "chitchat") for text in ("thanks", "hello", "stop", "good", "ok great")]
    learned = _learned([*cuisines, *plain, *[_example(f"I want {w} food", (w, "cuisine", None)) for w in ("thai",)]])
    assert _found(learned.extract("thanks")) == []
    assert _found(learned.extract("stop")) == []
    assert _found(learned.extract("italian")) == [("cuisine", "italian", None)]
