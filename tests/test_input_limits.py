"""Malformed input to the demo bot's server gets a 4xx with a reason, never a 500: JSON nested
too deep to any route, numbers past what the database holds; and /model/parse reads text as
the gateway passes it on (normalised)."""

from __future__ import annotations

import uuid

import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.assemble import Bot
from tests.demo_bot import API_AUTH

DEEP = b'{"sender": "x", "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
HUGE = "1" + "0" * 23  # 10^23


@pytest.fixture(scope="module")
def editor(demo_client: TestClient) -> dict[str, str]:
    bot: Bot = demo_client.app.state.bot  # type: ignore[attr-defined]
    agent_id = f"limits-{uuid.uuid4().hex[:8]}"
    bot.agents.add(agent_id, "Limits", "admin")
    return {"Authorization": f"Bearer {bot.agents.issue_token(agent_id)}"}


@pytest.mark.parametrize(
    "path",
    [
        "/webhooks/rest/webhook",
        "/desk/api/login",
        "/kb/api/entries",
        "/model/parse",
    ],
)
def test_json_nested_100k_deep_gets_400_with_the_reason(demo_client: TestClient, path: str) -> None:
    response = demo_client.post(path, content=DEEP, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"error": "request body nests JSON deeper than 32 levels"}


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("GET", f"/kb/api/entries?offset={HUGE}", None, "offset"),
        ("GET", f"/kb/api/usage?offset={HUGE}", None, "offset"),
        ("POST", f"/kb/api/suggestions/{HUGE}/reject", {"reason": "no"}, "suggestion_id"),
        ("POST", f"/kb/api/suggestions/{HUGE}/approve", {}, "suggestion_id"),
        ("POST", "/kb/api/entries/faq/x/restore", {"version": int(HUGE)}, "version"),
        ("GET", "/kb/api/gaps?since_days=1e308", None, "since_days"),
    ],
)
def test_numbers_past_their_range_get_422_naming_the_field(
    demo_client: TestClient,
    editor: dict[str, str],
    method: str,
    path: str,
    body: object,
    field: str,
) -> None:
    response = demo_client.request(method, path, json=body, headers=editor)

    assert response.status_code == 422
    assert field in response.json()["error"] and "less than or equal to" in response.json()["error"]


def test_parse_reads_the_text_the_gateway_would_pass_on(demo_client: TestClient) -> None:
    response = demo_client.post("/model/parse", json={"text": "refund \u202eDNUFER\u202c please\x00"}, headers=API_AUTH)

    assert response.status_code == 200
    assert response.json()["text"] == "refund DNUFER please"
