"""Facebook Messenger and Instagram Direct: Meta's signed messaging webhook in, the Graph API's
Send API out; comments on the Page's posts and the account's media arrive on the same webhook
(`crowddesk.connectors.meta.comments`).

Both platforms post `entry[].messaging[]` events to a webhook and take messages at
POST /{version}/me/messages, so one class serves both and a subclass per platform sets its name,
webhook `object` and text limit. Instagram is set up the Page-linked way ("Messenger API for
Instagram"): the professional account is linked to a Facebook Page and the Page's access token
sends to graph.facebook.com. The Send API is one JSON POST, so plain httpx does it;
`python-facebook-api` would only wrap that call.

Text, quick-reply and postback events become `InboundMessage`s whose `message_id` is Meta's `mid`,
so a delivery Meta repeats is processed once by the gateway; sender ids are `messenger:<PSID>`
and `instagram:<IGSID>` (a Messenger customer first reached by a private reply to their comment
continues that comment's conversation). Echoes of the Page's own messages, deliveries and reads
are ignored.
Replies go out as RESPONSE within 24 hours of the customer's last message; after that only a desk
agent's, tagged HUMAN_AGENT, for 7 days (`crowddesk.connectors.reply_window`).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
    text_settings,
)
from crowddesk.connectors.meta.comments import FACEBOOK, INSTAGRAM, CommentPlatform, Comments
from crowddesk.connectors.meta.webhooks import (
    GRAPH_API_URL,
    SIGNATURE_HEADER,
    check_api_url,
    check_signature,
    subscription_challenge,
)
from crowddesk.connectors.numbered_buttons import chosen_payload, numbered_text
from crowddesk.connectors.reply_window import HUMAN_AGENT_WINDOW, ReplyWindow, WindowState
from crowddesk.connectors.segments import split_text
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage

DEFAULT_API_VERSION = "v25.0"
_API_VERSION = re.compile(r"^v\d+\.\d+$")
_REQUIRED_KEYS = ("page_access_token", "app_secret", "verify_token")
# Meta shows at most 13 quick replies and cuts titles after 20 characters; more buttons become a
# numbered list, and titles are shortened here so the customer sees where they were cut.
MAX_QUICK_REPLIES = 13
MAX_QUICK_REPLY_TITLE = 20
# Below the outbox's send timeout, so a hung request ends before the outbox gives up on it.
REQUEST_TIMEOUT_SECONDS = 20.0
# Graph error codes worth retrying: 1 and 2 are Meta's temporary faults; 190 an expired or
# revoked token, which an operator can renew while the messages wait (as Twilio's 401); 4, 17,
# 32 and 613 the app, user, Page and per-call rate limits. Every other refusal (10 and 2018278
# outside the window, 551 person unavailable, 100 bad parameter) fails the same way again.
_TEMPORARY_CODES = frozenset({1, 2, 190})
_RATE_LIMIT_CODES = frozenset({4, 17, 32, 613})


@dataclass(frozen=True)
class MetaSettings:
    """A `messenger:` or `instagram:` block of credentials.yml, validated."""

    page_access_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    api_url: str = GRAPH_API_URL
    api_version: str = DEFAULT_API_VERSION

    @classmethod
    def parse(cls, channel: str, block: Mapping[str, Any]) -> MetaSettings:
        """Check every key; a `CredentialsError` names the first one that is wrong."""
        reject_unknown_keys(channel, block, cls.__dataclass_fields__)
        values = text_settings(channel, block)
        for key in _REQUIRED_KEYS:
            if key not in values:
                raise CredentialsError(f"{channel}.{key}: missing; see your Meta app's dashboard")
        if not _API_VERSION.match(values.get("api_version", DEFAULT_API_VERSION)):
            raise CredentialsError(f"{channel}.api_version: expected a Graph API version such as {DEFAULT_API_VERSION}")
        check_api_url(channel, values)
        return cls(**values)

    def graph_url(self, path: str) -> str:
        return f"{self.api_url.rstrip('/')}/{self.api_version}/{path}"


class MetaMessagingChannel(ChannelConnector):
    """What Messenger and Instagram share; subclasses set `name`, `platform`, `webhook_object`,
    `max_text_characters` and `comment_platform`."""

    platform: ClassVar[str]
    """The platform's name as customers and agents know it."""
    webhook_object: ClassVar[str]
    """The `object` of the platform's webhook deliveries."""
    max_text_characters: ClassVar[int]
    comment_platform: ClassVar[CommentPlatform]
    """Where the account's public comments arrive and how they are answered."""
    window: ClassVar[ReplyWindow] = ReplyWindow(agent_open_for=HUMAN_AGENT_WINDOW)
    # The Send API takes 300 text messages a second per Page or Instagram account; staying
    # below leaves room for other apps on the same Page and for image messages.
    max_messages_per_second: ClassVar[float] = 200.0

    def __init__(self, settings: MetaSettings) -> None:
        self.settings = settings
        # The token goes in a header, never the URL, which httpx logs.
        self._client = httpx.AsyncClient(
            headers={"Authorization": f"Bearer {settings.page_access_token}"}, timeout=REQUEST_TIMEOUT_SECONDS
        )
        self._comments = Comments(self.comment_platform, self.name, self)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> MetaMessagingChannel:
        """Build from this channel's block of credentials.yml."""
        return cls(MetaSettings.parse(cls.name, settings))

    @classmethod
    def webhook_path(cls) -> str:
        return f"/webhooks/{cls.name}/webhook"

    @property
    def sender_prefix(self) -> str:
        return f"{self.name}:"

    def router(self, sink: MessageSink) -> APIRouter:
        """GET and POST /webhooks/<name>/webhook: the subscription check, then signed events."""
        router = APIRouter(tags=["channels"])
        path = self.webhook_path()

        @router.get(
            path,
            summary=f"{self.platform} webhook verification (hub.challenge)",
            response_class=PlainTextResponse,
            responses={400: {"description": "not a subscription"}, 403: {"description": "wrong verify token"}},
        )
        async def verify(request: Request) -> Response:
            return subscription_challenge(request.query_params, self.settings.verify_token)

        @router.post(
            path,
            summary=f"{self.platform} messaging and comments webhook (signed with {SIGNATURE_HEADER})",
            response_class=PlainTextResponse,
            responses={400: {"description": "not a messaging webhook"}, 403: {"description": "bad signature"}},
        )
        async def webhook(request: Request) -> Response:
            body = await request.body()
            check_signature(body, request.headers.get(SIGNATURE_HEADER), self.settings.app_secret)
            # Every event is read before any is handled: a malformed one refuses the delivery whole.
            for inbound in await self._inbound(body):
                await sink(inbound)
            return PlainTextResponse("EVENT_RECEIVED")

        return router

    async def stop(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    def refusal(self, message: OutboundMessage, now: float) -> str | None:
        """The reason once the reply window has closed for `message` (24 hours, or 7 days for a
        desk agent's) or for a commenter a private message cannot reach yet; None while it may go."""
        unreachable = self._comments.refusal(message)
        if unreachable is not None:
            return unreachable
        if self.window.state(message, now) is WindowState.CLOSED:
            return self.window.closed_reason(self.platform, message, now)
        return None

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """One Send API call per text part and one for the image; the last carries the quick
        replies. Past the 24-hour window an agent's message is tagged HUMAN_AGENT. A reply to a
        comment goes under it or as its private reply."""
        if message.public_post is not None:
            await self._comments.reply(recipient_id, message)
            return
        now = time.time()
        state = self.window.state(message, now)
        if state is WindowState.CLOSED:
            raise DeliveryError(self.window.closed_reason(self.platform, message, now), permanent=True)
        envelope: dict[str, Any] = {"recipient": {"id": await self._comments.messaging_id(message)}}
        if state is WindowState.HUMAN_AGENT:
            envelope.update(messaging_type="MESSAGE_TAG", tag="HUMAN_AGENT")
        else:
            envelope["messaging_type"] = "RESPONSE"
        for content in await self.message_contents(recipient_id, message):
            await self.graph_post("me/messages", {**envelope, "message": content})

    async def message_contents(self, recipient_id: str, message: OutboundMessage) -> list[dict[str, Any]]:
        """The `message` objects of the Send API calls `message` takes, in order."""
        quick = bool(message.text.strip() or message.image) and len(message.buttons) <= MAX_QUICK_REPLIES
        # Shown as quick replies, the buttons are left out of the text; rendering without them
        # also forgets a numbered list offered earlier, which a typed digit must no longer pick.
        text = await numbered_text(self.memory, recipient_id, replace(message, buttons=()) if quick else message)
        contents: list[dict[str, Any]] = [{"text": part} for part in split_text(text, self.max_text_characters)]
        if message.image:
            contents.append({"attachment": {"type": "image", "payload": {"url": message.image}}})
        if quick and message.buttons:
            # Quick replies show only under the newest message, so they ride on the last one.
            contents[-1]["quick_replies"] = [_quick_reply(button) for button in message.buttons]
        return contents

    async def graph_post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `body` to the Graph API's `path`; its JSON answer. Meta's refusals become
        `DeliveryError`s, retryable or not by Graph's error code."""
        try:
            response = await self._client.post(self.settings.graph_url(path), json=body)
        except httpx.HTTPError as exc:
            # Network errors and timeouts: the outbox retries.
            raise DeliveryError(f"{self.platform} could not be reached: {type(exc).__name__}: {exc}") from exc
        if response.is_success:
            answer = _json(response)
            return answer if isinstance(answer, dict) else {}
        error = _graph_error(response)
        code = error.get("code")
        subcode = f"/{error['error_subcode']}" if "error_subcode" in error else ""
        retryable = response.status_code == 429 or response.status_code >= 500
        retryable = retryable or code in _TEMPORARY_CODES or code in _RATE_LIMIT_CODES
        # Meta's own message and codes; the token is in a header and never part of them.
        raise DeliveryError(
            f"{self.platform} refused the message: HTTP {response.status_code}, error {code}{subcode}: "
            f"{error.get('message', response.reason_phrase)}",
            permanent=not retryable,
        )

    async def _inbound(self, body: bytes) -> list[InboundMessage]:
        """The customer messages of one webhook delivery, oldest first."""
        try:
            delivery = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"request body is not valid JSON ({exc})") from exc
        if (
            not isinstance(delivery, dict)
            or delivery.get("object") != self.webhook_object
            or not isinstance(delivery.get("entry"), list)
        ):
            raise HTTPException(
                400, f'not a {self.platform} webhook: expected object "{self.webhook_object}" with an entry list'
            )
        entries = [entry for entry in delivery["entry"] if isinstance(entry, dict)]
        events = [event for entry in entries for event in entry.get("messaging") or () if isinstance(event, dict)]
        messages = [message for event in events if (message := await self._message(event)) is not None]
        return messages + [comment for entry in entries for comment in await self._comments.inbound(entry)]

    async def _message(self, event: Mapping[str, Any]) -> InboundMessage | None:
        """The customer message in one `messaging` event; None for echoes, deliveries, reads,
        reactions and messages without text (a photo)."""
        message, postback = event.get("message"), event.get("postback")
        typed: str | None = None  # text the customer typed, which may answer a numbered list
        if isinstance(message, dict) and not message.get("is_echo"):
            quick_reply = message.get("quick_reply")
            payload = quick_reply.get("payload") if isinstance(quick_reply, dict) else None
            typed = None if payload else str(message.get("text") or "")
            mid = message.get("mid")
        elif isinstance(postback, dict):
            payload, mid = postback.get("payload"), postback.get("mid")
        else:
            return None
        sender = event.get("sender")
        sender = sender.get("id") if isinstance(sender, dict) else None
        if not isinstance(sender, str) or not sender:
            raise HTTPException(400, f"not a {self.platform} message: sender.id is required")
        sender_id = await self._comments.customer_wrote(f"{self.sender_prefix}{sender}")
        text = await chosen_payload(self.memory, sender_id, typed) if typed is not None else str(payload or "")
        if not text.strip():
            return None
        return InboundMessage(self.name, sender_id, text, message_id=mid if isinstance(mid, str) else None)


