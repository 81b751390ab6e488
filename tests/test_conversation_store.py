from __future__ import annotations

import logging
import re
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.exc import StatementError

from crowddesk.bot.conversations.store import (
    ConversationRecord,
    ConversationStore,
    EventRow,
    HandoffRecord,
    NewHandoff,
)
from crowddesk.bot.server.database import init_schema
from crowddesk.storage.engines import create_engine_for

DUE = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def user_event(text: str, timestamp: float = 1_700_000_000.0) -> dict[str, Any]:
    return {"event": "user", "timestamp": timestamp, "text": text, "parse_data": {"text": text}}


def bot_event(text: str, timestamp: float = 1_700_000_001.0) -> dict[str, Any]:
    return {"event": "bot", "timestamp": timestamp, "text": text}


def record(
    store: ConversationStore,
    sender_id: str,
    events: list[dict[str, Any]],
    new_handoff: NewHandoff | None = None,
    **state: Any,
) -> tuple[ConversationRecord, HandoffRecord | None]:
    defaults: dict[str, Any] = {
        "channel": "rest",
        "slots": {},
        "failed_turns": 0,
        "owner": "bot",
        "latest_message": None,
    }
    turn = defaults | state
    return store.record_turn(sender_id, events=events, new_handoff=new_handoff, **turn)


@pytest.fixture
def store(db_engine: Engine) -> ConversationStore:
    return ConversationStore(db_engine)


def test_first_turn_creates_the_conversation_with_its_state_and_events(
    store: ConversationStore,
) -> None:
    events = [
        {"event": "action", "timestamp": 1.0, "name": "action_session_start"},
        {"event": "session_started", "timestamp": 1.0},
        user_event("Où est ma carte ? 💳", timestamp=2.5),
        bot_event("Elle arrive bientôt.", timestamp=3),
    ]
    parse = {"text": "Où est ma carte ? 💳", "intent": {"name": "faq", "confidence": 0.9}}

    conversation, handoff = record(
        store,
        "web-42",
        events,
        channel="webchat",
        slots={"language": "fr", "card": None},
        failed_turns=1,
        latest_message=parse,
    )

    assert handoff is None
    assert store.get("web-42") == conversation
    assert conversation.sender_id == "web-42"
    assert conversation.channel == "webchat"
    assert conversation.owner == "bot"
    assert conversation.slots == {"language": "fr", "card": None}
    assert conversation.failed_turns == 1
    assert conversation.latest_message == parse
    assert conversation.created_at.tzinfo is not None
    assert conversation.created_at.utcoffset() == timedelta(0)
    assert store.events("web-42") == events


def test_later_turns_append_events_and_replace_the_state(store: ConversationStore) -> None:
    first, _ = record(store, "u1", [user_event("hi"), bot_event("hello")], slots={"a": 1})
    second, _ = record(
        store,
        "u1",
        [user_event("help"), bot_event("one moment")],
        slots={"b": 2},
        failed_turns=2,
        owner="queued",
        latest_message={"text": "help"},
    )

    stored = store.get("u1")
    assert stored == second
    assert stored is not None
    assert stored.slots == {"b": 2}
    assert stored.owner == "queued"
    assert stored.failed_turns == 2
    assert stored.created_at == first.created_at
    assert stored.updated_at > first.updated_at
    assert [e["text"] for e in store.events("u1")] == ["hi", "hello", "help", "one moment"]
    assert [e["text"] for e in store.events("u1", after_seq=2)] == ["help", "one moment"]


def test_conversations_are_kept_apart(store: ConversationStore) -> None:
    record(store, "alice", [user_event("from alice")])
    record(store, "bob", [user_event("from bob")])

    assert [e["text"] for e in store.events("alice")] == ["from alice"]
    assert store.get("nobody") is None
    assert store.events("nobody") == []


def test_a_turn_starts_from_the_conversation_and_its_events_while_the_bot_owns_it(store: ConversationStore) -> None:
    record(store, "alice", [user_event("hi"), bot_event("hello")])
    record(store, "alice", [user_event("my card")])
    record(store, "bob", [user_event("a person please")], owner="queued")

    alice, alice_events = store.for_turn("alice")
    assert alice == store.get("alice")
    assert alice_events == store.events("alice")
    assert [e["text"] for e in alice_events] == ["hi", "hello", "my card"]
    # A person's turn replays nothing: the bot stays quiet, so it is spared the read.
    bob, bob_events = store.for_turn("bob")
    assert bob is not None and bob.owner == "queued"
    assert bob_events == []
    assert store.for_turn("nobody") == (None, [])


