"""Content checks for the Northwind Bank demo bot (domain, NLU data, rules, custom action)."""

from __future__ import annotations

import asyncio
import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import SlotSet
from rasa_sdk.executor import ActionExecutor, CollectingDispatcher
from ruamel.yaml import YAML

from actions.actions import ActionCardDeliveryStatus

PROJECT = Path(__file__).resolve().parents[1]
BANKING77_TOPICS = 77
# `[text](entity)`: the only annotation form the demo data uses.
ANNOTATION = re.compile(r"\[(?P<text>[^\]]+)\]\((?P<entity>[^)]+)\)")
FAQ_SOURCE = re.compile(r"https://community\.northwind-bank\.example/t/[a-z0-9-]+/\d{4,}")
# `/intent` optionally followed by a JSON entity dict, as in Rasa button payloads.
PAYLOAD = re.compile(r"/(?P<intent>[^{]+)(?P<entities>\{.*\})?")
ENGINE_RESPONSES = (
    "utter_handoff",
    "utter_handoff_queued",
    "utter_out_of_scope",
    "utter_default",
    "utter_clarify",
    "utter_ask_rating",
)


def load_yaml(relative: str) -> dict[str, Any]:
    return YAML(typ="safe", pure=True).load((PROJECT / relative).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def domain() -> dict[str, Any]:
    return load_yaml("domain.yml")


@pytest.fixture(scope="module")
def nlu() -> list[dict[str, Any]]:
    return load_yaml("data/nlu.yml")["nlu"]


@pytest.fixture(scope="module")
def rules() -> list[dict[str, Any]]:
    return load_yaml("data/rules.yml")["rules"]


def block_lines(block: dict[str, Any]) -> list[str]:
    """The `- item` lines of an nlu.yml `examples: |` block, without the dash."""
    return [line.strip()[2:].strip() for line in block["examples"].splitlines() if line.strip()]


@pytest.fixture(scope="module")
def examples(nlu: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Annotated example texts by intent name."""
    return {block["intent"]: block_lines(block) for block in nlu if "intent" in block}


def declared_intents(domain: dict[str, Any]) -> list[str]:
    """Intent names, whether listed plainly or as `name: {metadata: ...}`."""
    return [next(iter(i)) if isinstance(i, dict) else i for i in domain["intents"]]


def plain(example: str) -> str:
    return ANNOTATION.sub(lambda m: m["text"], example)


def annotations(examples: dict[str, list[str]]) -> list[tuple[str, str, str]]:
    """(intent, entity, annotated text) for every annotation in the NLU data."""
    return [
        (intent, m["entity"], m["text"])
        for intent, texts in examples.items()
        for text in texts
        for m in ANNOTATION.finditer(text)
    ]


def response_text(domain: dict[str, Any], name: str) -> str:
    return domain["responses"][name][0]["text"]


@pytest.mark.parametrize(
    "relative", ["domain.yml", "data/nlu.yml", "data/rules.yml", "endpoints.yml", "credentials.yml"]
)
def test_every_project_file_declares_rasa_format_3_1(relative: str) -> None:
    assert load_yaml(relative)["version"] == "3.1"


def test_there_is_one_faq_intent_per_banking77_topic_with_enough_examples(
    examples: dict[str, list[str]],
) -> None:
    faq = {intent: texts for intent, texts in examples.items() if intent.startswith("faq/")}
    assert len(faq) == BANKING77_TOPICS
    too_few = {intent: len(texts) for intent, texts in faq.items() if len(texts) < 10}
    assert too_few == {}


def test_every_faq_intent_has_one_sourced_answer_and_vice_versa(
    domain: dict[str, Any], examples: dict[str, list[str]]
) -> None:
    faq_topics = {intent.removeprefix("faq/") for intent in examples if intent.startswith("faq/")}
    answers = {
        name.removeprefix("utter_faq/"): variations
        for name, variations in domain["responses"].items()
        if name.startswith("utter_faq/")
    }
    assert set(answers) == faq_topics
    sources = []
    for topic, variations in answers.items():
        assert len(variations) == 1, topic
        answer = variations[0]
        assert answer["text"].strip(), topic
        assert answer["metadata"]["title"].strip(), topic
        assert FAQ_SOURCE.fullmatch(answer["metadata"]["source"]), topic
        sources.append(answer["metadata"]["source"])
    assert len(set(sources)) == len(sources)


def test_domain_lists_the_faq_retrieval_intent_not_its_sub_intents(
    domain: dict[str, Any], examples: dict[str, list[str]]
) -> None:
    assert "faq" in declared_intents(domain)
    assert not [intent for intent in declared_intents(domain) if "/" in intent]
    undeclared = {intent.split("/")[0] for intent in examples} - set(declared_intents(domain))
    assert undeclared == set()


def test_rules_use_only_declared_intents_and_existing_actions(
    domain: dict[str, Any], rules: list[dict[str, Any]]
) -> None:
    responses = set(domain["responses"])
    # A retrieval action such as `utter_faq` exists when responses `utter_faq/<key>` do.
    retrieval_actions = {name.split("/")[0] for name in responses if "/" in name}
    known_actions = responses | retrieval_actions | set(domain["actions"])
    steps = [step for rule in rules for step in rule["steps"]]
    assert {s["intent"] for s in steps if "intent" in s} - set(declared_intents(domain)) == set()
    assert {s["action"] for s in steps if "action" in s} - known_actions == set()


def test_the_engine_finds_every_response_it_sends(domain: dict[str, Any]) -> None:
    missing = [name for name in ENGINE_RESPONSES if name not in domain["responses"]]
    assert missing == []
    assert "{wait_minutes}" in response_text(domain, "utter_handoff_queued")


def test_rating_buttons_send_ratings_one_to_five(domain: dict[str, Any]) -> None:
    buttons = domain["responses"]["utter_ask_rating"][0]["buttons"]
    payloads = [PAYLOAD.fullmatch(button["payload"]) for button in buttons]
    assert [p["intent"] for p in payloads] == ["rate"] * 5
    assert [json.loads(p["entities"]) for p in payloads] == [{"rating": n} for n in range(1, 6)]


def test_button_payloads_name_declared_intents(domain: dict[str, Any], examples: dict[str, list[str]]) -> None:
    payload_intents = [
        PAYLOAD.fullmatch(button["payload"])["intent"]
        for variations in domain["responses"].values()
        for variation in variations
        for button in variation.get("buttons", [])
    ]
    assert len(payload_intents) > 5  # the rating buttons alone are five
    for intent in payload_intents:
        assert intent.split("/")[0] in declared_intents(domain), intent
        if "/" in intent:
            assert intent in examples, intent


def test_annotated_entities_are_declared_and_every_entity_can_be_extracted(
    domain: dict[str, Any], nlu: list[dict[str, Any]], examples: dict[str, list[str]]
) -> None:
    annotated = {entity for _, entity, _ in annotations(examples)}
    assert annotated - set(domain["entities"]) == set()
    by_rule = {block.get("regex") or block.get("lookup") for block in nlu} - {None}
    assert set(domain["entities"]) - annotated - by_rule == set()


def test_ratings_are_read_only_from_explicit_rating_phrases(
    nlu: list[dict[str, Any]], examples: dict[str, list[str]]
) -> None:
    # An annotated "5" would become a phrase matched in every message ("I tried 5 times").
    assert [text for _, entity, text in annotations(examples) if entity == "rating"] == []
    (regex_block,) = [block for block in nlu if block.get("regex") == "rating"]
    (pattern,) = block_lines(regex_block)
    rating = re.compile(pattern, re.IGNORECASE)  # as Rasa's regex extractor runs it
    expected = {
        "I'd give it 4 out of 5": ["4"],
        "3/5": ["3"],
        "5 stars": ["5"],
        "1 Star": ["1"],
        "I tried 5 times": [],
        "I got 5 cards": [],
        "CD-482913": [],
    }
    assert {text: rating.findall(text) for text in expected} == expected


def test_slots_are_filled_from_declared_entities(domain: dict[str, Any]) -> None:
    for slot, spec in domain["slots"].items():
        for mapping in spec["mappings"]:
            assert mapping["entity"] in domain["entities"], slot


def test_no_example_text_appears_under_two_intents(examples: dict[str, list[str]]) -> None:
    owners: dict[str, set[str]] = defaultdict(set)
    for intent, texts in examples.items():
        for text in texts:
            owners[" ".join(plain(text).lower().split())].add(intent)
    shared = {text: sorted(intents) for text, intents in owners.items() if len(intents) > 1}
    assert shared == {}


def test_order_numbers_are_annotated_and_match_the_regex(
    nlu: list[dict[str, Any]], examples: dict[str, list[str]]
) -> None:
    (regex_block,) = [block for block in nlu if block.get("regex") == "order_number"]
    (pattern,) = block_lines(regex_block)
    order_number = re.compile(pattern)
    annotated = [text for _, entity, text in annotations(examples) if entity == "order_number"]
    assert len(annotated) >= 10
    assert [text for text in annotated if not order_number.fullmatch(text)] == []
    unannotated = [t for t in examples["inform_order_number"] if "](order_number)" not in t]
    assert unannotated == []
    # A number in a sentence must be annotated, or the extractor learns to skip it.
    missed = [text for texts in examples.values() for text in texts if order_number.search(ANNOTATION.sub("", text))]
    assert missed == []


def run_action(latest_entities: list[dict[str, Any]], slots: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The texts the action sends and the events it returns for one tracker state."""
    tracker = Tracker.from_dict(
        {
            "sender_id": "test-user",
            "slots": slots,
            "latest_message": {"text": "where is my card order?", "entities": latest_entities},
            "events": [],
        }
    )
    dispatcher = CollectingDispatcher()
    events = ActionCardDeliveryStatus().run(dispatcher, tracker, {})
    return [message["text"] for message in dispatcher.messages], events


def order_entity(value: str) -> dict[str, Any]:
    return {"entity": "order_number", "value": value, "start": 0, "end": len(value)}


def test_action_asks_for_the_order_number_when_none_is_known() -> None:
    messages, events = run_action([], {"order_number": None})
    assert messages == [
        ("Sure — what's your card order number? It looks like CD-123456 and is in your order confirmation e-mail.")
    ]
    assert events == []


@pytest.mark.parametrize("bad", ["CD-12345", "CD-1234567", "XY-482913", "482913", "CD 482913"])
def test_action_rejects_a_malformed_order_number_and_clears_the_slot(bad: str) -> None:
    messages, events = run_action([order_entity(bad)], {"order_number": None})
    assert len(messages) == 1
    assert "doesn't look like a card order number" in messages[0]
    assert "CD-123456" in messages[0]  # shows the expected format
    assert events == [SlotSet("order_number", None)]


def test_action_says_it_cannot_find_an_order_whose_digits_sum_to_a_multiple_of_seven() -> None:
    messages, events = run_action([order_entity("CD-123456")], {"order_number": None})  # sum 21
    assert messages == [
        (
            "Sorry, we can't find a card order with the number CD-123456. Please check it against "
            "your order confirmation e-mail, or type 'talk to a person' and we'll look into it."
        )
    ]
    assert events == [SlotSet("order_number", None)]


@pytest.mark.parametrize(
    ("number", "status"),
    [
        ("CD-482913", "is being printed"),  # digit sum 27: 27 % 3 == 0
        ("CD-100000", "has been dispatched and is expected in 2 working days"),  # 1 % 3 == 1
        ("CD-103928", "was delivered"),  # 23 % 3 == 2
    ],
)
def test_action_reports_the_status_of_a_known_order_and_remembers_it(number: str, status: str) -> None:
    messages, events = run_action([order_entity(number)], {"order_number": None})
    assert len(messages) == 1
    assert number in messages[0]
    assert status in messages[0]
    assert events == [SlotSet("order_number", number)]


def test_action_normalises_a_lower_case_order_number() -> None:
    messages, events = run_action([order_entity(" cd-482913 ")], {"order_number": None})
    assert "CD-482913 is being printed" in messages[0]
    assert events == [SlotSet("order_number", "CD-482913")]


def test_action_uses_the_remembered_slot_when_the_message_has_no_number() -> None:
    messages, events = run_action([], {"order_number": "CD-100000"})
    assert "CD-100000 has been dispatched" in messages[0]
    assert events == [SlotSet("order_number", "CD-100000")]


def test_a_number_in_the_latest_message_overrides_the_remembered_one() -> None:
    messages, events = run_action([order_entity("CD-103928")], {"order_number": "CD-100000"})
    assert "CD-103928 was delivered" in messages[0]
    assert events == [SlotSet("order_number", "CD-103928")]


def test_action_server_registers_and_runs_the_action_from_the_actions_package() -> None:
    executor = ActionExecutor()
    executor.register_package("actions")
    call = {
        "next_action": "action_card_delivery_status",
        "sender_id": "test-user",
        "version": "3.1.0",
        "domain": {},
        "tracker": {
            "sender_id": "test-user",
            "slots": {"order_number": None},
            "latest_message": {"text": "CD-482913", "entities": [order_entity("CD-482913")]},
            "events": [],
        },
    }
    result = asyncio.run(executor.run(call))
    assert result is not None
    assert result.events == [SlotSet("order_number", "CD-482913")]
    assert "CD-482913 is being printed" in result.responses[0]["text"]