class MessengerChannel(MetaMessagingChannel):
    """Facebook Messenger on a Page."""

    name: ClassVar[str] = "messenger"
    platform: ClassVar[str] = "Messenger"
    webhook_object: ClassVar[str] = "page"
    max_text_characters: ClassVar[int] = 2000
    comment_platform: ClassVar[CommentPlatform] = FACEBOOK


class InstagramChannel(MetaMessagingChannel):
    """Instagram Direct on a professional account linked to a Facebook Page."""

    name: ClassVar[str] = "instagram"
    platform: ClassVar[str] = "Instagram"
    webhook_object: ClassVar[str] = "instagram"
    max_text_characters: ClassVar[int] = 1000
    comment_platform: ClassVar[CommentPlatform] = INSTAGRAM


def _quick_reply(button: Button) -> dict[str, str]:
    title = button.title
    if len(title) > MAX_QUICK_REPLY_TITLE:
        title = title[: MAX_QUICK_REPLY_TITLE - 1].rstrip() + "…"
    return {"content_type": "text", "title": title, "payload": button.payload}


def _graph_error(response: httpx.Response) -> dict[str, Any]:
    """The `error` object of a Graph API error response ({} when the body has none)."""
    answer = _json(response)
    error = answer.get("error") if isinstance(answer, dict) else None
    return error if isinstance(error, dict) else {}


def _json(response: httpx.Response) -> Any:
    """The response's JSON body, None when it is not JSON."""
    try:
        return response.json()
    except ValueError:
        return None
