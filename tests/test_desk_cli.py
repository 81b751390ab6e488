"""`crowddesk desk`: accounts and ticket work from the shell, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import io
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from crowddesk.bot.cli import desk as desk_cli
from crowddesk.bot.cli.main import main
from crowddesk.bot.conversations.outbox import Outbox, OutboxWorker
from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk.agents import DEFAULT_TOKEN_DAYS, ROLES, AgentDirectory, AuthError
from crowddesk.knowledge_base.suggestions import Suggestions
from tests.demo_bot import copy_demo_project
from tests.test_outbox import FakePlatform
from tests.test_tickets import open_ticket

PASSWORD = "correct horse battery staple"


@pytest.fixture
def desk(demo_project: Path, database_url: str, db_engine: Engine, capsys: pytest.CaptureFixture[str]):
    """Runs `crowddesk desk ARGS...` on the test database; returns (exit code, stdout, stderr)."""

    def run(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        code = main(["desk", *args, "--project", str(demo_project), "--database-url", database_url])
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_the_first_admin_and_their_token_come_from_the_shell(
    desk, db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    code, out, _ = desk("agent", "add", "root", "--name", "Rita Root", "--role", "admin", "--password-stdin")
    assert code == 0 and "Added admin root (Rita Root)" in out
    agents = AgentDirectory(db_engine)
    assert agents.authenticate_password("root", PASSWORD).role == "admin"

    code, out, err = desk("agent", "token", "root", "--days", "7")
    token = out.strip()
    assert code == 0 and token.startswith("cdk_") and "\n" not in token
    assert "shown only this once" in err and token not in err
    assert agents.authenticate_token(token).id == "root"

    assert desk("agent", "add", "ana")[0] == 0
    code, out, _ = desk("agent", "list")
    assert [line.split()[:2] for line in out.splitlines()[:2]] == [["ana", "agent"], ["root", "admin"]]

    code, out, _ = desk("agent", "revoke-tokens", "root")
    assert code == 0 and "Revoked 1 token(s) of root" in out
    with pytest.raises(AuthError):
        agents.authenticate_token(token)


def test_an_operator_works_a_ticket_from_claim_to_rating_question(desk, db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    ticket_id = open_ticket(store, "c1")
    for agent in ("ana", "bo"):
        desk("agent", "add", agent)

    code, out, _ = desk("tickets")
    assert code == 0
    assert out.splitlines()[0].startswith(f"{ticket_id}  queued") and "left" in out.splitlines()[0]
    code, out, _ = desk("show", ticket_id)
    assert code == 0 and "Customer c1 on telegram" in out and "customer help" in out
    # No KB answer had evidence for this ticket: say so rather than print an empty list.
    assert "Answers the bot considered:\n  No knowledge-base answer has enough evidence" in out

    assert desk("claim", ticket_id, "--as", "ana")[0] == 0
    code, out, _ = desk("reply", ticket_id, "Hi, Ana here. Checking your card now.", "--as", "ana")
    assert code == 0 and "the server delivers it" in out
    assert desk("note", ticket_id, "card order CD-1 looks stuck", "--as", "ana")[0] == 0
    assert desk("transfer", ticket_id, "--to", "bo", "--as", "ana")[0] == 0
    assert store.get_handoff(ticket_id).assigned_to == "bo"
    assert desk("transfer", ticket_id, "--queue", "--as", "bo")[0] == 0
    assert store.get("c1").owner == "queued"
    assert desk("claim", ticket_id, "--as", "bo")[0] == 0
    code, out, _ = desk("resolve", ticket_id, "--as", "bo")
    assert code == 0 and "asks the customer for a rating" in out

    assert store.get("c1").owner == "bot"
    rating_question = store.events("c1")[-1]
    assert rating_question["metadata"] == {"utter_action": "utter_ask_rating"}
    # The server's outbox worker delivers both to the customer's channel, in order.
    telegram = FakePlatform()
    worker = OutboxWorker(Outbox(db_engine), {"telegram": telegram})
    while asyncio.run(worker.deliver_due()):
        pass
    assert [(m.recipient_id, m.text) for m in telegram.accepted] == [
        ("c1", "Hi, Ana here. Checking your card now."),
        ("c1", rating_question["text"]),
    ]
    code, out, _ = desk("show", ticket_id)
    assert "bo: " not in out and "ana: card order CD-1 looks stuck" in out
    assert desk("tickets")[1].startswith("0 queued or assigned ticket(s)")
    assert desk("tickets", "--status", "resolved")[1].startswith(f"{ticket_id}  resolved")


def test_unknown_ids_exit_2_and_refusals_exit_1_with_the_reason(desk, db_engine: Engine) -> None:
    ticket_id = open_ticket(ConversationStore(db_engine), "c1")
    desk("agent", "add", "ana")
    desk("agent", "add", "eddie", "--role", "editor")

    for args, reason in [
        (("claim", "nope", "--as", "ana"), "no ticket 'nope'"),
        (("claim", ticket_id, "--as", "ghost"), "no active agent 'ghost'"),
        (("show", "nope"), "no ticket 'nope'"),
        (("agent", "token", "ghost"), "no active agent 'ghost'"),
        (("agent", "disable", "ghost"), "no agent 'ghost'"),
        (("agent", "revoke-tokens", "ghost"), "no agent 'ghost'"),
    ]:
        code, out, err = desk(*args)
        assert (code, out) == (2, ""), args
        assert err.startswith("error: ") and reason in err, args

    for args, reason in [
        (("reply", ticket_id, "hello", "--as", "ana"), "claim it first"),
        (("claim", ticket_id, "--as", "eddie"), "role 'editor'"),
        (("agent", "add", "ana"), "already exists"),
        (("agent", "add", "bo smith"), "letters, digits"),
    ]:
        code, _, err = desk(*args)
        assert code == 1 and reason in err, args

    with pytest.raises(SystemExit) as usage:
        desk("agent", "token", "ana", "--days", "0")
    assert usage.value.code == 2


def test_disabling_an_agent_signs_them_out_and_requeues_their_tickets(desk, db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    ticket_id = open_ticket(store, "c1")
    desk("agent", "add", "ana")
    token = desk("agent", "token", "ana")[1].strip()
    desk("claim", ticket_id, "--as", "ana")

    code, out, _ = desk("agent", "disable", "ana")
    assert code == 0 and f"Back in the queue: {ticket_id}" in out
    assert store.get_handoff(ticket_id).status == "queued"
    with pytest.raises(AuthError):
        AgentDirectory(db_engine).authenticate_token(token)
    assert desk("claim", ticket_id, "--as", "ana")[0] == 2
    assert "disabled" in desk("agent", "list", "--all")[1]


def test_the_parser_offers_the_roles_and_token_lifetime_the_directory_uses() -> None:
    assert (desk_cli.ROLES, desk_cli.DEFAULT_TOKEN_DAYS) == (ROLES, DEFAULT_TOKEN_DAYS)


def test_a_ticket_resolved_from_the_shell_suggests_with_the_projects_redaction(
    demo_project: Path, tmp_path: Path, database_url: str, db_engine: Engine
) -> None:
    project = copy_demo_project(tmp_path)
    config = project / "config.yml"
    config.write_text(
        config.read_text().replace(
            "    hnsw_ef_search: 128\n",
            "    hnsw_ef_search: 128\n    ingestion:\n      redact_patterns: ['\\bACC-\\d{6}\\b']\n",
        )
    )
    store = ConversationStore(db_engine)
    ticket_id = store.record_turn(
        "c9",
        "telegram",
        [
            {"event": "user", "timestamp": time.time(), "text": "is account ACC-123456 closed?"},
            {"event": "handoff", "timestamp": time.time(), "reason": "low_confidence"},
        ],
        {},
        0,
        "queued",
        None,
        NewHandoff("low_confidence", "normal", {"summary": "help"}, datetime.now(UTC) + timedelta(minutes=30)),
    )[1].id

    def desk(*args: str) -> int:
        return main(["desk", *args, "--project", str(project), "--database-url", database_url])

    assert desk("agent", "add", "ana") == 0
    assert desk("claim", ticket_id, "--as", "ana") == 0
    assert desk("reply", ticket_id, "ACC-123456 is open; closing takes a day.", "--as", "ana") == 0
    assert desk("resolve", ticket_id, "--as", "ana") == 0

    [suggestion] = [s for s in Suggestions(db_engine).list() if s.ticket_id == ticket_id]
    assert "ACC-123456" not in " ".join([*suggestion.questions, suggestion.answer])
