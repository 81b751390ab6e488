"""Entry lifecycle with its audit log, suggestions from handoffs, and the live index swap."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from crowddesk.bot.cli.main import main
from crowddesk.bot.cli.output import EXIT_NOT_FOUND
from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.server.database import init_schema
from crowddesk.errors import NotFound, Rejected
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.store import InvalidTransition, KnowledgeBaseStore, UnknownEntry
from crowddesk.knowledge_base.suggestions import SuggestionConflict, SuggestionNotFound, Suggestions
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.nlu.encoders import Encoder
from crowddesk.storage.engines import create_engine_for
from tests.demo_bot import copy_demo_project


@pytest.fixture
def kb(db_engine: Engine) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(db_engine)


def pin_entry(status: EntryStatus = EntryStatus.DRAFT, answer: str = "Change it in the app.") -> KBEntry:
    return KBEntry(id="manual:pin", questions=["How do I change my PIN?"], answer=answer, status=status)


def test_every_change_is_a_version_with_who_and_what(kb: KnowledgeBaseStore) -> None:
    kb.upsert(pin_entry(), actor="ed")
    kb.upsert(pin_entry(answer="Cards > PIN in the app."), actor="ed", comment="clearer")
    kb.upsert(pin_entry(answer="Cards > PIN in the app."), actor="ed")  # unchanged: no version
    kb.set_status("manual:pin", EntryStatus.PUBLISHED, actor="lead")
    kb.set_status("manual:pin", EntryStatus.PUBLISHED, actor="lead")  # already: no version
    kb.set_status("manual:pin", EntryStatus.RETIRED)

    history = kb.history("manual:pin")

    assert [(v.version, v.action, v.status.value, v.actor) for v in history] == [
        (1, "create", "draft", "ed"),
        (2, "edit", "draft", "ed"),
        (3, "publish", "published", "lead"),
        (4, "retire", "retired", "system"),
    ]
    assert history[1].comment == "clearer"
    assert history[0].content["answer"] == "Change it in the app."
    assert history[3].entry().answer == "Cards > PIN in the app."
    assert kb.history("manual:unknown") == []


def test_restore_brings_back_old_content_as_a_new_version_keeping_the_status(kb: KnowledgeBaseStore) -> None:
    kb.upsert(pin_entry(EntryStatus.PUBLISHED), actor="ed")
    kb.upsert(pin_entry(EntryStatus.PUBLISHED, answer="Wrong answer."), actor="intern")

    restored = kb.restore("manual:pin", 1, actor="lead")

    assert restored.answer == "Change it in the app." and restored.status is EntryStatus.PUBLISHED
    last = kb.history("manual:pin")[-1]
    assert (last.version, last.action, last.actor, last.comment) == (3, "restore", "lead", "restored version 1")
    with pytest.raises(UnknownEntry, match="no version 9"):
        kb.restore("manual:pin", 9, actor="lead")
    with pytest.raises(UnknownEntry, match="manual:nope"):
        kb.restore("manual:nope", 1, actor="lead")


def test_a_served_entry_never_goes_back_to_draft(kb: KnowledgeBaseStore) -> None:
    kb.upsert(pin_entry(EntryStatus.PUBLISHED))

    with pytest.raises(InvalidTransition, match="'manual:pin' is published; it can become retired, not draft"):
        kb.set_status("manual:pin", EntryStatus.DRAFT)
    with pytest.raises(InvalidTransition):
        kb.upsert(pin_entry(EntryStatus.DRAFT, answer="rework"))
    kb.set_status("manual:pin", EntryStatus.RETIRED)
    assert kb.set_status("manual:pin", EntryStatus.PUBLISHED).status is EntryStatus.PUBLISHED
    assert [v.action for v in kb.history("manual:pin")] == ["create", "retire", "publish"]


def handed_off(conversations: ConversationStore, sender: str, *texts: str, reason: str = "low_confidence") -> str:
    """A bot turn on `texts[0]` that ended in a handoff; the other texts arrive while it waits."""
    now = time.time()
    _, ticket = conversations.record_turn(
        sender,
        "webchat",
        [
            {"event": "user", "timestamp": now, "text": texts[0], "parse_data": {"text": texts[0]}},
            {"event": "handoff", "timestamp": now, "reason": reason},
        ],
        {},
        0,
        "queued",
        None,
        NewHandoff(reason, "normal", {"summary": texts[0]}, datetime.now(UTC) + timedelta(minutes=30)),
    )
    assert ticket is not None
    for text in texts[1:]:
        conversations.record_turn(
            sender,
            "webchat",
            [{"event": "user", "timestamp": time.time(), "text": text, "parse_data": None}],
            {},
            0,
            "queued",
            None,
        )
    return ticket.id


@pytest.fixture
def desk(db_engine: Engine) -> tuple[ConversationStore, TicketDesk, AgentDirectory, Suggestions]:
    return ConversationStore(db_engine), TicketDesk(db_engine), AgentDirectory(db_engine), Suggestions(db_engine)


def test_resolving_after_a_reply_suggests_the_question_and_the_answer(desk, kb: KnowledgeBaseStore) -> None:
    conversations, tickets, agents, suggestions = desk
    ana = agents.add("ana", "Ana")
    ticket_id = handed_off(conversations, "c1", "Can I freeze my card from abroad?", "I'm in Spain")
    tickets.claim(ticket_id, ana)
    tickets.reply(ticket_id, ana, "Yes: Cards > Freeze in the app works anywhere.")
    tickets.resolve(ticket_id, ana)

    [suggestion] = suggestions.list()

    assert suggestion.ticket_id == ticket_id and suggestion.agent == "ana"
    assert suggestion.questions == ["Can I freeze my card from abroad?", "I'm in Spain"]
    assert suggestion.answer == "Yes: Cards > Freeze in the app works anywhere."

    entry = suggestions.approve(suggestion.id, "ed", questions=["Can I freeze my card from abroad?"])

    assert entry.id == f"handoff:{ticket_id}" and entry.status is EntryStatus.PUBLISHED
    assert entry.questions == ["Can I freeze my card from abroad?"] and entry.author == "ana"
    assert [(v.action, v.actor) for v in kb.history(entry.id)] == [("create", "ed")]
    assert suggestions.get(suggestion.id).status == "approved"
    assert suggestions.get(suggestion.id).entry_id == entry.id
    with pytest.raises(SuggestionConflict, match="already approved"):
        suggestions.approve(suggestion.id, "other-editor")


def test_no_suggestion_without_a_reply_and_the_request_for_a_person_is_not_a_question(desk) -> None:
    conversations, tickets, agents, suggestions = desk
    ana = agents.add("ana", "Ana")
    silent = handed_off(conversations, "c1", "hello?")
    tickets.claim(silent, ana)
    tickets.resolve(silent, ana)
    conversations.record_turn(
        "c2",
        "webchat",
        [{"event": "user", "timestamp": time.time(), "text": "Why was I charged twice?", "parse_data": {}}],
        {},
        0,
        "bot",
        None,
    )
    asked = handed_off(conversations, "c2", "I want a human", "It's the grocery payment", reason="customer_request")
    tickets.claim(asked, ana)
    tickets.reply(asked, ana, "A card payment retried; the second charge is refunded in 3 days.")
    tickets.resolve(asked, ana)

    assert [(s.ticket_id, s.questions) for s in suggestions.list()] == [
        (asked, ["Why was I charged twice?", "It's the grocery payment"])
    ]


def test_rejecting_needs_a_reason_and_unknown_ids_are_named(desk, db_engine: Engine) -> None:
    conversations, _, _, suggestions = desk
    ticket_id = handed_off(conversations, "c1", "Is there a fee for SEPA transfers?")
    proposed = TicketSuggestions(db_engine).propose(ticket_id, ["Is there a fee for SEPA transfers?"], "No.", "ana")

    with pytest.raises(Rejected, match="reason is required"):
        suggestions.reject(proposed.id, "ed", "  ")
    rejected = suggestions.reject(proposed.id, "ed", "fees differ by account; needs legal review")

    assert (rejected.status, rejected.reviewer, rejected.reason) == (
        "rejected",
        "ed",
        "fees differ by account; needs legal review",
    )
    assert suggestions.list() == [] and suggestions.list("rejected") == [rejected]
    with pytest.raises(SuggestionNotFound, match="no suggestion 999"):
        suggestions.get(999)
    with pytest.raises(NotFound, match="no ticket 'T-missing'"):
        TicketSuggestions(db_engine).propose("T-missing", ["q"], "a", "ana")


def test_publishing_swaps_the_index_while_queries_keep_running(
    database_url: str,
    minilm_encoder: Encoder,
) -> None:
    server_db = create_engine_for(database_url)
    editor_db = create_engine_for(database_url)  # a second connection pool, as another process has
    init_schema(server_db)
    KnowledgeBaseStore(server_db).upsert(KBEntry(id="faq/fees", questions=["What are the fees?"], answer="None."))
    knowledge_base = KnowledgeBase(KnowledgeBaseStore(server_db), minilm_encoder, lexical_weight=0.3, top_k=3)
    live = LiveIndex(knowledge_base)
    live.refresh_if_changed()
    question = "How do I change my PIN?"
    vector = minilm_encoder.encode([question])[0]
    errors: list[BaseException] = []
    answered: list[list[str]] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            try:
                answered.append([c.entry_id for c in knowledge_base.search(question, vector)])
            except BaseException as exc:  # noqa: BLE001 - any failure at all is what this test looks for
                errors.append(exc)

    asker = threading.Thread(target=ask)
    asker.start()
    try:
        KnowledgeBaseStore(editor_db).upsert(pin_entry(EntryStatus.PUBLISHED), actor="ed")
        assert live.refresh_if_changed() is True
        assert live.refresh_if_changed() is False  # nothing new since
    finally:
        stop.set()
        asker.join()
        server_db.dispose()
        editor_db.dispose()

    assert errors == []
    assert answered[0] == ["faq/fees"]
    assert knowledge_base.search(question, vector)[0].entry_id == "manual:pin"


@pytest.fixture
def cli_database(tmp_path: Path) -> Iterator[tuple[Path, str, Engine]]:
    """A copy of the demo project and a SQLite database with every table, for `crowddesk kb`."""
    (tmp_path / "bot").mkdir()
    project = copy_demo_project(tmp_path / "bot")
    url = f"sqlite:///{tmp_path / 'kb.db'}"
    engine = create_engine_for(url)
    init_schema(engine)
    yield project, url, engine
    engine.dispose()


def test_the_cli_curates_and_the_server_notices_from_another_process(
    cli_database: tuple[Path, str, Engine],
    minilm_encoder: Encoder,
) -> None:
    project, url, engine = cli_database
    store = KnowledgeBaseStore(engine)
    store.upsert(pin_entry(EntryStatus.DRAFT), actor="ed")
    knowledge_base = KnowledgeBase(store, minilm_encoder, lexical_weight=0.3, top_k=3)
    live = LiveIndex(knowledge_base)
    live.refresh_if_changed()

    def crowddesk(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "crowddesk.bot.cli", "kb", *args, "--project", str(project), "--database-url", url],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    published = crowddesk("publish", "manual:pin", "--as", "lead", "--comment", "reviewed")
    assert published.returncode == 0, published.stderr
    assert live.refresh_if_changed() is True
    vector = minilm_encoder.encode(["change my PIN"])[0]
    assert knowledge_base.search("change my PIN", vector)[0].entry_id == "manual:pin"

    history = crowddesk("history", "manual:pin")
    assert history.returncode == 0, history.stderr
    assert "publish  published by lead  — reviewed" in history.stdout
    assert "create   draft     by ed" in history.stdout
    refused = crowddesk("restore", "manual:pin", "--version", "7")
    assert refused.returncode == EXIT_NOT_FOUND and "has no version 7" in refused.stderr


def test_suggestions_are_reviewed_from_the_command_line(
    cli_database: tuple[Path, str, Engine],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    project, url, engine = cli_database
    conversations = ConversationStore(engine)
    first = TicketSuggestions(engine).propose(
        handed_off(conversations, "c1", "Do you do mortgages?"), ["Do you do mortgages?"], "Not yet.", "ana"
    )
    second = TicketSuggestions(engine).propose(handed_off(conversations, "c2", "Crypto?"), ["Crypto?"], "No.", "ana")

    def crowddesk(*args: str) -> tuple[int, str]:
        code = main(["kb", *args, "--project", str(project), "--database-url", url])
        captured = capsys.readouterr()
        return code, captured.out + captured.err

    code, listing = crowddesk("suggestions")
    assert code == 0 and "Q: Do you do mortgages?" in listing and "2 suggestion(s)" in listing
    # Any editor command works; this one rewrites the answer in place.
    monkeypatch.setenv("EDITOR", "sed -i 's/Not yet./Not yet, we plan them for 2027./'")
    monkeypatch.delenv("VISUAL", raising=False)
    code, approved = crowddesk("approve", str(first.id), "--edit", "--as", "ed")
    assert code == 0 and f"published handoff:{first.ticket_id}" in approved
    entry = KnowledgeBaseStore(engine).get(f"handoff:{first.ticket_id}")
    assert entry is not None and entry.answer == "Not yet, we plan them for 2027."
    assert crowddesk("reject", str(second.id), "--reason", "out of scope", "--as", "ed")[0] == 0
    code, again = crowddesk("approve", str(second.id))
    assert code == 1 and f"suggestion {second.id} is already rejected" in again
    # The approved entry now covers the mortgage question; crypto is still a gap.
    code, gaps = crowddesk("gaps", "--since", "1", "--json")
    assert code == 0 and [gap["examples"] for gap in json.loads(gaps)] == [["Crypto?"]]


def test_the_watcher_checks_at_start_and_finishes_its_rebuild_before_stopping(
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    store = KnowledgeBaseStore(db_engine)
    knowledge_base = KnowledgeBase(store, minilm_encoder, lexical_weight=0.3, top_k=3)
    store.upsert(pin_entry(EntryStatus.PUBLISHED), actor="ed")  # after the index was built
    live = LiveIndex(knowledge_base, check_seconds=60)

    async def serve() -> None:
        async with live.running():
            pass

    asyncio.run(serve())

    assert len(knowledge_base.retriever) == 1
