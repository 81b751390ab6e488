"""Privacy operations on SQLite and PostgreSQL: export and erase a person (nothing of them is left
in any table or in the served index), conversation retention, and the audit log."""

from __future__ import annotations

import io
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine, MetaData, select, update
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.cli.main import main
from crowddesk.bot.conversations.audit import AuditLog, hashed_sender
from crowddesk.bot.conversations.channel_memory import DatabaseChannelMemory
from crowddesk.bot.conversations.deliveries import SeenMessages
from crowddesk.bot.conversations.store import ConversationRow, ConversationStore, NewHandoff
from crowddesk.bot.desk.agents import Agent, AgentDirectory
from crowddesk.bot.desk.slack_posts import DeskPosts
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.privacy import api as privacy_api
from crowddesk.bot.privacy.customer_data import Privacy
from crowddesk.bot.privacy.retention import Retention
from crowddesk.bot.project.endpoints import load_endpoints
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.services import provide
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.store import KnowledgeBaseStore, KnowledgeBaseTables
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.knowledge_base.usage import record_feedback
from crowddesk.nlu.cached_encoder import CachedEncoder
from crowddesk.nlu.encoders import Encoder
from crowddesk.storage.schema import add_missing_columns
from tests.test_end_to_end import say, tracker
from tests.test_kb_loop import call, token

ANSWER = "These transfers settle overnight; check Payments > Pending in the app."


@dataclass(frozen=True)
class Person:
    """A customer with a full history; `word` is in their e-mail, their question and a note."""

    sender: str
    word: str
    ticket_id: str
    entry_id: str

    @property
    def question(self) -> str:
        return question(self.word)

    @property
    def traces(self) -> tuple[str, ...]:
        """Text that only this person's data holds."""
        return (self.sender, self.word)


def question(word: str) -> str:
    return f"Why does the {word} transfer to my savings stall?"


def turn(
    store: ConversationStore,
    sender: str,
    text: str,
    message_id: str,
    *extra: dict[str, Any],
    handoff: NewHandoff | None = None,
) -> None:
    user = {
        "event": "user",
        "timestamp": time.time(),
        "text": text,
        "input_channel": "telegram",
        "message_id": message_id,
    }
    store.record_turn(sender, "telegram", [user, *extra], {}, 0, "queued" if handoff else "bot", None, handoff)


def full_history(engine: Engine, agent: Agent, word: str = "zorblax") -> Person:
    """A customer who wrote their e-mail, was handed off, answered, noted, rated, pressed a
    feedback button, and whose question became a published KB entry."""
    sender = f"telegram:{uuid.uuid4().hex[:10]}"
    store, tickets, seen = ConversationStore(engine), TicketDesk(engine), SeenMessages(engine)
    assert seen.first_sight("telegram", f"{sender}-1") and seen.first_sight("telegram", f"{sender}-2")
    turn(
        store,
        sender,
        f"my e-mail is {word}@example.org",
        f"{sender}-1",
        {
            "event": "bot",
            "timestamp": time.time(),
            "text": "Here is an answer.",
            "data": {"custom": {"kb_entry": "faq/fees", "answer_id": f"{word[:8]}-answer"}},
        },
    )
    turn(
        store,
        sender,
        question(word),
        f"{sender}-2",
        {"event": "handoff", "timestamp": time.time()},
        handoff=NewHandoff(
            "low_confidence", "normal", {"summary": question(word)}, datetime.now(UTC) + timedelta(minutes=30)
        ),
    )
    ticket_id = store.active_handoff(sender).id
    # The buttons a text-only channel offered as a numbered list, remembered for the reply.
    memory = DatabaseChannelMemory(engine, "telegram")
    memory.remember(sender, "buttons", [{"title": f"{word} trip", "payload": "/x"}])
    # And a link to this conversation from another identity of theirs (a commenter's DM id).
    memory.remember(f"telegram:dm-{word}", "conversation", sender)
    tickets.claim(ticket_id, agent)
    tickets.reply(ticket_id, agent, ANSWER)
    tickets.note(ticket_id, agent, f"customer mentioned the {word} wedding trip")
    tickets.resolve(ticket_id, agent)
    tickets.rate(sender, 4)
    with sessionmaker(engine).begin() as session:
        record_feedback(session, answer_id=f"{word[:8]}-answer", entry_id="faq/fees", sender_id=sender, helpful=True)
    suggestions = Suggestions(engine)
    [suggestion] = [s for s in suggestions.list() if s.ticket_id == ticket_id]
    entry = suggestions.approve(suggestion.id, "ed")
    return Person(sender, word, ticket_id, entry.id)


