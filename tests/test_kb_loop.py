"""The learning loop through the real server and demo bot: what a person answered today, the
bot answers tomorrow."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.test_end_to_end import say, tracker

QUESTION = "Can my partner and I open a joint account together?"
PARAPHRASE = "can my partner and I have a joint account?"
ANSWER = "Yes: open Accounts > New > Joint account in the app and invite your partner."


def token(client: TestClient, role: str) -> str:
    agents = client.app.state.bot.agents
    agent_id = f"{role}-{uuid.uuid4().hex[:8]}"
    agents.add(agent_id, role.title(), role=role)
    return agents.issue_token(agent_id)


def call(client: TestClient, method: str, path: str, token: str, **kwargs: Any) -> Any:
    response = client.request(method, path, headers={"Authorization": f"Bearer {token}"}, **kwargs)
    assert response.status_code == 200, response.text
    return response.json()


def kb_answer(client: TestClient, sender: str) -> str | None:
    """The entry the bot's last reply to `sender` was served from, if it was."""
    bot_lines = [e for e in tracker(client, sender)["events"] if e["event"] == "bot"]
    return (bot_lines[-1].get("data") or {}).get("custom", {}).get("kb_entry")


def test_an_answered_handoff_becomes_an_automatic_answer(demo_client: TestClient, sender: str) -> None:
    # No entry covers joint accounts: the bot hands the question to a person rather than guess.
    say(demo_client, QUESTION, sender)
    ticket = tracker(demo_client, sender)["handoff"]
    assert ticket is not None and ticket["packet"]["reason"] == "low_confidence"

    agent = token(demo_client, "agent")
    call(demo_client, "POST", f"/desk/api/tickets/{ticket['id']}/claim", agent)
    call(demo_client, "POST", f"/desk/api/tickets/{ticket['id']}/reply", agent, json={"text": ANSWER})
    call(demo_client, "POST", f"/desk/api/tickets/{ticket['id']}/resolve", agent)

    editor = token(demo_client, "editor")
    [suggestion] = [
        s for s in call(demo_client, "GET", "/kb/api/suggestions", editor) if s["ticket_id"] == ticket["id"]
    ]
    assert suggestion["questions"] == [QUESTION] and suggestion["answer"] == ANSWER
    entry = call(demo_client, "POST", f"/kb/api/suggestions/{suggestion['id']}/approve", editor, json={})

    later = f"customer-{uuid.uuid4().hex[:12]}"
    say(demo_client, PARAPHRASE, later)
    assert tracker(demo_client, later)["handoff"] is None
    assert kb_answer(demo_client, later) == entry["id"]
