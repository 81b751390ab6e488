"""Response rendering (variations, placeholders, conditions) and the handoff SLA clock."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.dialogue.handoff import SlaTargets, build_handoff, transcript
from crowddesk.bot.dialogue.policy import Decision, DecisionKind, HandoffReason
from crowddesk.bot.project.config import SlaSettings, load_config
from crowddesk.bot.project.domain import Button, Domain, Response, SessionConfig
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.nlu.types import Entity, IntentScore, Parse
from tests.demo_bot import API_ACCESS, copy_demo_project
from tests.test_end_to_end import say, tracker

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def domain_with(responses: dict[str, list[Response]]) -> Domain:
    return Domain(
        intents=[],
        entities=[],
        slots={},
        responses=responses,
        actions=[],
        forms={},
        session_config=SessionConfig(),
        path=None,
    )


def test_renderer_fills_slots_and_values_and_keeps_unknown_placeholders() -> None:
    renderer = ResponseRenderer(
        domain_with(
            {
                "utter_wait": [
                    Response(
                        text="{name}, about {wait_minutes} min. {unknown}",
                        buttons=[Button("Rate {name}", "/rate")],
                        metadata={},
                    )
                ],
            }
        )
    )
    reply = renderer.render("utter_wait", "c1", {"name": "Ana"}, wait_minutes=12)
    assert reply.text == "Ana, about 12 min. {unknown}"
    assert reply.buttons[0].title == "Rate Ana" and reply.buttons[0].payload == "/rate"
    assert reply.recipient_id == "c1"


def test_renderer_honours_slot_conditions_and_picks_among_variations() -> None:
    renderer = ResponseRenderer(
        domain_with(
            {
                "utter_hi": [
                    Response(
                        text="Welcome back",
                        buttons=[],
                        metadata={},
                        condition=[{"type": "slot", "name": "known", "value": True}],
                    ),
                    Response(text="Hello", buttons=[], metadata={}),
                    Response(text="Hi there", buttons=[], metadata={}),
                ],
            }
        ),
        rng=random.Random(1),
    )
    assert renderer.render("utter_hi", "c", {"known": True}).text == "Welcome back"
    seen = {renderer.render("utter_hi", "c", {"known": False}).text for _ in range(30)}
    assert seen == {"Hello", "Hi there"}


def test_sla_targets_by_channel_and_priority() -> None:
    sla = SlaTargets()
    assert sla.due_at("telegram", "normal", NOW) == NOW + timedelta(minutes=30)
    assert sla.due_at("rest", "normal", NOW) == NOW + timedelta(minutes=60)
    assert sla.due_at("slack", "high", NOW) == NOW + timedelta(minutes=15)


def test_sla_targets_come_from_config_per_channel() -> None:
    sla = SlaTargets(
        SlaSettings(messaging_minutes=20, other_minutes=120, channel_minutes={"email": 480}, high_priority_factor=0.25)
    )
    assert sla.minutes("webchat", "normal") == 20
    assert sla.minutes("rest", "normal") == 120
    assert sla.minutes("email", "normal") == 480
    assert sla.minutes("email", "high") == 120


def test_handoff_packet_carries_what_the_bot_knew() -> None:
    parse = Parse(
        "my card was charged twice at ACME",
        IntentScore("faq/transaction_charged_twice", 0.41),
        [IntentScore("faq/transaction_charged_twice", 0.41)],
        [Entity("merchant", "ACME", 29, 33, "RuleEntityExtractor")],
    )
    entry = KBEntry(
        "faq/transaction_charged_twice",
        ["Why was I charged twice?"],
        "Pending...",
        source_url="https://community.example/t/1",
    )
    events = [
        {"event": "user", "timestamp": 1.0, "text": "hi"},
        {"event": "bot", "timestamp": 2.0, "text": "Hello!"},
        {"event": "action", "timestamp": 2.0, "name": "action_listen"},
        {"event": "user", "timestamp": 3.0, "text": parse.text},
    ]
    handoff = build_handoff(
        sender_id="c9",
        channel="telegram",
        parse=parse,
        decision=Decision(DecisionKind.HAND_OFF, 0.41, handoff_reason=HandoffReason.FAILED_TURNS),
        candidates=[(Candidate(entry.id, entry.title, 0.62, 0.7, 0.4, "Why was I charged twice?"), 0.55, entry)],
        events=events,
        sla=SlaTargets(),
        now=NOW,
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


@pytest.mark.parametrize(
    ("reason", "priority"),
    [
        (HandoffReason.FRUSTRATION, "high"),
        (HandoffReason.ALWAYS_HUMAN, "high"),
        (HandoffReason.OUT_OF_SCOPE, "normal"),
        (HandoffReason.CUSTOMER_REQUEST, "normal"),
    ],
)
def test_upset_customers_and_always_human_topics_jump_the_queue(reason: HandoffReason, priority: str) -> None:
    parse = Parse("WHERE IS MY CARD???", IntentScore("faq/card_arrival", 0.9), [IntentScore("faq/card_arrival", 0.9)])
    decision = Decision(DecisionKind.HAND_OFF, 0.9, handoff_reason=reason, handoff_detail="repeated_message")
    handoff = build_handoff(
        sender_id="c1",
        channel="webchat",
        parse=parse,
        decision=decision,
        candidates=[],
        events=[],
        sla=SlaTargets(),
        now=NOW,
    )
    assert handoff.priority == priority
    assert handoff.due_at == NOW + timedelta(minutes=15 if priority == "high" else 30)
    # The agent reads why, including which frustration rules fired.
    assert "repeated_message" in handoff.packet["summary"]


HANDOFF_CONFIG = """
policies:
  - name: SupportPolicy
    always_human_intents: [report_fraud, complaint]
    handoff:
      frustration:
        threshold: 3
        extra_phrases: [never again]
      sla:
        messaging_minutes: 20
        channel_minutes: {email: 240}
        warning_minutes: 10
      expected_wait:
        default_first_reply_minutes: 8