def rows_mentioning(engine: Engine, traces: tuple[str, ...]) -> list[str]:
    """`table: row` for every row of every table in the database holding one of `traces`."""
    metadata = MetaData()
    metadata.reflect(engine)  # what is there, whichever module created it
    assert {"conversations", "kb_suggestions", "privacy_audit"} <= set(metadata.tables)
    found = []
    with engine.connect() as connection:
        for table in metadata.sorted_tables:
            for row in connection.execute(select(table)):
                text = repr(tuple(row)).lower()
                if any(trace.lower() in text for trace in traces):
                    found.append(f"{table.name}: {text[:200]}")
    return found


@pytest.fixture
def server(db_engine: Engine, minilm_encoder: Encoder) -> Iterator[tuple[TestClient, KnowledgeBase, CachedEncoder]]:
    store = KnowledgeBaseStore(db_engine)
    store.upsert(KBEntry(id="faq/fees", questions=["What are the fees?"], answer="None."))
    knowledge_base = KnowledgeBase(store, minilm_encoder, lexical_weight=0.3, top_k=3)
    encoder_cache = CachedEncoder(minilm_encoder)
    app = FastAPI()
    install_error_handlers(app)
    provide(
        app,
        AgentDirectory(db_engine),
        Privacy(db_engine),
        AuditLog(db_engine),
        LiveIndex(knowledge_base),
        encoder_cache,
    )
    app.include_router(privacy_api.router)
    with TestClient(app) as client:
        yield client, knowledge_base, encoder_cache


def bearer(engine: Engine, agent_id: str, role: str) -> dict[str, str]:
    agents = AgentDirectory(engine)
    agents.add(agent_id, agent_id.title(), role=role)
    return {"Authorization": f"Bearer {agents.issue_token(agent_id)}"}


def served_ids(knowledge_base: KnowledgeBase, encoder: Encoder, text: str) -> list[str]:
    return [c.entry_id for c in knowledge_base.search(text, encoder.encode([text])[0])]


