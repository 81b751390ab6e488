"""The editor API (/kb/api): roles, entry lifecycle with history, suggestions, gaps."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.curation import api as kb_api
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.services import provide
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.knowledge_base.usage import UsageReport
from crowddesk.nlu.encoders import Encoder


class Editor:
    """An HTTP client signed in as one account."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client, self.headers = client, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, status: int = 200, **kwargs: Any) -> Any:
        response = self.client.request(method, f"/kb/api{path}", headers=self.headers, **kwargs)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def app(db_engine: Engine, minilm_encoder: Encoder) -> Iterator[tuple[TestClient, KnowledgeBase]]:
    store = KnowledgeBaseStore(db_engine)
    store.upsert(KBEntry(id="faq/fees", questions=["What are the fees?"], answer="None."))
    knowledge_base = KnowledgeBase(store, minilm_encoder, lexical_weight=0.3, top_k=3)
    server = FastAPI()
    install_error_handlers(server)
    provide(
        server,
        AgentDirectory(db_engine),
        LiveIndex(knowledge_base),
        Redactor(),
        Suggestions(db_engine),
        UsageReport(db_engine),
        db_engine,
    )
    server.include_router(kb_api.router)
    with TestClient(server) as client:
        yield client, knowledge_base


def signed_in(client: TestClient, db_engine: Engine, agent_id: str, role: str) -> Editor:
    agents = AgentDirectory(db_engine)
    agents.add(agent_id, agent_id.title(), role=role)
    return Editor(client, agents.issue_token(agent_id))


def top_entry(knowledge_base: KnowledgeBase, encoder: Encoder, text: str) -> str:
    return knowledge_base.search(text, encoder.encode([text])[0])[0].entry_id


def test_only_editors_and_admins_curate(app, db_engine: Engine) -> None:
    client, _ = app
    agent = signed_in(client, db_engine, "ana", "agent")

    assert client.get("/kb/api/entries").status_code == 401
    assert "can't curate" in agent("GET", "/entries", 403)["error"]
    assert [e["id"] for e in signed_in(client, db_engine, "root", "admin")("GET", "/entries")] == ["faq/fees"]


