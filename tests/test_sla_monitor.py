"""The SLA monitor: a warning before the first-reply deadline and a breach after it, once each."""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, inspect

from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.project.config import SlaSettings
from crowddesk.bot.server.database import init_schema

OPENED = datetime(2026, 11, 23, 9, 0, tzinfo=UTC)
DUE = OPENED + timedelta(minutes=30)


class Clock:
    """The monitor's idea of now, moved by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def open_ticket(store: ConversationStore, sender: str, due_at: datetime = DUE) -> str:
    _, handoff = store.record_turn(
        sender,
        "webchat",
        [{"event": "user", "timestamp": time.time(), "text": "help"}],
        {},
        0,
        "queued",
        None,
        NewHandoff("low_confidence", "normal", {"summary": "help"}, due_at),
    )
    assert handoff is not None
    return handoff.id


def sla_events(store: ConversationStore, sender: str) -> list[str]:
    return [e["event"] for e in store.events(sender) if e["event"].startswith("sla_")]


@pytest.fixture
def store(db_engine: Engine) -> ConversationStore:
    return ConversationStore(db_engine)


def test_warning_before_the_deadline_and_breach_after_it_once_each(db_engine: Engine, store: ConversationStore) -> None:
    ticket_id = open_ticket(store, "c1")
    clock = Clock(DUE - timedelta(minutes=6))
    monitor = SlaMonitor(db_engine, SlaSettings(warning_minutes=5), clock=clock)
    assert monitor.check() == []

    clock.now = DUE - timedelta(minutes=4)
    (warning,) = monitor.check()
    assert (warning.ticket_id, warning.sender_id) == (ticket_id, "c1")
    assert warning.event["event"] == "sla_warning" and warning.event["minutes_left"] == 4.0
    assert monitor.check() == []
    assert store.get_handoff(ticket_id).sla_warned_at == clock.now

    clock.now = DUE + timedelta(seconds=1)
    (breach,) = monitor.check()
    assert breach.event["event"] == "sla_breached"
    clock.now = DUE + timedelta(hours=2)
    assert monitor.check() == []
    assert sla_events(store, "c1") == ["sla_warning", "sla_breached"]
    assert store.get_handoff(ticket_id).sla_breached_at == DUE + timedelta(seconds=1)


def test_a_ticket_found_past_due_is_breached_without_a_belated_warning(
    db_engine: Engine, store: ConversationStore
) -> None:
    open_ticket(store, "late")
    monitor = SlaMonitor(db_engine, SlaSettings(), clock=Clock(DUE + timedelta(minutes=10)))
    assert [e.event["event"] for e in monitor.check()] == ["sla_breached"]
    assert monitor.check() == []
    assert sla_events(store, "late") == ["sla_breached"]


def test_tickets_answered_in_time_or_resolved_are_left_alone(db_engine: Engine, store: ConversationStore) -> None:
    tickets, agents = TicketDesk(db_engine), AgentDirectory(db_engine)
    ana = agents.add("ana", "Ana")
    answered, resolved = open_ticket(store, "answered"), open_ticket(store, "resolved")
    for ticket_id in (answered, resolved):
        tickets.claim(ticket_id, ana)
    tickets.reply(answered, ana, "Hi, Ana here.")
    tickets.resolve(resolved, ana)
    monitor = SlaMonitor(db_engine, SlaSettings(), clock=Clock(DUE + timedelta(hours=1)))
    assert monitor.check() == []
    assert sla_events(store, "answered") == sla_events(store, "resolved") == []


def test_two_monitors_at_once_write_each_event_once(db_engine: Engine, store: ConversationStore) -> None:
    senders = [f"c{i}" for i in range(5)]
    for sender in senders:
        open_ticket(store, sender)
    clock = Clock(DUE - timedelta(minutes=1))
    monitors = [SlaMonitor(db_engine, SlaSettings(), clock=clock) for _ in range(2)]
    barrier = threading.Barrier(len(monitors))
    written: list[str] = []

    def run(monitor: SlaMonitor) -> None:
        barrier.wait()
        written.extend(e.sender_id for e in monitor.check())

    threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(written) == senders
    assert all(sla_events(store, sender) == ["sla_warning"] for sender in senders)


def test_running_checks_at_start_and_stops_with_the_server(db_engine: Engine, store: ConversationStore) -> None:
    open_ticket(store, "c1")
    monitor = SlaMonitor(db_engine, SlaSettings(check_seconds=3600), clock=Clock(DUE + timedelta(minutes=1)))

    async def serve() -> None:
        async with monitor.running():
            pass

    asyncio.run(serve())
    assert sla_events(store, "c1") == ["sla_breached"]


def test_an_older_database_gets_the_new_sla_columns(db_engine: Engine) -> None:
    with db_engine.begin() as connection:  # as a release before migrations and the SLA columns left it
        connection.exec_driver_sql("DROP TABLE alembic_version_conversations")
        for column in ("sla_warned_at", "sla_breached_at"):
            connection.exec_driver_sql(f"ALTER TABLE handoffs DROP COLUMN {column}")
    init_schema(db_engine)
    columns = {c["name"] for c in inspect(db_engine).get_columns("handoffs")}
    assert {"sla_warned_at", "sla_breached_at"} <= columns