@pytest.mark.parametrize(
    ("bad_event", "message"),
    [
        ({"timestamp": 1.0, "text": "no name"}, "'event'"),
        ({"event": "user", "text": "no time"}, "'timestamp'"),
        ({"event": "user", "timestamp": "yesterday"}, "'timestamp'"),
        ("user said hi", "str, not a dict"),
    ],
)
def test_malformed_events_are_rejected_and_nothing_is_stored(
    store: ConversationStore, bad_event: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message) as error:
        record(store, "u1", [user_event("fine"), bad_event])

    assert "event #1" in str(error.value)
    assert store.get("u1") is None


@pytest.mark.parametrize("sender_id", ["", "x" * 129])
def test_empty_or_overlong_sender_id_is_rejected(store: ConversationStore, sender_id: str) -> None:
    with pytest.raises(ValueError, match="sender_id must be 1 to 128 characters"):
        record(store, sender_id, [user_event("hi")])


def test_a_turn_that_fails_midway_leaves_no_trace(store: ConversationStore) -> None:
    record(store, "u1", [user_event("hi")], slots={"a": 1})
    unstorable = NewHandoff("angry", "high", {"not json": object()}, DUE)

    # SQLAlchemy or the driver encodes JSON, depending on the backend; either way it fails late.
    with pytest.raises((StatementError, TypeError)):
        record(store, "u1", [user_event("again")], slots={"a": 2}, new_handoff=unstorable)
    with pytest.raises((StatementError, TypeError)):
        record(store, "u2", [user_event("first")], new_handoff=unstorable)

    assert store.get("u2") is None
    stored = store.get("u1")
    assert stored is not None
    assert stored.slots == {"a": 1}
    assert [e["text"] for e in store.events("u1")] == ["hi"]
    assert store.list_handoffs() == []