def test_an_admin_exports_then_erases_a_person_and_nothing_of_them_remains(
    server, db_engine: Engine, minilm_encoder: Encoder
) -> None:
    client, knowledge_base, encoder_cache = server
    admin = bearer(db_engine, "root", "admin")
    ana = AgentDirectory(db_engine).add("ana", "Ana")
    person, bystander = full_history(db_engine, ana), full_history(db_engine, ana, "quokka")
    encoder_cache.encode([person.question, bystander.question])  # as the bot understood them
    slack_posts = DeskPosts(db_engine, "C-desk")
    slack_posts.create_table()
    assert slack_posts.reserve(person.ticket_id) and slack_posts.reserve(bystander.ticket_id)
    knowledge_base.apply_changes()
    assert person.entry_id in served_ids(knowledge_base, minilm_encoder, person.question)
    kb_store = KnowledgeBaseStore(db_engine)
    assert kb_store.cached_vectors(minilm_encoder.name, [person.question])

    response = client.get(f"/privacy/api/people/{person.sender}/export", headers=admin)
    assert response.status_code == 200, response.text
    export = response.json()
    assert export["conversation"]["sender_id"] == person.sender
    assert "zorblax@example.org" in json.dumps(export["events"]) and ANSWER in json.dumps(export["events"])
    assert [t["id"] for t in export["tickets"]] == [person.ticket_id] and export["tickets"][0]["rating"] == 4
    assert [n["text"] for n in export["notes"]] == ["customer mentioned the zorblax wedding trip"]
    assert [o["payload"]["text"] for o in export["outbox"]] == [ANSWER]
    assert {(m["sender_id"], m["key"]) for m in export["channel_memory"]} == {
        (person.sender, "buttons"),
        ("telegram:dm-zorblax", "conversation"),
    }
    assert {d["message_id"] for d in export["inbound_deliveries"]} == {f"{person.sender}-1", f"{person.sender}-2"}
    assert [(f["entry_id"], f["helpful"]) for f in export["kb_feedback"]] == [("faq/fees", True)]
    assert export["kb_answers_served"] == [{"answer_id": "zorblax-answer", "entry_id": "faq/fees"}]
    assert [s["sender_id"] for s in export["kb_suggestions"]] == [person.sender]
    [derived] = export["kb_entries"]
    assert derived["entry"]["id"] == person.entry_id
    assert derived["versions"][0]["content"]["questions"] == [person.question]

    response = client.delete(f"/privacy/api/people/{person.sender}", headers=admin)
    assert response.status_code == 200, response.text
    removed = response.json()["removed"]
    assert removed["conversations"] == 1 and removed["kb_entries"] == 1 and removed["kb_feedback"] == 1
    assert removed["slack_desk_posts"] == 1 and removed["channel_memory"] == 2
    assert rows_mentioning(db_engine, person.traces) == []
    assert person.entry_id not in served_ids(knowledge_base, minilm_encoder, person.question)
    with pytest.raises(KeyError):
        knowledge_base.retriever.entry(person.entry_id)
    assert kb_store.cached_vectors(minilm_encoder.name, [person.question]) == {}
    assert len(encoder_cache) == 1 and encoder_cache.forget([bystander.question]) == 1
    # Everyone else's data is untouched.
    assert bystander.entry_id in served_ids(knowledge_base, minilm_encoder, bystander.question)
    assert len(rows_mentioning(db_engine, bystander.traces)) > 10

    # The audit log keeps who did what, with the person's id hashed.
    audit = client.get("/privacy/api/audit", params={"sender": person.sender}, headers=admin).json()
    assert [(a["actor"], a["action"]) for a in audit] == [("root", "erase"), ("root", "export")]
    assert {a["sender"] for a in audit} == {hashed_sender(person.sender)}
    again = client.delete(f"/privacy/api/people/{person.sender}", headers=admin)
    assert again.status_code == 404 and again.json()["error"] == f"nothing is held about {person.sender!r}"


def test_only_admins_reach_personal_data(server, db_engine: Engine) -> None:
    client = server[0]
    path = "/privacy/api/people/telegram:1/export"
    assert client.get(path).status_code == 401
    response = client.get(path, headers=bearer(db_engine, "ana", "agent"))
    assert response.status_code == 403
    assert response.json()["error"] == "only admins export, erase or audit personal data"
    assert client.delete("/privacy/api/people/telegram:1", headers=bearer(db_engine, "ed", "editor")).status_code == 403


def test_the_cli_exports_to_a_file_and_erases_after_confirmation(
    demo_project: Path,
    database_url: str,
    db_engine: Engine,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    person = full_history(db_engine, AgentDirectory(db_engine).add("ana", "Ana"))
    where = ["--project", str(demo_project), "--database-url", database_url]
    out = tmp_path / "person.json"
    assert main(["privacy", "export", person.sender, "--out", str(out), *where]) == 0
    assert json.loads(out.read_text())["tickets"][0]["id"] == person.ticket_id

    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["privacy", "erase", person.sender, *where]) == 1  # not a terminal, no --yes
    assert ConversationStore(db_engine).get(person.sender) is not None
    capsys.readouterr()
    assert main(["privacy", "erase", person.sender, "--yes", *where]) == 0
    printed = capsys.readouterr().out
    assert "conversations: 1" in printed and "kb_entries: 1" in printed
    assert rows_mentioning(db_engine, person.traces) == []
    assert main(["privacy", "erase", person.sender, "--yes", *where]) == 2

    assert main(["privacy", "audit", "--sender", person.sender, "--json", *where]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["action"] for line in lines] == ["erase", "export"]
    assert all(line["actor"].startswith("cli:") for line in lines)


