"""Ticket lifecycle and agent accounts on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import Engine

from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk.agents import AgentDirectory, AuthError, InvalidAgent
from crowddesk.bot.desk.tickets import TicketConflict, TicketDesk, TicketNotFound
from crowddesk.errors import Rejected


def open_ticket(store: ConversationStore, sender: str = "c1") -> str:
    _, handoff = store.record_turn(
        sender,
        "telegram",
        [{"event": "user", "timestamp": time.time(), "text": "help"}],
        {},
        0,
        "queued",
        None,
        NewHandoff("low_confidence", "normal", {"summary": "help"}, datetime.now(UTC) + timedelta(minutes=30)),
    )
    assert handoff is not None
    return handoff.id


@pytest.fixture
def desk(db_engine: Engine) -> tuple[ConversationStore, TicketDesk, AgentDirectory]:
    return ConversationStore(db_engine), TicketDesk(db_engine), AgentDirectory(db_engine)


def test_full_lifecycle_returns_the_conversation_to_the_bot(desk) -> None:
    store, tickets, agents = desk
    ana = agents.add("ana", "Ana")
    ticket_id = open_ticket(store)
    assert tickets.claim(ticket_id, ana).status == "assigned"
    assert store.get("c1").owner == "assigned"
    sent = tickets.reply(ticket_id, ana, "Hi, I'm Ana. Let me check that for you.")
    assert sent.channel == "telegram" and sent.ticket.first_response_at is not None
    tickets.note(ticket_id, ana, "customer sounds upset")
    resolved = tickets.resolve(
        ticket_id,
        ana,
        closing=[{"event": "bot", "timestamp": time.time(), "text": "How would you rate this conversation?"}],
    )
    assert resolved.status == "resolved" and store.get("c1").owner == "bot"
    kinds = [e["event"] for e in store.events("c1")]
    assert kinds == ["user", "handoff_assigned", "bot", "handoff_resolved", "bot"]
    assert [n.text for n in tickets.notes(ticket_id)] == ["customer sounds upset"]
    assert tickets.rate("c1", 5).rating == 5


def test_replies_need_the_owner_and_an_open_ticket(desk) -> None:
    store, tickets, agents = desk
    ana, bo = agents.add("ana", "Ana"), agents.add("bo", "Bo")
    ticket_id = open_ticket(store)
    with pytest.raises(TicketConflict, match="claim it first"):
        tickets.reply(ticket_id, ana, "hello")
    tickets.claim(ticket_id, ana)
    with pytest.raises(TicketConflict, match="assigned to ana"):
        tickets.reply(ticket_id, bo, "hello")
    with pytest.raises(Rejected, match="empty"):
        tickets.reply(ticket_id, ana, "   ")
    with pytest.raises(Rejected, match="limit"):
        tickets.reply(ticket_id, ana, "x" * 5000)
    tickets.resolve(ticket_id, ana)
    with pytest.raises(TicketConflict, match="resolved"):
        tickets.reply(ticket_id, ana, "one more thing")
    with pytest.raises(TicketNotFound):
        tickets.claim("nope", ana)


def test_transfer_to_an_agent_or_back_to_the_queue(desk) -> None:
    store, tickets, agents = desk
    ana, bo = agents.add("ana", "Ana"), agents.add("bo", "Bo")
    ticket_id = open_ticket(store)
    tickets.claim(ticket_id, ana)
    assert tickets.transfer(ticket_id, ana, bo).assigned_to == "bo"
    back = tickets.transfer(ticket_id, bo, None)
    assert back.status == "queued" and back.assigned_to is None
    assert store.get("c1").owner == "queued"


def test_two_agents_claiming_at_once_one_wins(desk) -> None:
    store, tickets, agents = desk
    team = [agents.add(f"agent{i}", f"Agent {i}") for i in range(6)]
    ticket_id = open_ticket(store)
    wins, conflicts = [], []
    barrier = threading.Barrier(len(team))

    def claim(agent) -> None:
        barrier.wait()
        try:
            wins.append(tickets.claim(ticket_id, agent).assigned_to)
        except TicketConflict:
            conflicts.append(agent.id)

    threads = [threading.Thread(target=claim, args=(a,)) for a in team]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(wins) == 1 and len(conflicts) == len(team) - 1
    assert store.get_handoff(ticket_id).assigned_to == wins[0]


def test_tokens_and_passwords_authenticate_and_expire(desk) -> None:
    _, _, agents = desk
    agents.add("ana", "Ana", role="agent", password="correct horse battery")
    token = agents.issue_token("ana")
    assert agents.authenticate_token(token).id == "ana"
    assert agents.authenticate_password("ana", "correct horse battery").role == "agent"
    with pytest.raises(AuthError):
        agents.authenticate_password("ana", "wrong")
    with pytest.raises(AuthError, match="unknown"):
        agents.authenticate_token(token + "x")
    expired = agents.issue_token("ana", days=0)
    with pytest.raises(AuthError, match="expired"):
        agents.authenticate_token(expired)
    with pytest.raises(InvalidAgent, match="role"):
        agents.add("bo", "Bo", role="boss")


def test_sla_breach_is_judged_by_the_first_human_reply(desk) -> None:
    store, tickets, agents = desk
    ana = agents.add("ana", "Ana")
    ticket = store.get_handoff(open_ticket(store))
    assert not ticket.breached(datetime.now(UTC))
    assert ticket.breached(ticket.due_at + timedelta(seconds=1))
    tickets.claim(ticket.id, ana)
    replied = tickets.reply(ticket.id, ana, "on it").ticket
    assert not replied.breached(replied.due_at + timedelta(hours=5))