def test_a_handoff_opened_with_a_turn_is_active_and_listed(store: ConversationStore) -> None:
    assert store.active_handoff("u1") is None
    due_in_paris = datetime(2030, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    packet = {"summary": "card lost", "transcript": ["hi", "my card is lost"]}

    _, handoff = record(
        store,
        "u1",
        [user_event("human please")],
        owner="queued",
        new_handoff=NewHandoff("asked for a human", "high", packet, due_in_paris),
    )

    assert handoff is not None
    assert handoff.sender_id == "u1"
    assert handoff.status == "queued"
    assert handoff.reason == "asked for a human"
    assert handoff.priority == "high"
    assert handoff.packet == packet
    assert handoff.due_at == DUE
    assert handoff.due_at.utcoffset() == timedelta(0)
    assert handoff.assigned_to is None
    assert handoff.resolved_at is None
    assert store.active_handoff("u1") == handoff
    assert store.get_handoff(handoff.id) == handoff
    assert store.get_handoff("0" * 32) is None


def test_handoffs_are_listed_soonest_due_first(store: ConversationStore) -> None:
    for sender_id, hours in [("late", 3), ("early", 1), ("middle", 2)]:
        ticket = NewHandoff("low confidence", "normal", {}, DUE + timedelta(hours=hours))
        record(store, sender_id, [user_event("?")], new_handoff=ticket)

    assert [h.sender_id for h in store.list_handoffs()] == ["early", "middle", "late"]
    assert [h.sender_id for h in store.list_handoffs(status="queued")] == [
        "early",
        "middle",
        "late",
    ]
    assert store.list_handoffs(status="resolved") == []


def test_delete_erases_the_conversation_its_events_and_handoffs(store: ConversationStore, db_engine: Engine) -> None:
    _, handoff = record(store, "u1", [user_event("hi")], new_handoff=NewHandoff("r", "normal", {}, DUE))
    record(store, "u2", [user_event("stays")])
    assert handoff is not None

    assert store.delete("u1") is True
    assert store.delete("u1") is False

    assert store.get("u1") is None
    assert store.events("u1") == []
    assert store.get_handoff(handoff.id) is None
    assert [e["text"] for e in store.events("u2")] == ["stays"]
    with db_engine.connect() as connection:
        assert connection.scalar(select(func.count()).select_from(EventRow)) == 1


def test_concurrent_turns_of_one_conversation_do_not_interleave(store: ConversationStore, db_engine: Engine) -> None:
    workers, turns_each = 4, 5
    start = threading.Barrier(workers)

    def talk(worker: int) -> None:
        start.wait()  # all first turns race to create the conversation
        for turn in range(turns_each):
            label = f"{worker}-{turn}"
            record(store, "shared", [user_event(label), bot_event(label)], failed_turns=turn)

    with ThreadPoolExecutor(workers) as pool:
        for finished in [pool.submit(talk, worker) for worker in range(workers)]:
            finished.result()

    with db_engine.connect() as connection:
        rows = connection.execute(select(EventRow.seq, EventRow.data).order_by(EventRow.seq)).all()
    seqs = [seq for seq, _ in rows]
    assert seqs == list(range(1, workers * turns_each * 2 + 1))
    labels = [data["text"] for _, data in rows]
    # A turn's user and bot events are neighbours: no other turn slipped in between.
    assert labels[0::2] == labels[1::2]
    assert len(set(labels)) == workers * turns_each


def test_new_handoff_rejects_unknown_priority_and_naive_due_time() -> None:
    with pytest.raises(ValueError, match="'urgent'"):
        NewHandoff("r", "urgent", {}, DUE)
    with pytest.raises(ValueError, match="timezone-aware"):
        NewHandoff("r", "normal", {}, datetime(2030, 1, 1))  # noqa: DTZ001 - the naive time under test


def test_init_schema_is_idempotent_and_keeps_data(db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    record(store, "u1", [user_event("hi")])

    init_schema(db_engine)

    assert [e["text"] for e in store.events("u1")] == ["hi"]


def test_sqlite_file_gets_its_directory_foreign_keys_and_wal(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "crowddesk.db"

    engine = create_engine_for(f"sqlite:///{path}")
    try:
        with engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    finally:
        engine.dispose()
    assert path.exists()


def test_in_memory_sqlite_is_one_database_for_all_threads() -> None:
    engine = create_engine_for("sqlite://")
    try:
        init_schema(engine)
        store = ConversationStore(engine)
        record(store, "u1", [user_event("hi")])

        with ThreadPoolExecutor(1) as pool:
            seen = pool.submit(store.events, "u1").result()

        assert [e["text"] for e in seen] == ["hi"]
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("mysql://crowddesk:s3cret-pw@db/crowddesk", "'mysql'"),
        ("postgresql+psycopg2://crowddesk:s3cret-pw@db/crowddesk", "'postgresql+psycopg2'"),
        ("oracle://crowddesk:s3cret-pw@db/crowddesk", "'oracle'"),
    ],
)
def test_unsupported_url_scheme_is_named_in_the_error(url: str, scheme: str) -> None:
    with pytest.raises(ValueError, match=re.escape(scheme)) as error:
        create_engine_for(url)

    assert "s3cret-pw" not in str(error.value)


def test_unparseable_url_error_does_not_echo_it() -> None:
    with pytest.raises(ValueError, match="scheme://") as error:
        create_engine_for("crowddesk:s3cret-pw at db")

    assert "s3cret-pw" not in str(error.value)


def test_password_stays_out_of_logs_and_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="crowddesk.storage.engines")

    engine = create_engine_for("postgresql+psycopg://crowddesk:s3cret-pw@db.example:5432/bot")
    try:
        assert "db.example:5432/bot" in caplog.text
        assert "s3cret-pw" not in caplog.text
        assert "s3cret-pw" not in repr(engine)
    finally:
        engine.dispose()


def test_sqlite_reads_see_the_last_committed_turn_while_another_turn_is_being_written(
    tmp_path: Path,
) -> None:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'crowddesk.db'}")
    try:
        init_schema(engine)
        store = ConversationStore(engine)
        record(store, "u1", [user_event("hi")], failed_turns=1)
        with engine.begin() as writing:  # holds SQLite's write lock, as a turn being stored does
            writing.exec_driver_sql("UPDATE conversations SET failed_turns = 2")

            conversation = store.get("u1")
            events = store.events("u1")

        assert conversation is not None and conversation.failed_turns == 1
        assert [event["text"] for event in events] == ["hi"]
        assert store.get("u1").failed_turns == 2  # type: ignore[union-attr]
    finally:
        engine.dispose()
