"""The gap report: unanswered questions grouped by meaning, covered ones left out."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.curation.gaps import gap_report, unanswered_questions
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.nlu.encoders import Encoder

DAY = 86400.0


def turn(store: ConversationStore, sender: str, text: str, outcome: str, *, days_ago: float = 0) -> None:
    """One bot turn on `text` ending in `outcome`: a handoff reason, or the action the bot took."""
    at = time.time() - days_ago * DAY
    events: list[dict[str, object]] = [{"event": "user", "timestamp": at, "text": text, "parse_data": {"text": text}}]
    if outcome in ("low_confidence", "out_of_scope", "customer_request"):
        events.append({"event": "handoff", "timestamp": at, "reason": outcome})
    else:
        events.append({"event": "action", "timestamp": at, "name": outcome})
    store.record_turn(sender, "webchat", events, {}, 0, "bot", None)


@pytest.fixture
def conversations(db_engine: Engine) -> ConversationStore:
    store = ConversationStore(db_engine)
    turn(store, "a", "How do I change my PIN?", "low_confidence")
    turn(store, "b", "I want to change the PIN of my card", "action_default_fallback")
    turn(store, "c", "how can I change my card PIN", "low_confidence")
    turn(store, "d", "Can I open an account for my child?", "out_of_scope", days_ago=10)
    turn(store, "e", "Can I open a bank account for my kid?", "action_clarify", days_ago=10)
    turn(store, "f", "let me talk to a person", "customer_request")  # not a content gap
    turn(store, "g", "What are your opening hours?", "action_answer_from_kb")  # answered
    return store


def test_questions_the_bot_could_not_answer_are_found(conversations: ConversationStore, db_engine: Engine) -> None:
    found = unanswered_questions(db_engine)

    assert sorted((q.text, q.outcome) for q in found) == [
        ("Can I open a bank account for my kid?", "unsure"),
        ("Can I open an account for my child?", "handoff"),
        ("How do I change my PIN?", "handoff"),
        ("I want to change the PIN of my card", "unsure"),
        ("how can I change my card PIN", "handoff"),
    ]
    recent = unanswered_questions(db_engine, since=datetime.now(UTC) - timedelta(days=2))
    assert len(recent) == 3


def test_gaps_are_clustered_by_meaning_and_biggest_first(
    conversations: ConversationStore,
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    clusters = gap_report(db_engine, minilm_encoder)

    assert [(c.size, sorted(c.examples)) for c in clusters] == [
        (3, ["How do I change my PIN?", "I want to change the PIN of my card", "how can I change my card PIN"]),
        (2, ["Can I open a bank account for my kid?", "Can I open an account for my child?"]),
    ]
    assert clusters[0].outcomes == {"handoff": 2, "unsure": 1}
    assert clusters[0].as_dict()["size"] == 3
    assert gap_report(db_engine, minilm_encoder) == clusters  # deterministic
    recent = gap_report(db_engine, minilm_encoder, since=datetime.now(UTC) - timedelta(days=2))
    assert [c.size for c in recent] == [3]


def test_questions_a_published_entry_now_covers_drop_out(
    conversations: ConversationStore,
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    KnowledgeBaseStore(db_engine).upsert(
        KBEntry(
            id="manual:pin", questions=["How do I change my PIN?", "change card PIN"], answer="Cards > PIN in the app."
        )
    )

    clusters = gap_report(db_engine, minilm_encoder)

    assert [sorted(c.examples) for c in clusters] == [
        ["Can I open a bank account for my kid?", "Can I open an account for my child?"]
    ]


def test_no_conversations_no_gaps(db_engine: Engine, minilm_encoder: Encoder) -> None:
    assert gap_report(db_engine, minilm_encoder) == []


def answered_then_pressed(store: ConversationStore, sender: str, question: str, entry_id: str, *presses: bool) -> None:
    """The bot answers `question` from `entry_id` with feedback buttons; the customer presses them."""
    at = time.time()
    answer_id = f"answer-{sender}"
    store.record_turn(
        sender,
        "webchat",
        [
            {"event": "user", "timestamp": at, "text": question, "parse_data": {"text": question}},
            {"event": "action", "timestamp": at, "name": "action_answer_from_kb"},
            {
                "event": "bot",
                "timestamp": at,
                "text": "...",
                "data": {"custom": {"kb_entry": entry_id, "answer_id": answer_id}},
            },
        ],
        {},
        0,
        "bot",
        None,
    )
    for helpful in presses:
        text = f'/kb_feedback{{"helpful": {"true" if helpful else "false"}, "answer": "{answer_id}"}}'
        store.record_turn(
            sender,
            "webchat",
            [{"event": "user", "timestamp": at, "text": text, "parse_data": {"text": text}}],
            {},
            0,
            "bot",
            None,
        )


def test_answers_marked_not_helpful_are_gaps_even_though_an_entry_matched(
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    KnowledgeBaseStore(db_engine).upsert(
        KBEntry(id="faq:refund_status", questions=["Why is my refund not showing up?"], answer="Refunds take 5 days.")
    )
    store = ConversationStore(db_engine)
    answered_then_pressed(store, "a", "Why is my refund not showing up?", "faq:refund_status", False, False)
    answered_then_pressed(store, "b", "Why is my refund not showing yet?", "faq:refund_status", False)
    answered_then_pressed(store, "c", "Where is my refund?", "faq:refund_status", True, False)  # first press counts
    answered_then_pressed(store, "d", "When does my refund arrive?", "faq:refund_status")  # no press

    found = unanswered_questions(db_engine)
    assert sorted((q.text, q.outcome, q.entry_id) for q in found) == [
        ("Why is my refund not showing up?", "unhelpful", "faq:refund_status"),
        ("Why is my refund not showing yet?", "unhelpful", "faq:refund_status"),
    ]
    # Both are near-copies of the entry's own question, yet that entry is what did not help.
    [cluster] = gap_report(db_engine, minilm_encoder)
    assert cluster.size == 2 and cluster.outcomes == {"unhelpful": 2}

    # Another entry that covers the question does close the gap.
    KnowledgeBaseStore(db_engine).upsert(
        KBEntry(id="faq:refund_delay", questions=["Why is my refund not showing up yet?"], answer="Check pending.")
    )
    assert gap_report(db_engine, minilm_encoder) == []


def test_a_press_naming_another_conversations_answer_is_not_a_gap(db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    answered_then_pressed(store, "a", "Why is my refund not showing up?", "faq:refund_status")
    text = '/kb_feedback{"helpful": false, "answer": "answer-a"}'  # "b" names a's answer
    store.record_turn(
        "b",
        "webchat",
        [{"event": "user", "timestamp": time.time(), "text": text, "parse_data": {"text": text}}],
        {},
        0,
        "bot",
        None,
    )

    assert unanswered_questions(db_engine) == []
