"""Slack through slack-bolt: Events API (or Socket Mode) in, chat.postMessage with Block Kit out.

A conversation is one Slack user in one Slack conversation: the sender id is
`slack:<conversation id>:<user id>` (`slack:D…:U…` for a direct message, `slack:C…:U…` for an
@mention in a channel), which is also where `send` posts. Inbound requests are acknowledged as soon as the
signature checks out and processed in a task afterwards, because Slack retries any event it
has not seen answered within three seconds; the message id is the event id (the gateway drops
the retries) or, for a button press, the interaction's trigger id.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import aiohttp
from fastapi import APIRouter, Request, Response
from slack_bolt.adapter.fastapi.async_handler import AsyncSlackRequestHandler
from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
)
from crowddesk.connectors.slack_blocks import BUTTON_ACTION_PREFIX, render, unformat
from crowddesk.connectors.types import InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)

CHANNEL_NAME = "slack"
EVENTS_PATH = "/webhooks/slack/events"
INTERACTIVE_PATH = "/webhooks/slack/interactive"
DEFAULT_BASE_URL = "https://slack.com/api/"

# Slack's error codes after which a retry cannot succeed: the conversation is gone or closed
# to the bot, or the message itself is unacceptable. Others (ratelimited, internal_error,
# invalid_auth while a token is being fixed, ...) are worth retrying.
PERMANENT_ERRORS = frozenset(
    {
        "channel_not_found",
        "not_in_channel",
        "account_inactive",
        "is_archived",
        "user_not_found",
        "user_disabled",
        "cannot_dm_bot",
        "invalid_blocks",
        "msg_too_long",
        "no_text",
        "restricted_action",
        "team_access_not_granted",
    }
)


@dataclass(frozen=True)
class SlackSettings:
    """The `slack:` block of credentials.yml."""

    slack_token: str = field(repr=False)
    slack_signing_secret: str = field(default="", repr=False)
    socket_mode: bool = False
    slack_app_token: str = field(default="", repr=False)
    desk_channel: str | None = None
    base_url: str = DEFAULT_BASE_URL

    @classmethod
    def parse(cls, settings: Mapping[str, Any]) -> SlackSettings:
        """Validate the block; errors name the key and never repeat a secret."""
        reject_unknown_keys(CHANNEL_NAME, settings, cls.__dataclass_fields__)
        socket_mode = _boolean(settings.get("socket_mode", False), "socket_mode")
        token = _text(settings, "slack_token", required="(the bot token, xoxb-)")
        app_token = _text(settings, "slack_app_token", required="when socket_mode is true" if socket_mode else None)
        if token.startswith("xapp-"):
            raise CredentialsError(
                "slack.slack_token: this is an app-level token (xapp-); "
                "use the bot token (xoxb-) here and the app token as slack_app_token"
            )
        if socket_mode and not app_token.startswith("xapp-"):
            raise CredentialsError("slack.slack_app_token: Socket Mode needs an app-level token (it starts with xapp-)")
        base_url = _text(settings, "base_url") or DEFAULT_BASE_URL
        return cls(
            slack_token=token,
            slack_signing_secret=_text(
                settings, "slack_signing_secret", required=None if socket_mode else "unless socket_mode is true"
            ),
            socket_mode=socket_mode,
            slack_app_token=app_token,
            desk_channel=_text(settings, "desk_channel") or None,
            # slack_sdk joins method names onto it, so it must end with a slash.
            base_url=base_url if base_url.endswith("/") else base_url + "/",
        )


def _text(settings: Mapping[str, Any], key: str, *, required: str | None = None) -> str:
    """The string at `key`; `required` says when it must be there, for the error message."""
    value = settings.get(key)
    if value is None or value == "":
        if required:
            raise CredentialsError(f"slack.{key}: missing; it is required {required}")
        return ""
    if not isinstance(value, str):
        raise CredentialsError(f"slack.{key}: must be a string, not {type(value).__name__}")
    return value.strip()


def _boolean(value: Any, key: str) -> bool:
    # An ${ENV_VAR} always expands to text, so "true"/"false" count as booleans too.
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise CredentialsError(f"slack.{key}: must be true or false")


def sender_id(conversation: str, user: str) -> str:
    return f"{CHANNEL_NAME}:{conversation}:{user}"


def parse_sender(sender: str) -> tuple[str, str]:
    """The Slack conversation and user ids in a sender id made by `sender_id`."""
    _, conversation, user = sender.split(":", 2)
    return conversation, user


def delivery_error(exc: SlackApiError) -> DeliveryError:
    """What a refused Web API call means for the outbox: wait, retry, or give up."""
    status = exc.response.status_code
    data = exc.response.data
    error = str(data.get("error", "")) if isinstance(data, dict) else ""
    if status == 429:
        retry_after = exc.response.headers.get("Retry-After")  # aiohttp's headers ignore case
        return DeliveryError(
            f"Slack rate limit ({error or 'HTTP 429'})", retry_after=float(retry_after) if retry_after else None
        )
    if status >= 500:
        return DeliveryError(f"Slack answered HTTP {status}")
    return DeliveryError(f"Slack refused the message: {error or f'HTTP {status}'}", permanent=error in PERMANENT_ERRORS)


class SlackChannel(ChannelConnector):
    """Slack direct messages and @mentions, answered with Block Kit; buttons come back as
    interactivity payloads. `app` is the bolt app, for the Slack desk to add its listeners to."""

    name: ClassVar[str] = CHANNEL_NAME
    # Slack allows about one message per second into one conversation, with short bursts, and
    # publishes no workspace-wide figure; 429s beyond that are retried after Retry-After.
    max_messages_per_second: ClassVar[float] = 10.0

    def __init__(self, settings: SlackSettings) -> None:
        self.settings = settings
        self.desk_channel = settings.desk_channel
        self.client = AsyncWebClient(token=settings.slack_token, base_url=settings.base_url)
        self.app = AsyncApp(
            client=self.client,
            signing_secret=settings.slack_signing_secret,
            # Listeners only start a task and return, so Slack is answered at once either way;
            # running them before the response keeps bolt from spawning untracked tasks.
            process_before_response=True,
            name="crowddesk",
        )
        self._sink: MessageSink | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._socket: AsyncSocketModeHandler | None = None
        self.app.event("message", matchers=[self._outside_desk])(self._on_message)
        self.app.event("app_mention")(self._on_mention)
        self.app.action(re.compile(f"^{BUTTON_ACTION_PREFIX}\\d+$"))(self._on_button)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> SlackChannel:
        return cls(SlackSettings.parse(settings))

    # -- inbound --------------------------------------------------------------------------

    def router(self, sink: MessageSink) -> APIRouter | None:
        """POST /webhooks/slack/events (Event Subscriptions) and /webhooks/slack/interactive
        (Interactivity); none in Socket Mode. Forged or stale signatures get 401."""
        self._sink = sink
        if self.settings.socket_mode:
            return None
        handler = AsyncSlackRequestHandler(self.app)
        router = APIRouter(tags=["channels"])

        async def endpoint(request: Request) -> Response:
            return await handler.handle(request)

        for path, summary in (
            (EVENTS_PATH, "Slack Events API (signed)"),
            (INTERACTIVE_PATH, "Slack interactivity: button presses (signed)"),
        ):
            router.add_api_route(path, endpoint, methods=["POST"], summary=summary)
        return router

    async def start(self, sink: MessageSink) -> None:
        """In Socket Mode, open the websocket to Slack; over HTTP there is nothing to start."""
        self._sink = sink
        if self.settings.socket_mode:
            self._socket = AsyncSocketModeHandler(self.app, self.settings.slack_app_token)
            await self._socket.connect_async()

    async def stop(self) -> None:
        """Close Socket Mode and let messages already acknowledged finish processing."""
        if self._socket is not None:
            await self._socket.close_async()
            self._socket = None
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    def spawn(self, work: Awaitable[object], what: str) -> None:
        """Run `work` after Slack has been answered; failures are logged, `stop` waits for it."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("Slack: %s failed", what)

        task = asyncio.get_running_loop().create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _deliver(self, message: InboundMessage) -> None:
        if self._sink is None:
            raise RuntimeError("SlackChannel received a message before router() or start()")
        self.spawn(self._sink(message), f"message {message.message_id}")

    async def _outside_desk(self, event: dict[str, Any]) -> bool:
        return event.get("channel") != self.desk_channel

    async def _on_message(self, body: dict[str, Any], event: dict[str, Any]) -> None:
        # Only a person's own new text in a direct message; edits, joins and other bots'
        # posts are acknowledged and dropped. Channel messages arrive as app_mention instead.
        if event.get("channel_type") != "im" or event.get("subtype") or event.get("bot_id"):
            return
        self._on_text(body, event, str(event.get("text") or ""))

    async def _on_mention(self, body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext) -> None:
        if event.get("bot_id") or event.get("channel") == self.desk_channel:
            return
        text = str(event.get("text") or "").replace(f"<@{context.bot_user_id}>", "")
        self._on_text(body, event, text)

    def _on_text(self, body: dict[str, Any], event: dict[str, Any], text: str) -> None:
        text = unformat(text).strip()
        if not text or not event.get("user"):
            return
        self._deliver(
            InboundMessage(
                CHANNEL_NAME,
                sender_id(event["channel"], event["user"]),
                text,
                message_id=str(body["event_id"]),
                metadata={
                    "team_id": body.get("team_id"),
                    "channel_id": event["channel"],
                    "user_id": event["user"],
                    "ts": event.get("ts"),
                },
            )
        )

    async def _on_button(self, ack: AsyncAck, body: dict[str, Any], action: dict[str, Any]) -> None:
        await ack()
        channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id")
        user = (body.get("user") or {}).get("id")
        if not channel or not user or not action.get("value"):
            return
        self._deliver(
            InboundMessage(
                CHANNEL_NAME,
                sender_id(channel, user),
                str(action["value"]),
                message_id=str(body.get("trigger_id") or action.get("action_ts")),
                metadata={
                    "team_id": (body.get("team") or {}).get("id"),
                    "channel_id": channel,
                    "user_id": user,
                    "button": action.get("action_id"),
                },
            )
        )

    # -- outbound -------------------------------------------------------------------------

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """chat.postMessage to the customer's conversation; in a shared channel the reply
        mentions them, since others read along."""
        conversation, user = parse_sender(recipient_id)
        prefix = "" if conversation.startswith("D") else f"<@{user}> "
        text, blocks = render(message, prefix=prefix)
        await self.post(channel=conversation, text=text, blocks=blocks)

    async def post(self, **arguments: Any) -> dict[str, Any]:
        """chat.postMessage with Slack's refusals turned into `DeliveryError`s; returns the
        response (`channel`, `ts`)."""
        try:
            response = await self.client.chat_postMessage(**arguments)
        except SlackApiError as exc:
            raise delivery_error(exc) from exc
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise DeliveryError(f"Slack unreachable: {type(exc).__name__}: {exc}") from exc
        return dict(response.data) if isinstance(response.data, dict) else {}
