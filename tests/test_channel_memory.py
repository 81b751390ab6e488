"""What channels remember about customers: shared by server processes, kept across restarts,
forgotten after the retention period (on SQLite and PostgreSQL)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.channel_memory import DatabaseChannelMemory
from crowddesk.bot.conversations.store import ChannelMemoryRow
from crowddesk.bot.privacy.retention import Retention
from crowddesk.connectors.memory import MAX_FACTS_IN_PROCESS, ProcessMemory

BUTTONS = [{"title": "Track my card", "payload": "/track_card_delivery"}]


def test_a_fact_one_process_writes_another_reads(db_engine: Engine) -> None:
    # Two instances stand for two server processes on the same database.
    writer, reader = DatabaseChannelMemory(db_engine, "twilio"), DatabaseChannelMemory(db_engine, "twilio")
    writer.remember("twilio:+15550001", "buttons", BUTTONS)
    assert reader.recall("twilio:+15550001", "buttons") == BUTTONS
    # Scoped by channel and customer.
    assert DatabaseChannelMemory(db_engine, "whatsapp").recall("twilio:+15550001", "buttons") is None
    assert reader.recall("twilio:+15550002", "buttons") is None


def test_a_fact_is_replaced_then_forgotten(db_engine: Engine) -> None:
    memory = DatabaseChannelMemory(db_engine, "twilio")
    memory.remember("twilio:+15550003", "buttons", BUTTONS)
    memory.remember("twilio:+15550003", "buttons", [])
    assert memory.recall("twilio:+15550003", "buttons") == []
    memory.remember("twilio:+15550003", "buttons", None)
    assert memory.recall("twilio:+15550003", "buttons") is None


def test_concurrent_writers_of_one_fact_never_fail(db_engine: Engine) -> None:
    memory = DatabaseChannelMemory(db_engine, "twilio")
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda n: memory.remember("twilio:+15550004", "buttons", [n]), range(40)))
    assert memory.recall("twilio:+15550004", "buttons") in [[n] for n in range(40)]


def test_retention_forgets_facts_nobody_rewrote_for_the_period(db_engine: Engine) -> None:
    memory = DatabaseChannelMemory(db_engine, "twilio")
    memory.remember("twilio:old", "buttons", BUTTONS)
    memory.remember("twilio:new", "buttons", BUTTONS)
    now = datetime.now(UTC)
    with Session(db_engine) as session, session.begin():
        session.execute(
            update(ChannelMemoryRow)
            .where(ChannelMemoryRow.sender_id == "twilio:old")
            .values(updated_at=now - timedelta(days=8))
        )
    purged = Retention(db_engine, timedelta(days=7)).purge(now)
    assert purged.channel_memory == 1
    assert memory.recall("twilio:old", "buttons") is None and memory.recall("twilio:new", "buttons") == BUTTONS


def test_a_process_memory_stays_bounded() -> None:
    memory = ProcessMemory()
    for number in range(MAX_FACTS_IN_PROCESS + 5):
        memory.remember(f"sms:{number}", "buttons", number)
    assert memory.recall("sms:0", "buttons") is None  # the oldest went first
    assert memory.recall(f"sms:{MAX_FACTS_IN_PROCESS + 4}", "buttons") == MAX_FACTS_IN_PROCESS + 4