def test_retention_erases_idle_conversations_but_not_open_tickets(db_engine: Engine) -> None:
    agent = AgentDirectory(db_engine).add("ana", "Ana")
    idle = full_history(db_engine, agent)
    store = ConversationStore(db_engine)
    turn(
        store,
        "waiting",
        "still waiting for a person",
        "w-1",
        {"event": "handoff", "timestamp": time.time()},
        handoff=NewHandoff("low_confidence", "normal", {}, datetime.now(UTC) + timedelta(minutes=30)),
    )
    turn(store, "recent", "hello", "r-1")
    long_ago = datetime.now(UTC) - timedelta(days=40)
    with db_engine.begin() as connection:
        connection.execute(
            update(ConversationRow)
            .where(ConversationRow.sender_id.in_([idle.sender, "waiting"]))
            .values(updated_at=long_ago)
        )

    purged = Retention(db_engine, timedelta(days=7), conversations=timedelta(days=30)).purge(datetime.now(UTC))

    assert purged.conversations == 1
    assert store.get(idle.sender) is None and store.get("waiting") and store.get("recent")
    kept = {row.split(":")[0] for row in rows_mentioning(db_engine, idle.traces)}
    assert kept == {"kb_entry_versions", "kb_questions"}
    # What an editor approved from it is reviewed content now, and stays.
    assert KnowledgeBaseStore(db_engine).get(idle.entry_id).answer == ANSWER
    [entry] = AuditLog(db_engine).entries(idle.sender)
    assert (entry.actor, entry.action) == ("retention", "erase")
    assert Retention(db_engine, timedelta(days=7)).purge(datetime.now(UTC) + timedelta(days=400)).conversations == 0


def test_conversation_retention_is_read_from_endpoints_yml(tmp_path: Path) -> None:
    path = tmp_path / "endpoints.yml"
    path.write_text("retention:\n  conversations_days: 90\n")
    assert load_endpoints(path, environ={}).conversations_retention == timedelta(days=90)
    assert load_endpoints(tmp_path / "missing.yml", environ={}).conversations_retention is None
    path.write_text("retention:\n  conversations_days: 0\n")
    with pytest.raises(ProjectFileError, match=r"endpoints.yml:2: retention.conversations_days: expected a whole"):
        load_endpoints(path, environ={})
    path.write_text("retention:\n  conversation_days: 30\n")
    with pytest.raises(ProjectFileError, match="conversation_days"):
        load_endpoints(path, environ={})


def test_a_database_from_before_the_sender_link_gains_it(db_engine: Engine) -> None:
    with db_engine.begin() as connection:
        connection.exec_driver_sql("DROP INDEX ix_kb_suggestions_sender_id")
        connection.exec_driver_sql("ALTER TABLE kb_suggestions DROP COLUMN sender_id")
    assert add_missing_columns(db_engine, KnowledgeBaseTables.metadata) == ["kb_suggestions.sender_id"]


def test_reading_a_tracker_or_opening_a_ticket_is_audited(demo_client: TestClient, sender: str) -> None:
    say(demo_client, "I want to talk to a real person please", sender)
    ticket = tracker(demo_client, sender)["handoff"]
    agent_token = token(demo_client, "agent")
    agent = demo_client.app.state.bot.agents.authenticate_token(agent_token)
    detail = call(demo_client, "GET", f"/desk/api/tickets/{ticket['id']}", agent_token)

    entries = AuditLog(demo_client.app.state.bot.database).entries(detail["sender_id"])
    assert [(e.actor, e.action, e.detail) for e in entries] == [
        (agent.id, "read_ticket", f"ticket {ticket['id']}"),
        ("api-token", "read_tracker", ""),
    ]
