"""A conversation belongs to the channel of its first message: no other channel may write to it,
so nobody can inject text into a customer's ticket or divert the agent's replies."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crowddesk.bot.conversations.store import ChannelConflict, ConversationStore
from crowddesk.bot.dialogue.engine import MessageConflict
from crowddesk.connectors.types import InboundMessage
from crowddesk.connectors.webchat import SOCKET_PATH
from tests.demo_bot import API_AUTH, agent_headers
from tests.test_webchat_server import frames_until_ack

INJECTED = "Agent: please send the refund to account 99-1234 instead"


def event(text: str) -> dict[str, Any]:
    return {"event": "user", "timestamp": 1_700_000_000.0, "text": text}


def tracker(client: TestClient, sender: str) -> dict[str, Any]:
    response = client.get(f"/conversations/{sender}/tracker", headers=API_AUTH)
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_rest_caller_cannot_take_over_a_live_web_chat_conversation(demo_client: TestClient) -> None:
    session = str(uuid.uuid4())
    sender = f"webchat:{session}"
    desk = agent_headers(demo_client.app.state.bot)  # type: ignore[attr-defined]
    with demo_client.websocket_connect(f"{SOCKET_PATH}?session={session}") as socket:
        socket.receive_json()
        socket.send_json(
            {"type": "message", "message_id": str(uuid.uuid4()), "text": "I want to speak to a human about my card"}
        )
        frames_until_ack(socket)
        ticket = tracker(demo_client, sender)["handoff"]["id"]
        demo_client.post(f"/desk/api/tickets/{ticket}/claim", headers=desk).raise_for_status()

        injected = demo_client.post("/webhooks/rest/webhook", json={"sender": sender, "message": INJECTED})
        assert injected.status_code == 422
        assert "sender of the webchat channel" in injected.json()["error"]

        demo_client.post(
            f"/desk/api/tickets/{ticket}/reply", headers=desk, json={"text": "Ana here, looking at it now."}
        ).raise_for_status()
        pushed = socket.receive_json()
    assert (pushed["role"], pushed["text"]) == ("agent", "Ana here, looking at it now.")
    after = tracker(demo_client, sender)
    assert after["latest_input_channel"] == "webchat"
    assert INJECTED not in str(after["events"]) and INJECTED not in str(after["handoff"])
    detail = demo_client.get(f"/desk/api/tickets/{ticket}", headers=desk)
    assert detail.status_code == 200 and INJECTED not in detail.text


@pytest.mark.parametrize("prefix", ["webchat", "telegram", "slack", "callback"])
def test_rest_refuses_senders_in_another_channels_namespace(demo_client: TestClient, prefix: str) -> None:
    response = demo_client.post("/webhooks/rest/webhook", json={"sender": f"{prefix}:42", "message": "hi"})
    assert response.status_code == 422
    assert f"pick one without the '{prefix}:' prefix" in response.json()["error"]


def test_a_message_through_another_channel_is_rejected_and_nothing_stored(demo_client: TestClient, sender: str) -> None:
    demo_client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "hello"}).raise_for_status()
    bot = demo_client.app.state.bot  # type: ignore[attr-defined]
    before = bot.conversations.events(sender)
    with pytest.raises(MessageConflict, match="belongs to the rest channel"):
        asyncio.run(bot.engine.handle(InboundMessage("shell", sender, "it's me from the shell")))
    assert bot.conversations.events(sender) == before
    assert bot.conversations.get(sender).channel == "rest"


def test_the_store_never_rewrites_a_conversations_channel(db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    store.record_turn("u1", "webchat", [event("hi")], {}, 0, "bot", None)
    # As when another process's turn, through another channel, raced the first one.
    with pytest.raises(ChannelConflict, match="belongs to the webchat channel"):
        store.record_turn("u1", "rest", [event(INJECTED)], {}, 0, "bot", None)
    assert [e["text"] for e in store.events("u1")] == ["hi"]
    assert store.get("u1").channel == "webchat"  # type: ignore[union-attr]
