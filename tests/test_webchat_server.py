"""The web chat channel inside `crowddesk run`'s app with the trained demo bot: the gateway's
de-duplication, the store's history and the outbox's delivery of agent replies."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient

from crowddesk.connectors.webchat import SOCKET_PATH
from tests.demo_bot import API_AUTH

CARD_QUESTION = "It's been a week and my new card still hasn't arrived"


def frames_until_ack(socket: Any) -> list[dict[str, Any]]:
    frames = [socket.receive_json()]
    while frames[-1]["type"] not in ("ack", "error"):
        frames.append(socket.receive_json())
    return frames


def replies(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [f for f in frames if f["type"] == "message" and f["role"] != "customer"]


def test_a_message_resent_after_a_reconnect_is_answered_once(demo_client: TestClient) -> None:
    session, message_id = str(uuid.uuid4()), str(uuid.uuid4())
    frame = {"type": "message", "message_id": message_id, "text": CARD_QUESTION}
    with demo_client.websocket_connect(f"{SOCKET_PATH}?session={session}") as socket:
        assert socket.receive_json()["messages"] == []
        socket.send_json(frame)
        [answer] = replies(frames_until_ack(socket))
    assert answer["source"].startswith("https://community.northwind-bank.example/t/")

    # The widget did not see the ack (say the connection dropped) and sends the message again.
    with demo_client.websocket_connect(f"{SOCKET_PATH}?session={session}") as socket:
        history = socket.receive_json()["messages"]
        socket.send_json(frame)
        resent = frames_until_ack(socket)
    assert replies(resent) == []
    assert resent[-1] == {"type": "ack", "message_id": message_id}
    assert [(m["role"], m["message_id"]) for m in history] == [("customer", message_id), ("bot", None)]
    events = demo_client.get(f"/conversations/webchat:{session}/tracker", headers=API_AUTH).json()["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == [CARD_QUESTION]


def test_an_agents_reply_reaches_the_open_widget_through_the_outbox(demo_client: TestClient) -> None:
    session = str(uuid.uuid4())
    bot = demo_client.app.state.bot  # type: ignore[attr-defined]
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    bot.agents.add(agent, "Ana Agent")
    desk = {"Authorization": f"Bearer {bot.agents.issue_token(agent)}"}
    with demo_client.websocket_connect(f"{SOCKET_PATH}?session={session}") as socket:
        socket.receive_json()
        socket.send_json(
            {"type": "message", "message_id": str(uuid.uuid4()), "text": "I want to speak to a human about my card"}
        )
        frames_until_ack(socket)
        tracker = demo_client.get(f"/conversations/webchat:{session}/tracker", headers=API_AUTH).json()
        ticket = tracker["handoff"]["id"]
        demo_client.post(f"/desk/api/tickets/{ticket}/claim", headers=desk).raise_for_status()
        demo_client.post(
            f"/desk/api/tickets/{ticket}/reply", headers=desk, json={"text": "Ana here, looking at it now."}
        ).raise_for_status()
        pushed = socket.receive_json()
    assert (pushed["role"], pushed["name"], pushed["text"]) == ("agent", "Ana Agent", "Ana here, looking at it now.")
