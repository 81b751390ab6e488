"""The human handoff loop through the REST channel and the agent API."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.test_end_to_end import say, tracker


@pytest.fixture
def agent_token(demo_client: TestClient) -> str:
    agents = demo_client.app.state.bot.agents
    agent_id = f"agent-{uuid.uuid4().hex[:8]}"
    agents.add(agent_id, "Ana Agent")
    return agents.issue_token(agent_id)


def api(client: TestClient, method: str, path: str, token: str | None, **kwargs: Any) -> Any:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return client.request(method, f"/desk/api{path}", headers=headers, **kwargs)


def test_handoff_loop_claim_reply_resolve_and_rating(
    demo_client: TestClient, sender: str, agent_token: str
) -> None:
    say(demo_client, "can you recommend a good lasagne recipe?", sender)
    ticket = tracker(demo_client, sender)["handoff"]
    assert ticket is not None and ticket["status"] == "queued"

    listing = api(demo_client, "GET", "/tickets", agent_token)
    assert listing.status_code == 200, listing.text
    queue = listing.json()
    assert ticket["id"] in [t["id"] for t in queue]
    assert all(a["seconds_to_due"] <= b["seconds_to_due"] for a, b in zip(queue, queue[1:]))

    claimed = api(demo_client, "POST", f"/tickets/{ticket['id']}/claim", agent_token)
    assert claimed.status_code == 200 and claimed.json()["status"] == "assigned"
    # The bot stays silent while a person owns the conversation.
    assert say(demo_client, "hello?", sender) == []

    reply = api(demo_client, "POST", f"/tickets/{ticket['id']}/reply", agent_token,
                json={"text": "Hi, Ana here. I can't help with recipes, but with your account I can!"})
    assert reply.status_code == 200
    bot_lines = [e for e in tracker(demo_client, sender)["events"] if e["event"] == "bot"]
    assert bot_lines[-1]["text"].startswith("Hi, Ana here")
    assert bot_lines[-1]["metadata"]["agent_name"] == "Ana Agent"

    detail = api(demo_client, "GET", f"/tickets/{ticket['id']}", agent_token).json()
    assert [m["role"] for m in detail["messages"]][-2:] == ["customer", "agent"]
    assert detail["packet"]["reason"] == "out_of_scope"

    resolved = api(demo_client, "POST", f"/tickets/{ticket['id']}/resolve", agent_token)
    assert resolved.status_code == 200 and resolved.json()["status"] == "resolved"
    state = tracker(demo_client, sender)
    assert state["handoff"] is None and state["owner"] == "bot"
    assert "rate" in [e for e in state["events"] if e["event"] == "bot"][-1]["text"].lower()
    # Back with the bot: it answers again.
    assert say(demo_client, "hi", sender)


def test_desk_api_rejects_bad_requests_clearly(
    demo_client: TestClient, sender: str, agent_token: str
) -> None:
    assert api(demo_client, "GET", "/tickets", None).status_code == 401
    bad = api(demo_client, "GET", "/tickets", "cdk_not-a-token")
    assert bad.status_code == 401 and bad.headers["www-authenticate"] == "Bearer"
    assert api(demo_client, "POST", "/tickets/nope/claim", agent_token).status_code == 404

    say(demo_client, "I want to speak to a human", sender)
    ticket_id = tracker(demo_client, sender)["handoff"]["id"]
    early = api(demo_client, "POST", f"/tickets/{ticket_id}/reply", agent_token, json={"text": "hi"})
    assert early.status_code == 409 and "claim it first" in early.json()["error"]
    api(demo_client, "POST", f"/tickets/{ticket_id}/claim", agent_token)
    huge = api(demo_client, "POST", f"/tickets/{ticket_id}/reply", agent_token, json={"text": "x" * 5000})
    assert huge.status_code == 422
    api(demo_client, "POST", f"/tickets/{ticket_id}/resolve", agent_token)
    late = api(demo_client, "POST", f"/tickets/{ticket_id}/reply", agent_token, json={"text": "hi"})
    assert late.status_code == 409 and "resolved" in late.json()["error"]

    editors = demo_client.app.state.bot.agents
    editors.add(f"ed-{sender}", "Eddie", role="editor")
    assert api(demo_client, "GET", "/tickets", editors.issue_token(f"ed-{sender}")).status_code == 403
