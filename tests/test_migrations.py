"""Schema migrations: a database of the release before them is adopted with its data, an empty one
is created, the CLI reports each history, and the code's tables never drift from the migrations."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Engine, MetaData, Text, inspect, select
from sqlalchemy.orm import Session

from crowddesk.bot.cli.main import main
from crowddesk.bot.conversations.store import ConversationRow, ConversationStore
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.server.database import HISTORIES, init_schema
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.storage.engines import create_engine_for
from crowddesk.storage.migrations import History, current_revision, differences, upgrade, write_revision
from tests.demo_bot import copy_demo_project

# Each history's latest revision.
HEAD = {"knowledge_base": "0003", "conversations": "0006", "desk": "0001"}
FIRST = "0001"


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """An engine on an empty database (no tables)."""
    engine = create_engine_for(database_url)
    yield engine
    engine.dispose()


def create_as_the_release_before_migrations(engine: Engine) -> None:
    """The tables as that release's `init_schema` left them, and a few rows in them."""
    for history in HISTORIES:
        for metadata in history.metadata:
            metadata.create_all(engine)
    ConversationStore(engine).record_turn(
        "u1",
        events=[{"event": "user", "timestamp": 1.0, "text": "hi"}, {"event": "bot", "timestamp": 2.0, "text": "hello"}],
        new_handoff=None,
        channel="rest",
        slots={},
        failed_turns=0,
        owner="bot",
        latest_message=None,
    )
    KnowledgeBaseStore(engine).upsert(KBEntry(id="faq/pin", questions=["reset my pin?"], answer="In the app."))
    AgentDirectory(engine).add("ann", "Ann")


def table_columns(engine: Engine) -> dict[str, set[str]]:
    database = inspect(engine)
    return {table: {column["name"] for column in database.get_columns(table)} for table in database.get_table_names()}


def test_a_database_of_the_release_before_migrations_is_adopted_with_its_data(engine: Engine) -> None:
    create_as_the_release_before_migrations(engine)
    with engine.begin() as connection:  # a column an even older release lacked
        connection.exec_driver_sql("ALTER TABLE kb_entries DROP COLUMN context")

    adopted = init_schema(engine)

    assert [str(outcome) for outcome in adopted] == [
        f"{history.name}: none -> {HEAD[history.name]} (existing tables adopted)" for history in HISTORIES
    ]
    assert [e["text"] for e in ConversationStore(engine).events("u1")] == ["hi", "hello"]
    entry = KnowledgeBaseStore(engine).get("faq/pin")
    assert entry is not None and entry.answer == "In the app."
    assert "context" in table_columns(engine)["kb_entries"]
    agent = AgentDirectory(engine).get("ann")
    assert agent is not None and agent.name == "Ann"
    with engine.connect() as connection:
        assert [current_revision(connection, history) for history in HISTORIES] == [HEAD[h.name] for h in HISTORIES]

    again = init_schema(engine)

    assert [str(outcome) for outcome in again] == [
        f"{history.name}: {HEAD[history.name]} -> {HEAD[history.name]} (up to date)" for history in HISTORIES
    ]


def test_an_empty_database_gets_every_table_the_code_declares(engine: Engine) -> None:
    created = init_schema(engine)

    assert [str(outcome) for outcome in created] == [
        f"{history.name}: none -> {HEAD[history.name]} (created)" for history in HISTORIES
    ]
    declared = {
        table.name: {column.name for column in table.columns}
        for history in HISTORIES
        for metadata in history.metadata
        for table in metadata.tables.values()
    }
    versions = {history.version_table: {"version_num"} for history in HISTORIES}
    assert table_columns(engine) == declared | versions


def test_the_migrations_build_exactly_the_tables_the_code_declares(engine: Engine) -> None:
    # A model changed without its migration fails here: write one with `crowddesk db revision`.
    init_schema(engine)

    assert {history.name: differences(engine, history) for history in HISTORIES} == {
        history.name: [] for history in HISTORIES
    }


def test_db_upgrade_reports_each_history(
    database_url: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    project = copy_demo_project(tmp_path)
    command = ["db", "upgrade", "--project", str(project), "--database-url", database_url]

    assert main(command) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{history.name}: none -> {HEAD[history.name]} (created)" for history in HISTORIES
    ]
    assert main(command) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"{history.name}: {HEAD[history.name]} -> {HEAD[history.name]} (up to date)" for history in HISTORIES
    ]


