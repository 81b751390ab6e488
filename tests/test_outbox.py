"""The persisted outbox: retries, give-ups, ordering, restarts, concurrent workers and retention."""

from __future__ import annotations

import asyncio
import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.deliveries import SeenMessages
from crowddesk.bot.conversations.outbox import Outbox, OutboxWorker
from crowddesk.bot.conversations.states import OutboxState
from crowddesk.bot.conversations.store import InboundMessageRow, OutboxRow
from crowddesk.bot.privacy.retention import Purged, Retention
from crowddesk.bot.server.database import init_schema
from crowddesk.connectors.base import DeliveryError
from crowddesk.connectors.types import Button, OutboundMessage
from crowddesk.storage.engines import create_engine_for
from tests.fakes.platform import FakePlatform


class FakeClock:
    """The worker's clock, moved by the test: retries fall due without waiting for them."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def message(recipient: str, text: str) -> OutboundMessage:
    return OutboundMessage(recipient, text, buttons=(Button("Yes", "/affirm"),), custom={"kb_entry": "faq/x"})


def worker_for(outbox: Outbox, platform: FakePlatform, clock: FakeClock | None = None, **kwargs: Any) -> OutboxWorker:
    return OutboxWorker(outbox, {"fake": platform}, clock=clock or FakeClock(), rng=random.Random(7), **kwargs)


def test_rate_limited_message_waits_as_told_and_is_delivered_once(db_engine: Engine) -> None:
    outbox = Outbox(db_engine)
    outbox.enqueue("fake", [message("c1", "Your card is on its way")])
    clock = FakeClock()  # after writing: the rows are due now
    platform = FakePlatform([DeliveryError("429 Too Many Requests", retry_after=30)])
    worker = worker_for(outbox, platform, clock)

    async def scenario() -> None:
        assert await worker.deliver_due() == 1
        [row] = outbox.records()
        assert row.status == OutboxState.PENDING and row.next_attempt_at >= clock.now + timedelta(seconds=30)
        clock.advance(29)
        assert await worker.deliver_due() == 0  # not before the platform said
        clock.advance(60)
        assert await worker.deliver_due() == 1
        assert await worker.deliver_due() == 0

    asyncio.run(scenario())
    [row] = outbox.records()
    assert row.status == OutboxState.DELIVERED and row.attempts == 2 and row.delivered_at is not None
    assert platform.texts() == ["Your card is on its way"]
    # Sent with the row's key, the same on every attempt.
    assert platform.accepted[0] == replace(message("c1", "Your card is on its way"), delivery_key=f"outbox-{row.id}")


def test_server_errors_are_retried_with_growing_backoff_until_accepted(db_engine: Engine) -> None:
    outbox = Outbox(db_engine)
    outbox.enqueue("fake", [message("c1", "hello")])
    clock = FakeClock()  # after writing: the rows are due now
    platform = FakePlatform([DeliveryError("502 Bad Gateway"), DeliveryError("503 Service Unavailable")])
    worker = worker_for(outbox, platform, clock)
    waits = []

    async def scenario() -> None:
        for _ in range(3):
            before = clock.now
            assert await worker.deliver_due() == 1
            waits.append((outbox.records()[0].next_attempt_at - before).total_seconds())
            clock.advance(3600)

    asyncio.run(scenario())
    [row] = outbox.records()
    assert row.status == OutboxState.DELIVERED and row.attempts == 3 and platform.attempts == 3
    assert 0 < waits[0] < waits[1]
    assert platform.texts() == ["hello"]


def test_permanent_refusal_fails_the_message_without_retrying(db_engine: Engine) -> None:
    outbox = Outbox(db_engine)
    outbox.enqueue("fake", [message("c1", "hello"), message("c2", "hi")])
    clock = FakeClock()  # after writing: the rows are due now
    platform = FakePlatform([DeliveryError("Forbidden: bot was blocked by the user", permanent=True)])
    worker = worker_for(outbox, platform, clock)

    async def scenario() -> None:
        while await worker.deliver_due():
            clock.advance(3600)

    asyncio.run(scenario())
    failed, delivered = outbox.records()
    assert failed.status == OutboxState.FAILED and failed.attempts == 1 and "blocked" in (failed.last_error or "")
    assert delivered.status == OutboxState.DELIVERED
    assert platform.attempts == 2


def test_messages_to_one_recipient_keep_their_order_through_failures(db_engine: Engine) -> None:
    outbox = Outbox(db_engine)
    outbox.enqueue("fake", [message("c1", "first"), message("c1", "second"), message("c1", "third")])
    clock = FakeClock()  # after writing: the rows are due now
    platform = FakePlatform([DeliveryError("500"), DeliveryError("500")])
    worker = worker_for(outbox, platform, clock)

    async def scenario() -> None:
        while await worker.deliver_due():
            clock.advance(3600)

    asyncio.run(scenario())
    assert platform.texts() == ["first", "second", "third"]


def test_rows_for_unconfigured_channels_wait(db_engine: Engine) -> None:
    outbox = Outbox(db_engine)
    outbox.enqueue("telegram", [message("42", "hello")])
    platform = FakePlatform()
    assert asyncio.run(worker_for(outbox, platform).deliver_due()) == 0
    assert [r.status for r in outbox.records()] == [OutboxState.PENDING] and platform.attempts == 0


def test_a_running_worker_is_woken_by_new_rows_and_finishes_sends_when_stopped(tmp_path: Path) -> None:
    engine = open_sqlite(tmp_path / "outbox.db")
    outbox, platform = Outbox(engine), FakePlatform()
    # Without the wake-up this test would wait for the idle poll, an hour away.
    worker = OutboxWorker(outbox, {"fake": platform}, idle_seconds=3600)

    async def scenario() -> None:
        worker.start()
        await asyncio.to_thread(outbox.enqueue, "fake", [message("c1", "one"), message("c2", "two")])
        await platform.wait_for_accepted(2)
        await worker.stop()

    asyncio.run(scenario())
    assert sorted(platform.texts()) == ["one", "two"]
    assert [r.status for r in outbox.records()] == [OutboxState.DELIVERED, OutboxState.DELIVERED]


def test_pending_rows_survive_a_restart(tmp_path: Path) -> None:
    before = open_sqlite(tmp_path / "outbox.db")
    first_run = Outbox(before)
    first_run.enqueue("fake", [message("c1", "refused before the restart")])
    asyncio.run(OutboxWorker(first_run, {"fake": FakePlatform([DeliveryError("503")])}).deliver_due())
    first_run.enqueue("fake", [message("c2", "written before the restart")])
    before.dispose()

    after = open_sqlite(tmp_path / "outbox.db")
    outbox, platform = Outbox(after), FakePlatform()
    worker = OutboxWorker(outbox, {"fake": platform}, idle_seconds=3600)

    async def scenario() -> None:
        # The refused one is due a second or so later: the new worker sleeps until then.
        worker.start()
        await platform.wait_for_accepted(2)
        await worker.stop()

    asyncio.run(scenario())
    assert sorted(platform.texts()) == ["refused before the restart", "written before the restart"]
    delivered = OutboxState.DELIVERED
    assert [(r.status, r.attempts) for r in outbox.records()] == [(delivered, 2), (delivered, 1)]


@pytest.mark.postgres
def test_two_workers_on_postgresql_never_deliver_a_message_twice(postgres_schema: Any) -> None:
    engines = [create_engine_for(postgres_schema.url) for _ in range(2)]
    init_schema(engines[0])
    outboxes = [Outbox(engine) for engine in engines]
    platform = FakePlatform()
    sent = {f"c{r}": [f"c{r}-m{i}" for i in range(5)] for r in range(8)}
    for recipient, texts in sent.items():
        outboxes[0].enqueue("fake", [message(recipient, text) for text in texts])
    workers = [worker_for(outbox, platform, batch_size=3) for outbox in outboxes]

    async def scenario() -> None:
        while outboxes[0].records(OutboxState.PENDING):
            claimed = await asyncio.gather(*(w.deliver_due() for w in workers))
            assert sum(claimed) > 0

    try:
        asyncio.run(scenario())
        received = platform.texts()
        assert sorted(received) == sorted(t for texts in sent.values() for t in texts)
        for recipient, texts in sent.items():
            assert [t for t in received if t.startswith(f"{recipient}-")] == texts
        assert all(r.status == OutboxState.DELIVERED and r.attempts == 1 for r in outboxes[1].records())
    finally:
        for engine in engines:
            engine.dispose()
        postgres_schema.reset()


def open_sqlite(path: Path) -> Engine:
    engine = create_engine_for(f"sqlite:///{path}")
    init_schema(engine)
    return engine


def add_row(engine: Engine, text: str, status: str, written: datetime, delivered: datetime | None = None) -> None:
    """An outbox row as a worker long ago would have left it."""
    with Session(engine) as session, session.begin():
        session.add(
            OutboxRow(
                channel="fake",
                recipient_id="c1",
                payload={"recipient_id": "c1", "text": text},
                status=status,
                attempts=1,
                next_attempt_at=written,
                created_at=written,
                delivered_at=delivered,
            )
        )


def add_delivery_key(engine: Engine, message_id: str, received: datetime) -> None:
    with Session(engine) as session, session.begin():
        session.add(InboundMessageRow(channel="fake", message_id=message_id, received_at=received))


def test_purge_deletes_delivered_rows_and_delivery_keys_older_than_the_retention(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    long_ago, lately = now - timedelta(days=8), now - timedelta(days=6)
    add_row(db_engine, "delivered long ago", OutboxState.DELIVERED, long_ago, long_ago)
    add_row(db_engine, "written long ago, delivered lately", OutboxState.DELIVERED, long_ago, lately)
    add_row(db_engine, "refused long ago", OutboxState.FAILED, long_ago)
    add_row(db_engine, "still retrying", OutboxState.PENDING, long_ago)
    add_delivery_key(db_engine, "update-1", long_ago)
    add_delivery_key(db_engine, "update-2", lately)

    assert Retention(db_engine, timedelta(days=7)).purge(now) == Purged(outbox=1, inbound=1)
    assert [r.message.text for r in Outbox(db_engine).records()] == [
        "written long ago, delivered lately",
        "refused long ago",
        "still retrying",
    ]
    seen = SeenMessages(db_engine)
    assert seen.first_sight("fake", "update-1")  # forgotten: old enough that no platform resends it
    assert not seen.first_sight("fake", "update-2")


def test_retention_must_be_positive(db_engine: Engine) -> None:
    with pytest.raises(ValueError, match="retention must be positive"):
        Retention(db_engine, timedelta(0))


def test_the_worker_purges_once_per_period(db_engine: Engine) -> None:
    clock = FakeClock()
    retention = Retention(db_engine, timedelta(days=7), every=timedelta(hours=1))
    worker = worker_for(Outbox(db_engine), FakePlatform(), clock, retention=retention)
    long_ago = clock.now - timedelta(days=8)
    add_row(db_engine, "delivered long ago", OutboxState.DELIVERED, long_ago, long_ago)

    async def scenario() -> list[Purged | None]:
        first = await worker.purge_when_due()
        add_row(db_engine, "delivered long ago too", OutboxState.DELIVERED, long_ago, long_ago)
        clock.advance(3599)
        early = await worker.purge_when_due()
        clock.advance(1)
        return [first, early, await worker.purge_when_due()]

    assert asyncio.run(scenario()) == [Purged(1, 0), None, Purged(1, 0)]
    assert Outbox(db_engine).records() == []


def test_a_running_worker_purges_as_it_starts(tmp_path: Path) -> None:
    engine = open_sqlite(tmp_path / "outbox.db")
    outbox, platform = Outbox(engine), FakePlatform()
    long_ago = datetime.now(UTC) - timedelta(days=8)
    add_row(engine, "delivered long ago", OutboxState.DELIVERED, long_ago, long_ago)
    retention = Retention(engine, timedelta(days=7))
    worker = OutboxWorker(outbox, {"fake": platform}, idle_seconds=3600, retention=retention)

    async def scenario() -> None:
        worker.start()
        # Every round of the worker purges (when due) before it delivers.
        await asyncio.to_thread(outbox.enqueue, "fake", [message("c2", "new")])
        await platform.wait_for_accepted(1)
        await worker.stop()

    asyncio.run(scenario())
    assert [r.message.text for r in outbox.records()] == ["new"]
