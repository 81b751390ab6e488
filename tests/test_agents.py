"""Agent accounts: validation, token revocation and disabling, on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.desk.agents import AgentDirectory, AgentExists, AuthError, InvalidAgent, UnknownAgent
from crowddesk.bot.desk.tickets import TicketDesk
from tests.test_tickets import open_ticket

PASSWORD = "correct horse battery"


@pytest.fixture
def agents(db_engine: Engine) -> AgentDirectory:
    return AgentDirectory(db_engine)


def test_signing_out_revokes_only_that_token(agents: AgentDirectory) -> None:
    agents.add("ana", "Ana")
    laptop, phone = agents.issue_token("ana"), agents.issue_token("ana")
    assert agents.revoke_token(laptop) is True
    with pytest.raises(AuthError, match="unknown token"):
        agents.authenticate_token(laptop)
    assert agents.authenticate_token(phone).id == "ana"
    assert agents.revoke_token(laptop) is False


def test_revoking_an_agents_tokens_leaves_colleagues_signed_in(agents: AgentDirectory) -> None:
    agents.add("ana", "Ana", password=PASSWORD)
    agents.add("bo", "Bo")
    anas = [agents.issue_token("ana") for _ in range(3)]
    bos = agents.issue_token("bo")
    assert agents.revoke_tokens("ana") == 3
    for token in anas:
        with pytest.raises(AuthError):
            agents.authenticate_token(token)
    assert agents.authenticate_token(bos).id == "bo"
    # A revoked token is not a locked account: Ana signs in again with her password.
    assert agents.authenticate_password("ana", PASSWORD).id == "ana"
    with pytest.raises(UnknownAgent, match="nobody"):
        agents.revoke_tokens("nobody")


def test_a_disabled_agent_can_not_sign_in_and_keeps_their_id(agents: AgentDirectory) -> None:
    agents.add("ana", "Ana", password=PASSWORD)
    token = agents.issue_token("ana")
    disabled = agents.disable("ana")
    assert disabled.active is False
    with pytest.raises(AuthError):
        agents.authenticate_token(token)
    with pytest.raises(AuthError, match="wrong agent id or password"):
        agents.authenticate_password("ana", PASSWORD)
    with pytest.raises(UnknownAgent):
        agents.issue_token("ana")
    assert agents.get("ana") is None
    assert agents.list() == []
    assert [(a.id, a.active) for a in agents.list(include_disabled=True)] == [("ana", False)]
    # Tickets and notes name the old account, so its id is never handed to someone else.
    with pytest.raises(AgentExists):
        agents.add("ana", "Another Ana")
    assert agents.disable("ana").active is False  # idempotent
    with pytest.raises(UnknownAgent):
        agents.disable("nobody")


def test_disabling_puts_their_tickets_back_in_the_queue(db_engine: Engine, agents: AgentDirectory) -> None:
    store, tickets = ConversationStore(db_engine), TicketDesk(db_engine)
    ana, bo = agents.add("ana", "Ana"), agents.add("bo", "Bo")
    mine, theirs = open_ticket(store, "c1"), open_ticket(store, "c2")
    tickets.claim(mine, ana)
    tickets.claim(theirs, bo)
    released = tickets.release(agents.disable("ana"))
    assert [t.id for t in released] == [mine]
    assert store.get_handoff(mine).status == "queued" and store.get("c1").owner == "queued"
    assert store.get_handoff(theirs).assigned_to == "bo"
    last = store.events("c1")[-1]
    assert (last["event"], last["from_agent"], last["to_agent"]) == ("handoff_transferred", "ana", None)


@pytest.mark.parametrize(
    ("agent_id", "name", "password", "error"),
    [
        ("ana smith", "Ana", None, "letters, digits"),
        ("ana/../admin", "Ana", None, "letters, digits"),
        ("a" * 65, "Ana", None, "1 to 64"),
        ("ana", "   ", None, "name"),
        ("ana", "Ana", "short", "at least 8"),
    ],
)
def test_accounts_are_checked_before_they_are_stored(
    agents: AgentDirectory, agent_id: str, name: str, password: str | None, error: str
) -> None:
    with pytest.raises(InvalidAgent, match=error):
        agents.add(agent_id, name, password=password)
    assert agents.list(include_disabled=True) == []


def test_an_id_is_taken_once(agents: AgentDirectory) -> None:
    agents.add("ana", "Ana")
    with pytest.raises(AgentExists, match="already exists"):
        agents.add("ana", "Ana Again", role="admin")
    assert agents.get("ana").role == "agent"
