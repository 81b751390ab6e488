"""The web chat widget channel: one script tag on any page, one websocket per browser tab.

The widget keeps a session id (a UUID) in the page's localStorage and connects to
`/webhooks/webchat/ws?session=<uuid>`. Frames are JSON text:

- widget → server: `{"type": "message", "message_id": <uuid>, "text": str}` (a button press sends
  the button's payload as `text`);
- server → widget: `history` (`messages`: the conversation so far) on connect, then `message`
  (`role` customer | bot | agent, `text`, `buttons`, `source`, `name`, `message_id`), `typing`
  (`active`), `ack` (`message_id`, once the bot has processed it) and `error` (`reason`).

The conversation's stored events are the delivery record: `send` pushes to the session's open
sockets and succeeds when there are none, because the widget replays the history when it
reconnects. A widget's socket lives in the process that accepted it; with several server
processes, `attach_peers` makes every frame reach the session's sockets in the others too.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable, Mapping
from importlib.resources import files
from typing import Any, ClassVar, Literal, Protocol

from fastapi import APIRouter, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from crowddesk.connectors.base import ChannelConnector, DeliveryError, MessageSink, reject_unknown_keys
from crowddesk.connectors.origins import SETTING as ORIGINS_SETTING
from crowddesk.connectors.origins import origin_allowed, read_allowed_origins
from crowddesk.connectors.types import InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)

CHANNEL_NAME = "webchat"
SOCKET_PATH = "/webhooks/webchat/ws"
UUID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$"
SESSION_ID = re.compile(UUID_PATTERN)
SENDER_PREFIX = f"{CHANNEL_NAME}:"
SETTINGS_KEYS = (ORIGINS_SETTING,)
ASSETS = {"widget.js": ("webchat.js", "text/javascript"), "widget.css": ("webchat.css", "text/css")}
ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-cache",
    # Third-party pages load these files; let pages that isolate themselves (COEP) do so too.
    "Cross-Origin-Resource-Policy": "cross-origin",
}
KB_SOURCE_SUFFIX = "\n\nSource: {}"
BINARY_FRAME = 'binary frames are not accepted; send JSON text: {"type": "message", "message_id", "text"}'


class ConversationHistory(Protocol):
    """Where the widget's history comes from (`crowddesk.bot.conversations.store.ConversationStore`)."""

    def events(self, sender_id: str) -> list[dict[str, Any]]: ...


class PeerPushes(Protocol):
    """Frames to and from the other server processes (`crowddesk.bot.cluster.peer_pushes`)."""

    async def publish(self, sender_id: str, frame: dict[str, Any]) -> None: ...

    async def follow(self, sender_id: str) -> None:
        """Hear what other processes publish for `sender_id` (a widget of it opened here)."""

    async def unfollow(self, sender_id: str) -> None: ...


class ChatFrame(BaseModel):
    """One customer message from the widget."""

    type: Literal["message"]
    message_id: str = Field(pattern=UUID_PATTERN, description="a UUID made by the widget")
    text: str


class _Socket:
    """One open widget; sends are serialised because replies and agent messages race."""

    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def push(self, frame: dict[str, Any]) -> bool:
        """Send one frame; False when the widget has gone away."""
        async with self._lock:
            try:
                await self.websocket.send_json(frame)
            except (WebSocketDisconnect, WebSocketDisconnected):
                return False
        return True


