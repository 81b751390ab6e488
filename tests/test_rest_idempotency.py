"""REST clients may retry safely: a message sent again with its `message_id` runs once and is
answered with the replies of the first delivery."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from crowddesk.bot.conversations.deliveries import SeenMessages
from tests.demo_bot import API_AUTH, agent_headers

WEBHOOK = "/webhooks/rest/webhook"


def post(client: TestClient, sender: str, text: str, message_id: str | None = None) -> Any:
    body = {"sender": sender, "message": text, **({"message_id": message_id} if message_id else {})}
    return client.post(WEBHOOK, json=body)


def user_events(client: TestClient, sender: str) -> list[dict[str, Any]]:
    events = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["events"]
    return [e for e in events if e["event"] == "user"]


def test_a_retried_message_runs_once_and_gets_the_same_replies(demo_client: TestClient, sender: str) -> None:
    message_id = str(uuid.uuid4())
    first = post(demo_client, sender, "my card hasn't arrived", message_id)
    retry = post(demo_client, sender, "my card hasn't arrived", message_id)
    assert first.status_code == retry.status_code == 200
    assert first.json() and retry.json() == first.json()
    assert [e["text"] for e in user_events(demo_client, sender)] == ["my card hasn't arrived"]

    # A new id is a new message; no id means no de-duplication, as before.
    post(demo_client, sender, "my card hasn't arrived", str(uuid.uuid4())).raise_for_status()
    post(demo_client, sender, "thanks").raise_for_status()
    post(demo_client, sender, "thanks").raise_for_status()
    assert len(user_events(demo_client, sender)) == 4


def test_message_ids_are_per_sender(demo_client: TestClient, sender: str) -> None:
    for who in (sender, f"{sender}-b"):
        assert post(demo_client, who, "hello", "1").json()
        assert len(user_events(demo_client, who)) == 1


def test_a_retry_while_a_human_owns_the_conversation_replays_nothing_of_the_agents(
    demo_client: TestClient, sender: str
) -> None:
    post(demo_client, sender, "I want to speak to a human", "m1").raise_for_status()
    assert post(demo_client, sender, "are you there?", "m2").json() == []
    ticket = demo_client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["handoff"]["id"]
    desk = agent_headers(demo_client.app.state.bot)  # type: ignore[attr-defined]
    demo_client.post(f"/desk/api/tickets/{ticket}/claim", headers=desk).raise_for_status()
    reply = demo_client.post(f"/desk/api/tickets/{ticket}/reply", headers=desk, json={"text": "Yes, Ana here."})
    reply.raise_for_status()

    assert post(demo_client, sender, "are you there?", "m2").json() == []
    assert [e["text"] for e in user_events(demo_client, sender)] == ["I want to speak to a human", "are you there?"]


def test_a_retry_racing_the_first_delivery_is_told_to_come_back(demo_client: TestClient, sender: str) -> None:
    bot = demo_client.app.state.bot  # type: ignore[attr-defined]
    # The first delivery has been accepted but its turn is not stored yet.
    assert SeenMessages(bot.database).first_sight("rest", f"{sender}:m1")
    response = post(demo_client, sender, "hello", "m1")
    assert response.status_code == 409
    assert "still being processed" in response.json()["error"]
    assert user_events(demo_client, sender) == []


def test_a_malformed_message_id_is_refused(demo_client: TestClient, sender: str) -> None:
    for bad in ("a:b", "x" * 128, ""):
        response = demo_client.post(WEBHOOK, json={"sender": sender, "message": "hello", "message_id": bad})
        assert response.status_code == 422
        assert response.json()["error"].startswith("invalid request: message_id:")
    assert user_events(demo_client, sender) == []
