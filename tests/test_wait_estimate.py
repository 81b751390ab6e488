"""The wait a handed-off customer is told: from the live queue, active agents and history."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine, update
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.store import ConversationStore, HandoffRow, NewHandoff
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.desk.wait_estimate import QueueSnapshot, WaitEstimate, WaitEstimator, estimate_wait
from crowddesk.bot.project.config import WaitSettings

SETTINGS = WaitSettings(default_first_reply_minutes=10, max_minutes=240)


@pytest.mark.parametrize(
    ("snapshot", "expected"),
    [
        # No history: the configured default, ±50%.
        (QueueSnapshot(ahead=0, active_agents=1, first_reply_minutes=()), WaitEstimate(5, 15)),
        # Quartiles of the measured times to first reply.
        (QueueSnapshot(0, 1, (4, 6, 8, 10, 12)), WaitEstimate(6, 10)),
        # Six ahead and two agents: the fourth round.
        (QueueSnapshot(6, 2, (4, 6, 8, 10, 12)), WaitEstimate(25, 40)),
        # More agents, shorter wait.
        (QueueSnapshot(6, 7, (4, 6, 8, 10, 12)), WaitEstimate(6, 10)),
        # Nobody signed in: the queue is worked as if by one agent, not promised as instant.
        (QueueSnapshot(2, 0, (4, 6, 8, 10, 12)), WaitEstimate(20, 30)),
        # A long queue is capped, not a promise of hours.
        (QueueSnapshot(100, 1, (20, 30, 40, 50)), WaitEstimate(240, 240)),
    ],
)
def test_estimate_from_queue_agents_and_history(snapshot: QueueSnapshot, expected: WaitEstimate) -> None:
    assert estimate_wait(snapshot, SETTINGS) == expected


def test_estimate_reads_as_a_number_or_a_range() -> None:
    assert str(WaitEstimate(5, 5)) == "5"
    assert str(WaitEstimate(10, 20)) == "10–20"


def open_ticket(store: ConversationStore, sender: str, due_at: datetime) -> str:
    _, handoff = store.record_turn(
        sender,
        "webchat",
        [{"event": "user", "timestamp": time.time(), "text": "help"}],
        {},
        0,
        "queued",
        None,
        NewHandoff("low_confidence", "normal", {}, due_at),
    )
    assert handoff is not None
    return handoff.id


def test_estimate_from_a_database_with_history(db_engine: Engine) -> None:
    store, tickets, agents = ConversationStore(db_engine), TicketDesk(db_engine), AgentDirectory(db_engine)
    now = datetime.now(UTC)
    ana, bo = agents.add("ana", "Ana"), agents.add("bo", "Bo")
    agents.add("cy", "Cy")  # has an account but did nothing lately: not counted
    # History: four tickets resolved earlier, first replies 8, 12, 16 and 20 minutes after opening.
    for index, minutes in enumerate((8, 12, 16, 20)):
        ticket_id = open_ticket(store, f"old-{index}", now)
        tickets.claim(ticket_id, ana)
        tickets.reply(ticket_id, ana, "Hi")
        tickets.resolve(ticket_id, ana)
        opened = now - timedelta(hours=5, minutes=index)
        with Session(db_engine) as session, session.begin():
            session.execute(
                update(HandoffRow)
                .where(HandoffRow.id == ticket_id)
                .values(
                    created_at=opened,
                    first_response_at=opened + timedelta(minutes=minutes),
                    assigned_at=opened,
                    resolved_at=opened + timedelta(minutes=minutes + 5),
                )
            )
    # Live: Bo is working a ticket, three are queued; one of them is due after the new one.
    tickets.claim(open_ticket(store, "live-0", now + timedelta(minutes=10)), bo)
    for index, due in enumerate((5, 20, 50)):
        open_ticket(store, f"queued-{index}", now + timedelta(minutes=due))

    estimator = WaitEstimator(db_engine, SETTINGS)
    due_at = now + timedelta(minutes=30)
    assert estimator.snapshot(due_at, now) == QueueSnapshot(2, 1, (20.0, 16.0, 12.0, 8.0))
    # Two ahead, one agent: the third round of 11–17 minutes.
    assert estimator.estimate(due_at, now) == WaitEstimate(35, 50)

    agents.issue_token("cy")  # Cy signs in: two agents now share the queue
    assert estimator.snapshot(due_at, now).active_agents == 2
    assert estimator.estimate(due_at, now) == WaitEstimate(20, 35)


def test_empty_desk_uses_the_configured_default(db_engine: Engine) -> None:
    now = datetime.now(UTC)
    estimate = WaitEstimator(db_engine, WaitSettings(default_first_reply_minutes=4)).estimate(now, now)
    assert estimate == WaitEstimate(2, 6)
