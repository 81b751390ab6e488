"""Response rendering (variations, placeholders, conditions) and the handoff SLA clock."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

from crowddesk.bot.domain import Button, Domain, Response, SessionConfig
from crowddesk.bot.handoff import SlaTargets, build_handoff, transcript
from crowddesk.bot.policy import Decision, DecisionKind, HandoffReason
from crowddesk.bot.responses import ResponseRenderer
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.types import Entity, IntentScore, Parse

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)


def domain_with(responses: dict[str, list[Response]]) -> Domain:
    return Domain(
        intents=[], entities=[], slots={}, responses=responses, actions=[], forms={},
        session_config=SessionConfig(), path=None,
    )


def test_renderer_fills_slots_and_values_and_keeps_unknown_placeholders() -> None:
    renderer = ResponseRenderer(domain_with({
        "utter_wait": [Response(text="{name}, about {wait_minutes} min. {unknown}", buttons=[
            Button("Rate {name}", "/rate")], metadata={})],
    }))
    reply = renderer.render("utter_wait", "c1", {"name": "Ana"}, wait_minutes=12)
    assert reply.text == "Ana, about 12 min. {unknown}"
    assert reply.buttons[0].title == "Rate Ana" and reply.buttons[0].payload == "/rate"
    assert reply.recipient_id == "c1"


def test_renderer_honours_slot_conditions_and_picks_among_variations() -> None:
    renderer = ResponseRenderer(domain_with({
        "utter_hi": [
            Response(text="Welcome back", buttons=[], metadata={},
                     condition=[{"type": "slot", "name": "known", "value": True}]),
            Response(text="Hello", buttons=[], metadata={}),
            Response(text="Hi there", buttons=[], metadata={}),
        ],
    }), rng=random.Random(1))
    assert renderer.render("utter_hi", "c", {"known": True}).text == "Welcome back"
    seen = {renderer.render("utter_hi", "c", {"known": False}).text for _ in range(30)}
    assert seen == {"Hello", "Hi there"}


def test_sla_targets_by_channel_and_priority() -> None:
    sla = SlaTargets()
    assert sla.due_at("telegram", "normal", NOW) == NOW + timedelta(minutes=30)
    assert sla.due_at("rest", "normal", NOW) == NOW + timedelta(minutes=60)
    assert sla.due_at("slack", "high", NOW) == NOW + timedelta(minutes=15)
    assert sla.expected_wait_minutes("webchat", 0) == 5
    assert sla.expected_wait_minutes("webchat", 2) == 15
    # Never promise more than the channel's target.
    assert sla.expected_wait_minutes("webchat", 50) == 30


def test_handoff_packet_carries_what_the_bot_knew() -> None:
    parse = Parse(
        "my card was charged twice at ACME", IntentScore("faq/transaction_charged_twice", 0.41),
        [IntentScore("faq/transaction_charged_twice", 0.41)],
        [Entity("merchant", "ACME", 29, 33, "RuleEntityExtractor")],
    )
    entry = KBEntry("faq/transaction_charged_twice", ["Why was I charged twice?"], "Pending...",
                    source_url="https://community.example/t/1")
    events = [
        {"event": "user", "timestamp": 1.0, "text": "hi"},
        {"event": "bot", "timestamp": 2.0, "text": "Hello!"},
        {"event": "action", "timestamp": 2.0, "name": "action_listen"},
        {"event": "user", "timestamp": 3.0, "text": parse.text},
    ]
    handoff = build_handoff(
        sender_id="c9", channel="telegram", parse=parse,
        decision=Decision(DecisionKind.HAND_OFF, 0.41, handoff_reason=HandoffReason.FAILED_TURNS),
        candidates=[(Candidate(entry.id, entry.title, 0.62, 0.7, 0.4, "Why was I charged twice?"), 0.55, entry)],
        events=events, sla=SlaTargets(), now=NOW,
    )
    packet = handoff.packet
    assert handoff.priority == "high" and handoff.due_at == NOW + timedelta(minutes=15)
    assert packet["reason"] == "failed_turns" and packet["channel"] == "telegram"
    assert [line["role"] for line in packet["transcript"]] == ["customer", "bot", "customer"]
    assert packet["entities"][0]["value"] == "ACME"
    assert packet["kb_candidates"][0]["source_url"] == "https://community.example/t/1"
    assert packet["kb_candidates"][0]["confidence"] == 0.55
    assert "charged twice at ACME" in packet["summary"] and "failed turns" in packet["summary"]
    assert transcript(events) == packet["transcript"]