def test_an_entry_from_draft_to_served_to_retired_with_its_history(
    app,
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    client, knowledge_base = app
    ed = signed_in(client, db_engine, "ed", "editor")
    body = {"id": "manual:pin", "questions": ["How do I change my PIN?"], "answer": "In the app."}

    assert ed("POST", "/entries", 201, json=body)["status"] == "draft"
    assert "exists" in ed("POST", "/entries", 409, json=body)["error"]
    ed("PUT", "/entries/manual:pin", json={**body, "answer": "Cards > PIN.", "comment": "precise"})
    ed("POST", "/entries/manual:pin/publish", json={})

    assert top_entry(knowledge_base, minilm_encoder, "change my PIN") == "manual:pin"

    assert ed("PUT", "/entries/manual:pin", json=body)["answer"] == "In the app."  # undone below
    ed("POST", "/entries/manual:pin/restore", json={"version": 2})
    assert ed("GET", "/entries/manual:pin")["answer"] == "Cards > PIN."
    assert ed("POST", "/entries/manual:pin/retire", json={"comment": "product changed"})["status"] == "retired"
    assert top_entry(knowledge_base, minilm_encoder, "change my PIN") == "faq/fees"
    history = ed("GET", "/entries/manual:pin/history")
    assert [(v["version"], v["action"], v["actor"]) for v in history] == [
        (1, "create", "ed"),
        (2, "edit", "ed"),
        (3, "publish", "ed"),
        (4, "edit", "ed"),
        (5, "restore", "ed"),
        (6, "retire", "ed"),
    ]
    assert [e["id"] for e in ed("GET", "/entries", params={"status": "retired"})] == ["manual:pin"]


def test_bad_requests_get_reasons(app, db_engine: Engine) -> None:
    client, _ = app
    ed = signed_in(client, db_engine, "ed", "editor")

    assert "no knowledge-base entry 'faq/none'" in ed("GET", "/entries/faq/none", 404)["error"]
    assert "has no version 9" in ed("POST", "/entries/faq/fees/restore", 404, json={"version": 9})["error"]
    ed("POST", "/entries", 422, json={"id": "manual:y", "questions": [], "answer": "y"})
    ed("PUT", "/entries/faq/fees", 422, json={"questions": ["   "], "answer": "y"})
    assert "no suggestion 42" in ed("POST", "/suggestions/42/reject", 404, json={"reason": "no"})["error"]


def test_unsafe_entry_ids_and_source_urls_are_refused_with_the_reason(app, db_engine: Engine) -> None:
    client, _ = app
    ed = signed_in(client, db_engine, "ed", "editor")
    body = {"id": "manual:pin", "questions": ["How do I change my PIN?"], "answer": "In the app."}

    assert (
        "must start with a letter or digit"
        in ed("POST", "/entries", 422, json={**body, "id": "../../etc/passwd"})["error"]
    )
    assert "'.' or '..' segment" in ed("POST", "/entries", 422, json={**body, "id": "faq/../x"})["error"]
    for url in ("javascript:alert(1)", "data:text/html,<script>", "//evil.example"):
        assert "http:// or https://" in ed("POST", "/entries", 422, json={**body, "source_url": url})["error"]
        assert "http:// or https://" in ed("PUT", "/entries/faq/fees", 422, json={**body, "source_url": url})["error"]
    assert ed("GET", "/entries/faq/fees")["source_url"] == ""
    created = ed("POST", "/entries", 201, json={**body, "source_url": "https://community.example/t/1"})
    assert created["source_url"] == "https://community.example/t/1"


def test_suggestions_are_approved_into_the_index_or_rejected(
    app,
    db_engine: Engine,
    minilm_encoder: Encoder,
) -> None:
    client, knowledge_base = app
    ed = signed_in(client, db_engine, "ed", "editor")
    conversations = ConversationStore(db_engine)
    tickets = []
    for sender in ("c1", "c2"):
        _, ticket = conversations.record_turn(
            sender,
            "webchat",
            [{"event": "user", "timestamp": time.time(), "text": "hi"}],
            {},
            0,
            "queued",
            None,
            NewHandoff("low_confidence", "normal", {}, datetime.now(UTC) + timedelta(hours=1)),
        )
        assert ticket is not None
        tickets.append(ticket.id)
    box = TicketSuggestions(db_engine)
    first = box.propose(tickets[0], ["Can I freeze my card from abroad?"], "Yes, in the app.", "ana")
    second = box.propose(tickets[1], ["Do you sell insurance?"], "No.", "ana")

    assert [s["id"] for s in ed("GET", "/suggestions")] == [first.id, second.id]
    entry = ed("POST", f"/suggestions/{first.id}/approve", json={"answer": "Yes: Cards > Freeze, anywhere."})
    assert (entry["id"], entry["status"], entry["answer"]) == (
        f"handoff:{tickets[0]}",
        "published",
        "Yes: Cards > Freeze, anywhere.",
    )
    assert top_entry(knowledge_base, minilm_encoder, "freeze my card while travelling") == entry["id"]
    assert "already approved" in ed("POST", f"/suggestions/{first.id}/approve", 409, json={})["error"]
    ed("POST", f"/suggestions/{second.id}/reject", 422, json={"reason": ""})
    assert ed("POST", f"/suggestions/{second.id}/reject", json={"reason": "we don't"})["status"] == "rejected"
    assert ed("GET", "/suggestions") == []
    assert len(ed("GET", "/suggestions", params={"status": "all"})) == 2


def test_gaps_and_the_openapi_docs(app, db_engine: Engine) -> None:
    client, _ = app
    ed = signed_in(client, db_engine, "ed", "editor")
    ConversationStore(db_engine).record_turn(
        "c1",
        "webchat",
        [
            {
                "event": "user",
                "timestamp": time.time(),
                "text": "Do you have a student account?",
                "parse_data": {"text": "Do you have a student account?"},
            },
            {"event": "handoff", "timestamp": time.time(), "reason": "out_of_scope"},
        ],
        {},
        0,
        "bot",
        None,
    )

    [gap] = ed("GET", "/gaps", params={"since_days": 1})
    assert gap["examples"] == ["Do you have a student account?"] and gap["size"] == 1
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/kb/api/entries", "/kb/api/suggestions/{suggestion_id}/approve", "/kb/api/gaps"} <= set(paths)