class WebchatChannel(ChannelConnector):
    """Serves the widget's files and its websocket, and pushes messages to open widgets."""

    name: ClassVar[str] = CHANNEL_NAME
    replies_inline: ClassVar[bool] = True
    max_messages_per_second: ClassVar[float] = 100.0

    def __init__(self, allowed_origins: Iterable[str] | None = None) -> None:
        """`allowed_origins`: pages on other origins that may open the socket (`*`: any);
        None allows any localhost port. The server's own origin is always allowed."""
        self.allowed_origins = None if allowed_origins is None else frozenset(allowed_origins)
        self._sockets: dict[str, set[_Socket]] = {}
        self._peers: PeerPushes | None = None

    def attach_peers(self, peers: PeerPushes) -> None:
        """Share frames with the other server processes from now on (the server does at start)."""
        self._peers = peers

    async def push_local(self, sender_id: str, frame: dict[str, Any]) -> None:
        """Push a frame another process published to this process's sockets of `sender_id`."""
        await self._push_here(sender_id, frame, skip=None)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> WebchatChannel:
        reject_unknown_keys(CHANNEL_NAME, settings, SETTINGS_KEYS)
        return cls(read_allowed_origins(CHANNEL_NAME, settings))

    def router(self, sink: MessageSink) -> APIRouter:
        router = APIRouter(include_in_schema=False)

        @router.get("/webchat/{name}")
        async def widget_asset(name: str) -> Response:
            if name not in ASSETS:
                return JSONResponse({"error": f"no widget file {name!r}"}, status_code=404)
            filename, media_type = ASSETS[name]
            body = files("crowddesk.connectors").joinpath("static", filename).read_bytes()
            return Response(body, media_type=media_type, headers=ASSET_HEADERS)

        @router.websocket(SOCKET_PATH)
        async def widget_socket(websocket: WebSocket, session: str = "") -> None:
            refusal = self._refusal(websocket, session)
            if refusal is not None:
                await websocket.send_denial_response(JSONResponse({"error": refusal[1]}, refusal[0]))
                return
            await self._serve(websocket, SENDER_PREFIX + session, sink)

        return router

    def open_sessions(self) -> int:
        return sum(len(sockets) for sockets in self._sockets.values())

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """Push to the recipient's open widgets; with none open this still succeeds, since the
        message is in the conversation's history, which the widget shows when it reconnects."""
        if not recipient_id.startswith(SENDER_PREFIX):
            raise DeliveryError(f"{recipient_id!r} is not a web chat session", permanent=True)
        await self._broadcast(recipient_id, outbound_frame(message), required=True)

    def _refusal(self, websocket: WebSocket, session: str) -> tuple[int, str] | None:
        """Why this handshake is refused, as (HTTP status, reason), or None to accept it."""
        if not SESSION_ID.match(session):
            return 400, "session must be a lowercase version-4 UUID"
        origin = websocket.headers.get("origin")
        # Browsers always send Origin on a websocket handshake; its absence means a non-browser
        # client, which could forge the header anyway.
        if origin is not None and not origin_allowed(origin, websocket.headers.get("host"), self.allowed_origins):
            return 403, f"origin {origin} may not use this chat; add it to webchat.allowed_origins"
        return None

    async def _serve(self, websocket: WebSocket, sender_id: str, sink: MessageSink) -> None:
        await websocket.accept()
        socket = _Socket(websocket)
        # Registered before the history is read, so nothing stored meanwhile is missed; the
        # widget drops a live message that the history already showed.
        self._sockets.setdefault(sender_id, set()).add(socket)
        if self._peers is not None:
            await self._peers.follow(sender_id)
        try:
            events = await asyncio.to_thread(_conversation_history(websocket).events, sender_id)
            await socket.push({"type": "history", "messages": history_frames(events)})
            while True:
                raw = await _next_frame(websocket)
                if raw is None:
                    await socket.push({"type": "error", "reason": BINARY_FRAME})
                else:
                    await self._receive(socket, sender_id, raw, sink)
        except (WebSocketDisconnect, WebSocketDisconnected):
            pass
        finally:
            self._forget(sender_id, socket)
            if self._peers is not None and sender_id not in self._sockets:
                await self._peers.unfollow(sender_id)

    async def _receive(self, socket: _Socket, sender_id: str, raw: str, sink: MessageSink) -> None:
        try:
            frame = ChatFrame.model_validate_json(raw)
        except ValidationError as exc:
            await socket.push({"type": "error", "reason": _frame_problem(exc)})
            return
        session = sender_id.removeprefix(SENDER_PREFIX)
        await self._broadcast(sender_id, customer_frame(frame.text, frame.message_id), skip=socket)
        await self._broadcast(sender_id, {"type": "typing", "active": True})
        replies: list[OutboundMessage] = []
        problem = None
        try:
            # Scoped by session: a widget picks its own ids, so one must never shadow another's.
            replies = await sink(
                InboundMessage(CHANNEL_NAME, sender_id, frame.text, message_id=f"{session}:{frame.message_id}")
            )
        except ValueError as exc:  # the engine's MessageRejected: empty, too long
            problem = str(exc)
        except Exception:
            logger.exception("web chat message %s could not be processed", frame.message_id)
            problem = "the message could not be processed; please send it again"
        for reply in replies:
            await self._broadcast(sender_id, outbound_frame(reply))
        await self._broadcast(sender_id, {"type": "typing", "active": False})
        if problem is None:
            await socket.push({"type": "ack", "message_id": frame.message_id})
        else:
            await socket.push({"type": "error", "reason": problem, "message_id": frame.message_id})

    async def _broadcast(
        self, sender_id: str, frame: dict[str, Any], skip: _Socket | None = None, *, required: bool = False
    ) -> None:
        """Push to the session's sockets in the other processes, then here. A frame the others
        miss is in the history their widgets read when they reconnect; a `required` one (an
        agent's message, sent again by the outbox) fails instead, before any socket saw it."""
        if self._peers is not None:
            try:
                await self._peers.publish(sender_id, frame)
            except Exception as error:
                if required:
                    raise DeliveryError(f"could not reach the other server processes: {error}") from error
                logger.warning("a web chat frame for %s reached this process's sockets only", sender_id, exc_info=True)
        await self._push_here(sender_id, frame, skip)

    async def _push_here(self, sender_id: str, frame: dict[str, Any], skip: _Socket | None) -> None:
        for socket in list(self._sockets.get(sender_id, ())):
            if socket is not skip and not await socket.push(frame):
                self._forget(sender_id, socket)

    def _forget(self, sender_id: str, socket: _Socket) -> None:
        sockets = self._sockets.get(sender_id, set())
        sockets.discard(socket)
        if not sockets:
            self._sockets.pop(sender_id, None)


