"""The human handoff loop through the REST channel and the agent API."""

from __future__ import annotations

import uuid
from itertools import pairwise
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


def test_handoff_loop_claim_reply_resolve_and_rating(demo_client: TestClient, sender: str, agent_token: str) -> None:
    say(demo_client, "can you recommend a good lasagne recipe?", sender)
    ticket = tracker(demo_client, sender)["handoff"]
    assert ticket is not None and ticket["status"] == "queued"

    listing = api(demo_client, "GET", "/tickets", agent_token)
    assert listing.status_code == 200, listing.text
    queue = listing.json()
    assert ticket["id"] in [t["id"] for t in queue]
    assert all(a["seconds_to_due"] <= b["seconds_to_due"] for a, b in pairwise(queue))

    claimed = api(demo_client, "POST", f"/tickets/{ticket['id']}/claim", agent_token)
    assert claimed.status_code == 200 and claimed.json()["status"] == "assigned"
    # The bot stays silent while a person owns the conversation.
    assert say(demo_client, "hello?", sender) == []

    reply = api(
        demo_client,
        "POST",
        f"/tickets/{ticket['id']}/reply",
        agent_token,
        json={"text": "Hi, Ana here. I can't help with recipes, but with your account I can!"},
    )
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


def test_desk_api_rejects_bad_requests_clearly(demo_client: TestClient, sender: str, agent_token: str) -> None:
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


def new_agent(client: TestClient, role: str = "agent") -> tuple[str, str]:
    """A fresh account of `role` with a token: (agent id, token)."""
    agents = client.app.state.bot.agents
    agent_id = f"{role}-{uuid.uuid4().hex[:8]}"
    agents.add(agent_id, f"{role.title()} {agent_id[-4:]}", role=role)
    return agent_id, agents.issue_token(agent_id)


def test_logout_revokes_the_token_it_was_made_with(demo_client: TestClient) -> None:
    agent_id, token = new_agent(demo_client)
    other = demo_client.app.state.bot.agents.issue_token(agent_id)
    assert api(demo_client, "POST", "/logout", token).status_code == 204
    after = api(demo_client, "GET", "/tickets", token)
    assert after.status_code == 401 and after.json()["error"] == "unknown token"
    assert api(demo_client, "POST", "/logout", token).status_code == 401
    # Signing out on one device leaves the agent's other sessions alone.
    assert api(demo_client, "GET", "/tickets", other).status_code == 200


def test_only_admins_create_agents_and_everyone_sees_names(demo_client: TestClient) -> None:
    admin_id, admin = new_agent(demo_client, "admin")
    agent_id, agent = new_agent(demo_client)
    new_id = f"new-{uuid.uuid4().hex[:8]}"
    body = {"id": new_id, "name": "Nia New", "role": "agent", "password": "correct horse battery"}

    refused = api(demo_client, "POST", "/agents", agent, json=body)
    assert refused.status_code == 403 and refused.json()["error"] == "only admins manage agent accounts"
    created = api(demo_client, "POST", "/agents", admin, json=body)
    assert created.status_code == 201 and created.json() == {"id": new_id, "name": "Nia New", "role": "agent"}
    assert api(demo_client, "POST", "/agents", admin, json=body).status_code == 409
    for field, bad in [("role", "boss"), ("id", "nia new"), ("password", "short")]:
        assert api(demo_client, "POST", "/agents", admin, json={**body, field: bad}).status_code == 422, field
    signed_in = demo_client.post("/desk/api/login", json={"agent_id": new_id, "password": body["password"]})
    assert signed_in.status_code == 200

    editor_id, _ = new_agent(demo_client, "editor")
    as_agent = api(demo_client, "GET", "/agents", agent).json()
    assert {"id": new_id, "name": "Nia New"} in as_agent
    assert all(set(a) == {"id", "name"} for a in as_agent)
    assert editor_id not in [a["id"] for a in as_agent]  # only colleagues a ticket can go to
    as_admin = api(demo_client, "GET", "/agents", admin).json()
    assert {"id": admin_id, "name": f"Admin {admin_id[-4:]}", "role": "admin"} in as_admin
    assert {agent_id, editor_id} <= {a["id"] for a in as_admin}


def test_admins_revoke_another_agents_tokens(demo_client: TestClient) -> None:
    _, admin = new_agent(demo_client, "admin")
    agent_id, agent = new_agent(demo_client)
    path = f"/agents/{agent_id}/tokens"
    assert api(demo_client, "DELETE", path, agent).status_code == 403
    revoked = api(demo_client, "DELETE", path, admin)
    assert revoked.status_code == 200 and revoked.json() == {"agent_id": agent_id, "revoked": 1}
    assert api(demo_client, "GET", "/tickets", agent).status_code == 401
    missing = api(demo_client, "DELETE", "/agents/nobody/tokens", admin)
    assert missing.status_code == 404 and "nobody" in missing.json()["error"]


def test_account_endpoints_are_in_the_openapi_docs(demo_client: TestClient) -> None:
    paths = demo_client.get("/openapi.json").json()["paths"]
    assert {"post"} <= set(paths["/desk/api/logout"])
    assert {"get", "post"} <= set(paths["/desk/api/agents"])
    assert {"delete"} <= set(paths["/desk/api/agents/{agent_id}/tokens"])