"""


def test_handoff_settings_are_read_from_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(HANDOFF_CONFIG, encoding="utf-8")
    policy = load_config(path).policy
    assert policy.always_human_intents == ["report_fraud", "complaint"]
    assert policy.handoff_intents == ["human_handoff"]
    assert policy.handoff.frustration.threshold == 3.0
    assert policy.handoff.frustration.extra_phrases == ["never again"]
    assert policy.handoff.sla.channel_minutes == {"email": 240.0}
    assert (policy.handoff.sla.messaging_minutes, policy.handoff.sla.other_minutes) == (20.0, 60.0)
    assert policy.handoff.sla.warning_minutes == 10.0
    assert policy.handoff.expected_wait.default_first_reply_minutes == 8.0


def test_changing_handoff_settings_needs_no_retraining(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(HANDOFF_CONFIG, encoding="utf-8")
    before = load_config(path).fingerprint_dict()
    path.write_text(HANDOFF_CONFIG.replace("warning_minutes: 10", "warning_minutes: 2"), encoding="utf-8")
    assert load_config(path).fingerprint_dict() == before


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("threshold: 3", "treshold: 3", "config.yml:7: policies[0].handoff.frustration.treshold: unknown key"),
        ("{email: 240}", "{email: -5}", "policies[0].handoff.sla.channel_minutes: email: must be in (0, inf]"),
        ("{email: 240}", "{email: soon}", "policies[0].handoff.sla.channel_minutes.email: expected a number"),
        ("warning_minutes: 10", "warning_minutes: [5]", "policies[0].handoff.sla.warning_minutes: expected a number"),
        (
            "      sla:\n",
            "      sla: 30\n      x:\n",
            "policies[0].handoff.x: unknown key; expected one of: frustration, person_request, sla, expected_wait",
        ),
        ("[report_fraud, complaint]", "report_fraud", "policies[0].always_human_intents: expected a list of strings"),
    ],
)
def test_bad_handoff_settings_name_the_file_and_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(HANDOFF_CONFIG.replace(old, new), encoding="utf-8")
    with pytest.raises(ProjectFileError) as error:
        load_config(path, root=tmp_path)
    assert message in str(error.value)


# -- the demo bot end to end ------------------------------------------------------------


def resolve_with_an_agent(client: TestClient, sender: str) -> dict[str, Any]:
    """Claim, answer and resolve the customer's ticket through the agent API."""
    agents = client.app.state.bot.agents
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    agents.add(agent_id, "Ana Agent")
    headers = {"Authorization": f"Bearer {agents.issue_token(agent_id)}"}
    ticket = tracker(client, sender)["handoff"]
    for action, body in (("claim", None), ("reply", {"text": "Sorted, your card is on its way."}), ("resolve", None)):
        response = client.post(f"/desk/api/tickets/{ticket['id']}/{action}", headers=headers, json=body)
        assert response.status_code == 200, response.text
    return ticket