async def _next_frame(websocket: WebSocket) -> str | None:
    """The next text frame's text, or None for a binary frame (the widget never sends one)."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    return text if isinstance(text, str) else None


def _conversation_history(websocket: WebSocket) -> ConversationHistory:
    """The conversation store `crowddesk run` puts on the app's state."""
    try:
        return websocket.app.state.conversations
    except AttributeError:
        raise RuntimeError("the web chat needs app.state.conversations (a ConversationStore) for its history") from None


def _frame_problem(exc: ValidationError) -> str:
    problems = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'frame'}: {e['msg']}" for e in exc.errors())
    return f'invalid frame ({problems}); expected {{"type": "message", "message_id", "text"}}'


def customer_frame(text: str, message_id: str | None) -> dict[str, Any]:
    """The widget's shape for one of the customer's messages."""
    return {
        "type": "message",
        "role": "customer",
        "text": text,
        "buttons": [],
        "source": None,
        "name": None,
        "message_id": message_id,
    }


def reply_frame(text: str, buttons: Iterable[Mapping[str, str]], custom: Mapping[str, Any]) -> dict[str, Any]:
    """The widget's shape for a bot's or an agent's (`custom.agent_name`) message; a KB
    answer's source becomes a link instead of the text's last line."""
    source = custom.get("source_url")
    if source:
        text = text.removesuffix(KB_SOURCE_SUFFIX.format(source))
    name = custom.get("agent_name")
    return {
        "type": "message",
        "role": "agent" if name else "bot",
        "text": text,
        "buttons": [{"title": b["title"], "payload": b["payload"]} for b in buttons],
        "source": source,
        "name": name,
        "message_id": None,
    }


def outbound_frame(message: OutboundMessage) -> dict[str, Any]:
    return reply_frame(message.text, [b.as_dict() for b in message.buttons], message.custom)


def history_frames(events: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The customer-visible messages of a conversation's stored events, oldest first.

    A button press is stored as its payload; it is shown by the title of the button pressed."""
    frames: list[dict[str, Any]] = []
    titles: dict[str, str] = {}
    for event in events:
        if event["event"] == "user":
            text = str(event.get("text") or "")
            message_id = str(event.get("message_id") or "").partition(":")[2] or None
            frames.append(customer_frame(titles.get(text, text), message_id))
        elif event["event"] == "bot":
            data = event.get("data") or {}
            agent_name = (event.get("metadata") or {}).get("agent_name")
            frame = reply_frame(
                str(event.get("text") or ""),
                data.get("buttons") or (),
                {**(data.get("custom") or {}), "agent_name": agent_name},
            )
            titles = {b["payload"]: b["title"] for b in frame["buttons"]}
            frames.append(frame)
    return frames