def test_the_outcomes_of_conversations_stored_before_they_were_kept_are_filled_in(engine: Engine) -> None:
    conversations_history = next(history for history in HISTORIES if history.name == "conversations")
    for history in HISTORIES:
        upgrade(engine, history, to="0003" if history is conversations_history else "head")
    stored = MetaData()
    stored.reflect(engine)
    conversations, events, handoffs, presses = (
        stored.tables[name] for name in ("conversations", "events", "handoffs", "kb_feedback")
    )
    start = datetime(2026, 11, 23, 9, tzinfo=UTC)

    def moment(seconds: int) -> datetime:
        return start + timedelta(seconds=seconds)

    def action(conversation: int, seq: int, seconds: int, name: str, policy: str) -> dict[str, Any]:
        data = {"event": "action", "name": name, "policy": policy, "timestamp": moment(seconds).timestamp()}
        return {
            "conversation_id": conversation,
            "seq": seq,
            "type": "action",
            "name": name,
            "timestamp": moment(seconds).timestamp(),
            "data": data,
        }

    def ticket(number: int, conversation: int, seconds: int) -> dict[str, Any]:
        opened = moment(seconds)
        return {
            "id": f"t{number}",
            "conversation_id": conversation,
            "status": "resolved",
            "reason": "low_confidence",
            "priority": "normal",
            "packet": {},
            "created_at": opened,
            "due_at": opened + timedelta(hours=1),
        }

    senders = ("answered", "greeted", "handed-off", "unhelpful")
    with engine.begin() as connection:
        connection.execute(
            conversations.insert(),
            [
                {
                    "id": number,
                    "sender_id": sender,
                    "channel": "rest",
                    "owner": "bot",
                    "slots": {},
                    "failed_turns": 0,
                    "latest_message": None,
                    "created_at": start,
                    "updated_at": start,
                }
                for number, sender in enumerate(senders, start=1)
            ],
        )
        connection.execute(
            events.insert(),
            [
                action(1, 1, 30, "action_clarify", "SupportPolicy"),  # asked which topic: not an answer
                action(1, 2, 60, "action_answer_from_kb", "SupportPolicy"),
                action(1, 3, 90, "action_answer_from_kb", "SupportPolicy"),
                action(2, 1, 10, "utter_greet", "RulePolicy"),  # the project's dialogue answered
                action(3, 1, 5, "action_listen", "RulePolicy"),  # listening answers nothing
            ],
        )
        connection.execute(handoffs.insert(), [ticket(1, 3, 200), ticket(2, 3, 120)])
        press = {"entry_id": "faq/pin", "sender_id": "unhelpful"}
        connection.execute(
            presses.insert(),
            [
                {**press, "answer_id": "a1", "helpful": True, "created_at": moment(50)},  # only Not helpful counts
                {**press, "answer_id": "a2", "helpful": False, "created_at": moment(70)},
            ],
        )

    assert str(upgrade(engine, conversations_history)) == f"conversations: 0003 -> {HEAD['conversations']} (upgraded)"

    with Session(engine) as session:
        rows = session.execute(
            select(
                ConversationRow.sender_id,
                ConversationRow.answered_at,
                ConversationRow.handed_off_at,
                ConversationRow.unhelpful_at,
            ).order_by(ConversationRow.id)
        ).all()
    assert [tuple(row) for row in rows] == [
        ("answered", moment(60), None, None),
        ("greeted", moment(10), None, None),
        ("handed-off", None, moment(120), None),
        ("unhelpful", None, None, moment(70)),
    ]


def test_a_written_revision_adds_what_the_code_declares_and_upgrades_a_database(
    engine: Engine,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    knowledge_base = HISTORIES[0]
    versions = tmp_path / "versions"
    versions.mkdir()
    baseline = next(knowledge_base.versions.glob(f"{FIRST}_*.py"))
    (versions / baseline.name).write_text(baseline.read_text(encoding="utf-8"), encoding="utf-8")
    changed = MetaData()
    for metadata in knowledge_base.metadata:
        for table in metadata.sorted_tables:
            table.to_metadata(changed)
    changed.tables["kb_entries"].append_column(Column("summary", Text, nullable=True))
    history = History(knowledge_base.name, versions, (changed,))
    upgrade(engine, history)

    script = write_revision(history, "entry summaries")

    assert script.name == "0002_entry_summaries.py"
    assert "summary" in script.read_text(encoding="utf-8")
    assert str(upgrade(engine, history)) == "knowledge_base: 0001 -> 0002 (upgraded)"
    assert differences(engine, history) == []
    capsys.readouterr()  # Alembic says where it wrote the script