@pytest.mark.parametrize(("answer", "rating"), [("4", 4), ("5 stars", 5), ("👎", 1), ('/rate{"rating": 3}', 3)])
def test_the_answer_to_the_rating_question_is_stored_and_thanked_for(
    demo_client: TestClient, sender: str, answer: str, rating: int
) -> None:
    say(demo_client, "I want to talk to a real person please", sender)
    ticket = resolve_with_an_agent(demo_client, sender)
    replies = say(demo_client, answer, sender)
    assert [r["text"] for r in replies] == ["Thanks for your feedback, it helps us improve."]
    stored = demo_client.app.state.bot.conversations.get_handoff(ticket["id"])
    assert stored.rating == rating
    user = [e for e in tracker(demo_client, sender)["events"] if e["event"] == "user"][-1]
    assert user["parse_data"]["intent"] == {"name": "rate", "confidence": 1.0}
    # Only the answer to the question is a rating: the next "4" is an ordinary message again.
    say(demo_client, "4", sender)
    assert demo_client.app.state.bot.conversations.get_handoff(ticket["id"]).rating == rating


def test_a_customer_repeating_themselves_angrily_is_handed_off_with_high_priority(
    demo_client: TestClient, sender: str
) -> None:
    say(demo_client, "where is the card you sent me", sender)
    replies = say(demo_client, "WHERE IS THE CARD YOU SENT ME???", sender)
    handoff = tracker(demo_client, sender)["handoff"]
    assert handoff is not None and handoff["reason"] == "frustration"
    assert handoff["priority"] == "high"
    assert "repeated_message" in handoff["packet"]["summary"]
    assert any("queue" in r["text"] for r in replies)


def test_an_always_human_intent_goes_to_a_person_however_confident_the_bot_is(
    demo_training: TrainResult, tmp_path: Path
) -> None:
    project = copy_demo_project(tmp_path)
    config = project / "config.yml"
    config.write_text(
        config.read_text(encoding="utf-8").replace(
            "always_human_intents: []", "always_human_intents: [track_card_delivery]"
        ),
        encoding="utf-8",
    )
    bot = assemble(project, model_dir=demo_training.model_dir, database_url=f"sqlite:///{tmp_path / 'bot.db'}")
    with TestClient(create_app(bot, API_ACCESS)) as client:
        say(client, "can you track my card order CD-482913 please", "c1")
        handoff = tracker(client, "c1")["handoff"]
    assert handoff is not None
    assert (handoff["reason"], handoff["priority"]) == ("always_human", "high")
    assert handoff["packet"]["intent"]["name"] == "track_card_delivery"


def test_the_customer_is_told_the_wait_estimated_from_the_live_queue(demo_client: TestClient, sender: str) -> None:
    bot = demo_client.app.state.bot
    replies = say(demo_client, "can you recommend a good lasagne recipe?", sender)
    due_at = datetime.fromisoformat(tracker(demo_client, sender)["handoff"]["due_at"])
    expected = bot.engine.wait_estimator.estimate(due_at, datetime.now(UTC))
    assert f"in about {expected} minutes" in replies[-1]["text"]
