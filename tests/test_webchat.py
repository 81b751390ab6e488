"""The web chat channel's websocket protocol and files, through Starlette's TestClient.

The app is the connector's own router over a real conversation store; the sink stands for the
gateway (it records what the widget sent and answers with fixed replies).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.testclient import WebSocketDenialResponse

from crowddesk.bot.conversations.store import ConversationStore, ConversationTables
from crowddesk.bot.project.credentials import build_channels, load_credentials
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.registry import connector_class
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from crowddesk.connectors.webchat import SOCKET_PATH, WebchatChannel
from crowddesk.storage.engines import create_engine_for

SOURCE = "https://community.example.com/t/card-delivery/42"
KB_ANSWER = OutboundMessage(
    "unused",
    f"Cards arrive within 5 working days.\n\nSource: {SOURCE}",
    custom={"kb_entry": "faq/card_delivery", "source_url": SOURCE, "confidence": 0.97},
)
CLARIFY = OutboundMessage(
    "unused",
    "Did you mean one of these?",
    (
        Button("Card delivery", "/faq/card_delivery"),
        Button("Card activation", "/faq/activate_card"),
    ),
)


class RecordingSink:
    """Records each message and answers from `replies` by text (nothing for other texts)."""

    def __init__(self) -> None:
        self.received: list[InboundMessage] = []
        self.replies: dict[str, list[OutboundMessage]] = {
            "when does my card come?": [KB_ANSWER],
            "card": [CLARIFY],
        }

    async def __call__(self, message: InboundMessage) -> list[OutboundMessage]:
        self.received.append(message)
        if not message.text.strip():
            raise ValueError("message is empty")
        return self.replies.get(message.text, [])


@pytest.fixture
def store(tmp_path: Path) -> ConversationStore:
    engine = create_engine_for(f"sqlite:///{tmp_path / 'webchat.db'}")
    ConversationTables.metadata.create_all(engine)
    return ConversationStore(engine)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


def chat_client(channel: WebchatChannel, sink: RecordingSink, store: ConversationStore) -> TestClient:
    app = FastAPI()
    app.state.conversations = store
    app.include_router(channel.router(sink))
    return TestClient(app)


@pytest.fixture
def client(sink: RecordingSink, store: ConversationStore) -> Iterator[TestClient]:
    with chat_client(WebchatChannel(), sink, store) as test_client:
        yield test_client


def new_session() -> str:
    return str(uuid.uuid4())


def socket_url(session: str) -> str:
    return f"{SOCKET_PATH}?session={session}"


def say(socket: Any, text: str) -> str:
    message_id = str(uuid.uuid4())
    socket.send_json({"type": "message", "message_id": message_id, "text": text})
    return message_id


def frames_until_ack(socket: Any) -> list[dict[str, Any]]:
    frames = []
    while not frames or frames[-1]["type"] not in ("ack", "error"):
        frames.append(socket.receive_json())
    return frames


def test_the_widget_files_are_served_for_any_page(client: TestClient) -> None:
    script = client.get("/webchat/widget.js")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert "document.currentScript" in script.text
    style = client.get("/webchat/widget.css")
    assert style.headers["content-type"].startswith("text/css")
    assert style.headers["cross-origin-resource-policy"] == "cross-origin"
    missing = client.get("/webchat/secrets.py")
    assert missing.status_code == 404
    assert "secrets.py" in missing.json()["error"]


def test_a_question_gets_typing_then_the_answer_with_its_source_then_an_ack(
    client: TestClient, sink: RecordingSink
) -> None:
    session = new_session()
    with client.websocket_connect(socket_url(session)) as socket:
        assert socket.receive_json() == {"type": "history", "messages": []}
        message_id = say(socket, "when does my card come?")
        typing_on, answer, typing_off, ack = frames_until_ack(socket)

    assert typing_on == {"type": "typing", "active": True}
    assert answer["role"] == "bot"
    assert answer["text"] == "Cards arrive within 5 working days."
    assert answer["source"] == SOURCE
    assert typing_off == {"type": "typing", "active": False}
    assert ack == {"type": "ack", "message_id": message_id}
    [inbound] = sink.received
    assert (inbound.channel, inbound.sender_id, inbound.text) == (
        "webchat",
        f"webchat:{session}",
        "when does my card come?",
    )
    # Ids are scoped to the session, so no widget can make another's message look like a duplicate.
    assert inbound.message_id == f"{session}:{message_id}"


def test_buttons_arrive_as_title_and_payload(client: TestClient) -> None:
    with client.websocket_connect(socket_url(new_session())) as socket:
        socket.receive_json()
        say(socket, "card")
        reply = frames_until_ack(socket)[1]
    assert reply["buttons"] == [
        {"title": "Card delivery", "payload": "/faq/card_delivery"},
        {"title": "Card activation", "payload": "/faq/activate_card"},
    ]


def test_on_reconnect_the_history_shows_what_was_said_with_button_titles_sources_and_agents(
    client: TestClient, store: ConversationStore
) -> None:
    session = new_session()
    now = time.time()
    store.record_turn(
        f"webchat:{session}",
        "webchat",
        [
            {"event": "user", "timestamp": now, "text": "card", "message_id": f"{session}:m-1"},
            {
                "event": "bot",
                "timestamp": now,
                "text": CLARIFY.text,
                "data": {"buttons": [b.as_dict() for b in CLARIFY.buttons]},
            },
            {"event": "user", "timestamp": now, "text": "/faq/card_delivery", "message_id": f"{session}:m-2"},
            {"event": "bot", "timestamp": now, "text": KB_ANSWER.text, "data": {"custom": KB_ANSWER.custom}},
            {"event": "action", "timestamp": now, "name": "action_listen"},
            {
                "event": "bot",
                "timestamp": now,
                "text": "Hi, Ana here. Let me check.",
                "data": {},
                "metadata": {"agent_id": "ana", "agent_name": "Ana Agent", "ticket_id": "t1"},
            },
        ],
        {},
        0,
        "assigned",
        None,
    )

    with client.websocket_connect(socket_url(session)) as socket:
        history = socket.receive_json()

    shown = [(m["role"], m["text"], m["message_id"]) for m in history["messages"]]
    assert shown == [
        ("customer", "card", "m-1"),
        ("bot", "Did you mean one of these?", None),
        ("customer", "Card delivery", "m-2"),
        ("bot", "Cards arrive within 5 working days.", None),
        ("agent", "Hi, Ana here. Let me check.", None),
    ]
    assert history["messages"][3]["source"] == SOURCE
    assert history["messages"][4]["name"] == "Ana Agent"


def test_send_pushes_an_agent_reply_to_every_open_widget_of_that_session_only(
    sink: RecordingSink, store: ConversationStore
) -> None:
    channel = WebchatChannel()
    session, other = new_session(), new_session()
    reply = OutboundMessage(
        f"webchat:{session}",
        "Ana here: your card is on its way.",
        custom={"agent_id": "ana", "agent_name": "Ana Agent"},
    )
    with (
        chat_client(channel, sink, store) as client,
        client.websocket_connect(socket_url(session)) as tab_1,
        client.websocket_connect(socket_url(session)) as tab_2,
        client.websocket_connect(socket_url(other)) as stranger,
    ):
        for socket in (tab_1, tab_2, stranger):
            socket.receive_json()
        assert client.portal is not None
        client.portal.call(channel.send, f"webchat:{session}", reply)
        pushed = [tab_1.receive_json(), tab_2.receive_json()]
        say(stranger, "still there?")
        stranger_frames = frames_until_ack(stranger)

    for frame in pushed:
        assert (frame["role"], frame["name"], frame["text"]) == (
            "agent",
            "Ana Agent",
            "Ana here: your card is on its way.",
        )
    assert all(frame.get("role") != "agent" for frame in stranger_frames)


def test_a_second_tab_sees_the_customers_message_and_the_replies(client: TestClient) -> None:
    session = new_session()
    with client.websocket_connect(socket_url(session)) as tab_1, client.websocket_connect(socket_url(session)) as tab_2:
        tab_1.receive_json(), tab_2.receive_json()
        message_id = say(tab_1, "when does my card come?")
        frames_until_ack(tab_1)
        echoed, typing_on, answer, typing_off = (tab_2.receive_json() for _ in range(4))
    assert (echoed["role"], echoed["text"], echoed["message_id"]) == ("customer", "when does my card come?", message_id)
    assert typing_on["active"] and not typing_off["active"]
    assert answer["source"] == SOURCE


def test_send_succeeds_with_no_widget_open_because_the_history_delivers_it() -> None:
    channel = WebchatChannel()
    asyncio.run(channel.send(f"webchat:{new_session()}", OutboundMessage("x", "Back soon")))


def test_send_to_a_recipient_of_another_channel_is_a_permanent_failure() -> None:
    with pytest.raises(DeliveryError) as failure:
        asyncio.run(WebchatChannel().send("telegram:12345", OutboundMessage("x", "hi")))
    assert failure.value.permanent


def test_a_malformed_frame_gets_a_reason_and_the_socket_stays_open(client: TestClient, sink: RecordingSink) -> None:
    with client.websocket_connect(socket_url(new_session())) as socket:
        socket.receive_json()
        socket.send_text("not json")
        assert "invalid frame" in socket.receive_json()["reason"]
        socket.send_json({"type": "message", "message_id": "1", "text": "hi"})
        assert "message_id" in socket.receive_json()["reason"]
        message_id = say(socket, "   ")
        assert socket.receive_json() == {"type": "typing", "active": True}
        assert socket.receive_json() == {"type": "typing", "active": False}
        assert socket.receive_json() == {"type": "error", "reason": "message is empty", "message_id": message_id}
        say(socket, "when does my card come?")
        assert frames_until_ack(socket)[-1]["type"] == "ack"
    assert [m.text for m in sink.received] == ["   ", "when does my card come?"]


def test_a_binary_frame_gets_a_reason_and_the_conversation_goes_on(client: TestClient, sink: RecordingSink) -> None:
    with client.websocket_connect(socket_url(new_session())) as socket:
        socket.receive_json()
        socket.send_bytes(b'{"type": "message"}\x00\xff')
        error = socket.receive_json()
        assert error["type"] == "error" and "binary frames are not accepted" in error["reason"]
        say(socket, "when does my card come?")
        assert frames_until_ack(socket)[-1]["type"] == "ack"
    assert [m.text for m in sink.received] == ["when does my card come?"]


@pytest.mark.parametrize("session", ["", "customer-42", str(uuid.uuid4()).upper(), "../../etc"])
def test_a_session_that_is_not_a_uuid_is_refused_with_400(client: TestClient, session: str) -> None:
    with pytest.raises(WebSocketDenialResponse) as refused:
        client.websocket_connect(socket_url(session)).__enter__()
    assert refused.value.status_code == 400
    assert "UUID" in refused.value.json()["error"]


@pytest.mark.parametrize(
    ("allowed", "origin", "admitted"),
    [
        (None, "http://testserver", True),  # the server's own pages
        (None, "http://localhost:8000", True),
        (None, "http://127.0.0.1:3000", True),
        (None, "https://evil.example.net", False),
        (["https://shop.example.com"], "https://shop.example.com", True),
        (["https://shop.example.com"], "http://shop.example.com", False),
        (["https://shop.example.com"], "http://localhost:8000", False),
        (["*"], "https://anywhere.example.org", True),
    ],
)
def test_only_allowed_origins_may_open_the_socket(
    sink: RecordingSink, store: ConversationStore, allowed: list[str] | None, origin: str, admitted: bool
) -> None:
    with chat_client(WebchatChannel(allowed), sink, store) as client:
        connect = client.websocket_connect(socket_url(new_session()), headers={"Origin": origin})
        if admitted:
            with connect as socket:
                assert socket.receive_json()["type"] == "history"
        else:
            with pytest.raises(WebSocketDenialResponse) as refused:
                connect.__enter__()
            assert refused.value.status_code == 403
            assert "webchat.allowed_origins" in refused.value.json()["error"]


def test_the_registry_builds_the_channel_from_its_credentials_block() -> None:
    channel = connector_class("webchat").from_credentials(
        {"allowed_origins": ["https://Shop.example.com", "http://localhost:8080"]}
    )
    assert isinstance(channel, WebchatChannel)
    assert channel.allowed_origins == {"https://shop.example.com", "http://localhost:8080"}
    assert connector_class("webchat").from_credentials({}).allowed_origins is None


@pytest.mark.parametrize(
    ("settings", "problem"),
    [
        ({"allowed_origin": ["https://shop.example.com"]}, "webchat.allowed_origin: unknown key"),
        ({"allowed_origins": "https://shop.example.com"}, "webchat.allowed_origins: must be a list"),
        ({"allowed_origins": ["https://shop.example.com", "shop.example.com"]}, "webchat.allowed_origins[1]"),
        ({"allowed_origins": ["https://shop.example.com/help"]}, "webchat.allowed_origins[0]"),
    ],
)
def test_credentials_errors_name_the_key(settings: dict[str, Any], problem: str) -> None:
    with pytest.raises(CredentialsError, match=problem.replace("[", r"\[").replace("]", r"\]")):
        WebchatChannel.from_credentials(settings)


def test_a_widget_that_went_away_does_not_fail_delivery(sink: RecordingSink, store: ConversationStore) -> None:
    channel = WebchatChannel()
    session = new_session()
    with chat_client(channel, sink, store) as client:
        with client.websocket_connect(socket_url(session)) as socket:
            socket.receive_json()
        assert client.portal is not None
        client.portal.call(channel.send, f"webchat:{session}", OutboundMessage("x", "Are you there?"))
        with client.websocket_connect(socket_url(session)) as socket:
            assert socket.receive_json()["type"] == "history"


def test_a_bad_origin_in_credentials_yml_names_the_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text(
        "rest:\nwebchat:\n  allowed_origins:\n    - https://shop.example.com\n    - shop.example.com/help\n",
        encoding="utf-8",
    )
    with pytest.raises(
        ProjectFileError,
        match=r"credentials\.yml:2: webchat\.allowed_origins\[1\]: "
        r"'shop\.example\.com/help' is not an origin",
    ):
        build_channels(load_credentials(path, root=tmp_path))
