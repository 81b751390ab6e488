"""WhatsApp through Meta's Cloud API: a signed webhook in, the Graph API's messages endpoint (the
`pywa` library) out.

Inbound messages become `InboundMessage`s whose `message_id` is WhatsApp's message id (wamid),
so a webhook Meta delivers again is processed once by the gateway; the sender id is
`whatsapp:<wa_id>`. A reply-button or list press reaches the bot as the id it was sent with,
the button's payload. Each message handed to the bot is marked as read (the customer's blue
ticks); statuses callbacks (sent, delivered, read) are acknowledged and ignored.

Outbound: text in ≤4,096-character parts, 1–3 buttons as reply buttons, 4–10 as a list
message, more as a numbered list; an image goes as an image message by its link. WhatsApp takes
free-form messages only within 24 hours of the customer's last message; past that, a message
goes out as the configured `window_template` (its text as the template's one body parameter;
buttons and images cannot ride along), or is refused.

pywa pins its httpx session to https://graph.facebook.com; the channel owns that session and
points it at `api_url` once pywa has set its Bearer token on it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import PlainTextResponse
from pywa.types.templates import TemplateLanguage
from pywa.utils import Version
from pywa_async import WhatsApp
from pywa_async.errors import WhatsAppError
from pywa_async.types import Button as ReplyButton
from pywa_async.types import Section, SectionList, SectionRow

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
    text_settings,
)
from crowddesk.connectors.meta.webhooks import (
    GRAPH_API_URL,
    SIGNATURE_HEADER,
    check_api_url,
    check_signature,
    subscription_challenge,
)
from crowddesk.connectors.numbered_buttons import chosen_payload, numbered_text
from crowddesk.connectors.reply_window import ReplyWindow, WindowState
from crowddesk.connectors.segments import split_text
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)

CHANNEL_NAME = "whatsapp"
PLATFORM = "WhatsApp"
SENDER_PREFIX = f"{CHANNEL_NAME}:"
WEBHOOK_PATH = "/webhooks/whatsapp/webhook"
DEFAULT_API_VERSION = Version.GRAPH_API.value  # the newest Graph API version the installed pywa speaks
_API_VERSION = re.compile(r"^\d+\.\d+$")
_REQUIRED_KEYS = ("phone_number_id", "access_token", "app_secret", "verify_token")
_TEMPLATE_KEY = f"{CHANNEL_NAME}.window_template"
_TEMPLATE_LANGUAGES = frozenset(language.value for language in TemplateLanguage)

# The Cloud API's limits on what one message may hold.
MAX_TEXT_CHARACTERS = 4096
MAX_INTERACTIVE_BODY_CHARACTERS = 1024
MAX_REPLY_BUTTONS = 3
MAX_LIST_ROWS = 10
BUTTON_TITLE_CHARACTERS = 20
BUTTON_ID_CHARACTERS = 256
ROW_TITLE_CHARACTERS = 24
ROW_DESCRIPTION_CHARACTERS = 72
ROW_ID_CHARACTERS = 200
LIST_BUTTON_TITLE = "Choose"
# An interactive message needs a body; a message that is only buttons gets this one.
EMPTY_BODY = "Choose one:"

# Below the outbox's send timeout: a hung request must end, not only be abandoned.
REQUEST_TIMEOUT_SECONDS = 20.0
# Read receipts are a courtesy: a slow Graph API must not hold Meta's webhook delivery open.
READ_RECEIPT_TIMEOUT_SECONDS = 5.0
# Throughput and spam limits (error codes) that pass with time; everything else a 4xx names is
# for good, 131047 (the 24-hour window closed) included.
_RATE_LIMIT_CODES = frozenset({4, 80007, 130429, 131048, 131056})
EXPIRED_TOKEN_CODE = 190


@dataclass(frozen=True)
class WindowTemplate:
    """The approved template sent when the 24-hour window has closed; its body has one
    parameter, {{1}}, which carries the message's text."""

    name: str
    language: str

    @classmethod
    def parse(cls, value: object) -> WindowTemplate:
        if not isinstance(value, Mapping):
            raise CredentialsError(f"{_TEMPLATE_KEY}: expected a mapping such as {{name: reply, language: en_US}}")
        reject_unknown_keys(_TEMPLATE_KEY, value, cls.__dataclass_fields__)
        values = text_settings(_TEMPLATE_KEY, value)
        for key in cls.__dataclass_fields__:
            if key not in values:
                raise CredentialsError(f"{_TEMPLATE_KEY}.{key}: missing; see the template in WhatsApp Manager")
        if values["language"] not in _TEMPLATE_LANGUAGES:
            raise CredentialsError(
                f"{_TEMPLATE_KEY}.language: {values['language']!r} is not a WhatsApp language code such as en_US"
            )
        return cls(**values)


@dataclass(frozen=True)
class WhatsAppSettings:
    """The `whatsapp:` block of credentials.yml, validated."""

    phone_number_id: str
    access_token: str = field(repr=False)
    app_secret: str = field(repr=False)
    verify_token: str = field(repr=False)
    api_url: str = GRAPH_API_URL
    api_version: str = DEFAULT_API_VERSION
    window_template: WindowTemplate | None = None

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> WhatsAppSettings:
        """Check every key; a `CredentialsError` names the first one that is wrong."""
        reject_unknown_keys(CHANNEL_NAME, block, cls.__dataclass_fields__)
        template = block.get("window_template")
        values = text_settings(CHANNEL_NAME, {key: value for key, value in block.items() if key != "window_template"})
        for key in _REQUIRED_KEYS:
            if key not in values:
                raise CredentialsError(f"{CHANNEL_NAME}.{key}: missing; see the app's WhatsApp API Setup page")
        check_api_url(CHANNEL_NAME, values)
        if not _API_VERSION.match(values.get("api_version", DEFAULT_API_VERSION)):
            raise CredentialsError(
                f"{CHANNEL_NAME}.api_version: {values['api_version']!r} is not a Graph API version "
                f"such as {DEFAULT_API_VERSION!r}"
            )
        return cls(**values, window_template=None if template in (None, "") else WindowTemplate.parse(template))


class WhatsAppChannel(ChannelConnector):
    """One WhatsApp Business phone number: Meta's signed webhook in, the Cloud API out."""

    name: ClassVar[str] = CHANNEL_NAME
    # The Cloud API's default throughput per business phone number is 80 messages a second.
    max_messages_per_second: ClassVar[float] = 80.0

    def __init__(self, settings: WhatsAppSettings) -> None:
        self.settings = settings
        self._session = httpx.AsyncClient(timeout=REQUEST_TIMEOUT_SECONDS)
        self.client = WhatsApp(
            phone_id=settings.phone_number_id,
            token=settings.access_token,
            session=self._session,
            api_version=float(settings.api_version),
        )
        self._session.base_url = f"{settings.api_url.rstrip('/')}/v{settings.api_version}"
        self._window = ReplyWindow()

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> WhatsAppChannel:
        """Build from the `whatsapp:` block of credentials.yml."""
        return cls(WhatsAppSettings.parse(settings))

    def router(self, sink: MessageSink) -> APIRouter:
        """GET and POST /webhooks/whatsapp/webhook, the app's WhatsApp callback URL."""
        router = APIRouter(tags=["channels"])

        @router.get(
            WEBHOOK_PATH,
            summary="WhatsApp webhook verification (Meta's hub.challenge)",
            responses={400: {"description": "not a subscription request"}, 403: {"description": "wrong verify token"}},
        )
        async def verify(request: Request) -> PlainTextResponse:
            return subscription_challenge(request.query_params, self.settings.verify_token)

        @router.post(
            WEBHOOK_PATH,
            summary="WhatsApp webhook (signed with X-Hub-Signature-256)",
            responses={400: {"description": "not a WhatsApp webhook"}, 403: {"description": "bad signature"}},
        )
        async def webhook(request: Request) -> Response:
            body = await request.body()
            check_signature(body, request.headers.get(SIGNATURE_HEADER), self.settings.app_secret)
            for inbound in self._inbound(body):
                # A number typed in answer to a numbered list is that button's payload.
                await sink(replace(inbound, text=await chosen_payload(self.memory, inbound.sender_id, inbound.text)))
                await self._mark_read(inbound)
            return Response(status_code=200)

        return router

    async def stop(self) -> None:
        """Close the HTTP client."""
        await self._session.aclose()

    def refusal(self, message: OutboundMessage, now: float) -> str | None:
        """Past the 24-hour window without a `window_template`, nothing can reach the customer."""
        if self.settings.window_template is None and self._window.state(message, now) is WindowState.CLOSED:
            return self._window.closed_reason(PLATFORM, message, now)
        return None

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """Text, reply buttons or a list, and an image; the window template once the 24-hour
        window has closed. Refusals become `DeliveryError`s."""
        now = time.time()
        reason = self.refusal(message, now)
        if reason is not None:
            raise DeliveryError(reason, permanent=True)
        to = recipient_id.removeprefix(SENDER_PREFIX)
        with _delivery_errors():
            if self._window.state(message, now) is WindowState.CLOSED:
                await self._send_template(to, message)
                return
            buttons = _interactive(message.buttons)
            # Beyond ten buttons a numbered list; a message with native buttons, like one
            # without, retires an earlier numbered list.
            numbered = message if buttons is None else replace(message, buttons=())
            text = await numbered_text(self.memory, recipient_id, numbered)
            image = message.image
            if image and not image.startswith(("https://", "http://")):
                # pywa would read anything else as a file on this server to upload.
                text, image = f"{text}\n{image}" if text else image, None
            await self._send_text(to, text, buttons)
            if image:
                await self.client.send_image(to, image)

    async def _send_text(self, to: str, text: str, buttons: Sequence[ReplyButton] | SectionList | None) -> None:
        """`text` in parts WhatsApp accepts, `buttons` on the last."""
        parts = list(split_text(text, MAX_TEXT_CHARACTERS))
        if buttons is not None:
            # An interactive message's body holds less than a text message: what does not fit goes first.
            parts.extend(split_text(parts.pop() if parts else EMPTY_BODY, MAX_INTERACTIVE_BODY_CHARACTERS))
        for number, part in enumerate(parts, 1):
            await self.client.send_message(to, part, buttons=buttons if number == len(parts) else None)

    async def _send_template(self, to: str, message: OutboundMessage) -> None:
        template = self.settings.window_template
        assert template is not None  # `refusal` let the message through only with a template
        # A template parameter may not hold line breaks, tabs or runs of spaces (error 132018).
        parameter = " ".join(message.text.split())
        body = {"type": "body", "parameters": [{"type": "text", "text": parameter}]}
        await self.client.send_template(to, template.name, TemplateLanguage(template.language), [body])

    async def _mark_read(self, inbound: InboundMessage) -> None:
        # Only a courtesy: the message is already with the bot, so a failure is logged, not raised.
        assert inbound.message_id is not None
        try:
            async with asyncio.timeout(READ_RECEIPT_TIMEOUT_SECONDS):
                await self.client.mark_message_as_read(inbound.message_id)
        except (WhatsAppError, httpx.HTTPError, TimeoutError) as exc:
            logger.warning("could not mark whatsapp message %s as read: %s", inbound.message_id, _describe(exc))

    def _inbound(self, body: bytes) -> list[InboundMessage]:
        """The customer messages of one webhook delivery that carry something to read."""
        try:
            messages = []
            for message in self._received(json.loads(body)):
                text = _text(message)
                if text:
                    sender = f"{SENDER_PREFIX}{message['from']}"
                    messages.append(InboundMessage(CHANNEL_NAME, sender, text, message_id=str(message["id"])))
            return messages
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise HTTPException(400, f"not a WhatsApp webhook: {exc!r}") from exc

    def _received(self, payload: Any) -> Iterator[Mapping[str, Any]]:
        """The `messages` of a webhook payload that were sent to this channel's number."""
        if payload.get("object") != "whatsapp_business_account":
            raise ValueError("expected object: whatsapp_business_account")
        for entry in payload["entry"]:
            for change in entry.get("changes", ()):
                value = change["value"]
                # Skipped: other fields the app subscribes to, and another number of the same app.
                if change.get("field") == "messages" and value["metadata"]["phone_number_id"] == (
                    self.settings.phone_number_id
                ):
                    # Statuses callbacks (sent, delivered, read) carry `statuses`, no `messages`.
                    yield from value.get("messages", ())


def _text(message: Mapping[str, Any]) -> str | None:
    """What the bot reads of one inbound message: its text, the id of the reply button or list
    row pressed, or a picture's caption; None for what carries no text (stickers, locations)."""
    kind = message["type"]
    if kind == "text":
        return str(message["text"]["body"])
    if kind == "interactive":
        reply = message["interactive"]
        pressed = reply.get("button_reply") or reply.get("list_reply")
        return str(pressed["id"]) if pressed else None
    if kind in ("image", "video", "document"):
        return message[kind].get("caption")
    return None


def _interactive(buttons: Sequence[Button]) -> list[ReplyButton] | SectionList | None:
    """Reply buttons for up to three buttons, a one-section list for up to ten; None for none
    (and for more, which go as a numbered list)."""
    if not buttons or len(buttons) > MAX_LIST_ROWS:
        return None
    if len(buttons) <= MAX_REPLY_BUTTONS:
        return [
            ReplyButton(button.title[:BUTTON_TITLE_CHARACTERS], _reply_id(button, BUTTON_ID_CHARACTERS))
            for button in buttons
        ]
    rows = [
        SectionRow(
            button.title[:ROW_TITLE_CHARACTERS],
            _reply_id(button, ROW_ID_CHARACTERS),
            # A title cut short is shown whole under it, as far as the description allows.
            button.title[:ROW_DESCRIPTION_CHARACTERS] if len(button.title) > ROW_TITLE_CHARACTERS else None,
        )
        for button in buttons
    ]
    return SectionList(LIST_BUTTON_TITLE, [Section(LIST_BUTTON_TITLE, rows)])


def _reply_id(button: Button, limit: int) -> str:
    # WhatsApp refuses longer ids; such a button sends its title, which the bot reads like typed text.
    return button.payload if len(button.payload) <= limit else button.title[:limit]


@contextmanager
def _delivery_errors() -> Iterator[None]:
    """Graph API errors and network failures as `DeliveryError`s, retryable or permanent."""
    try:
        yield
    except WhatsAppError as exc:
        status = exc.status_code or 0
        # 190 is an expired or revoked token, which an operator can renew while the messages wait.
        retryable = status == 429 or status >= 500 or exc.code in _RATE_LIMIT_CODES or exc.code == EXPIRED_TOKEN_CODE
        raise DeliveryError(
            f"WhatsApp refused the message: {_describe(exc)}", retry_after=_retry_after(exc), permanent=not retryable
        ) from exc
    except httpx.HTTPError as exc:
        # Network errors and timeouts: the outbox retries.
        raise DeliveryError(f"WhatsApp could not be reached: {exc!r}") from exc


def _describe(exc: Exception) -> str:
    # Meta's own words; pywa's repr of the error would add the whole response object.
    if isinstance(exc, WhatsAppError):
        return f"HTTP {exc.status_code}, error {exc.code}: {exc.message}"
    return repr(exc)


def _retry_after(exc: WhatsAppError) -> float | None:
    header = exc.raw_response.headers.get("Retry-After") if exc.raw_response is not None else None
    try:
        return float(header) if header is not None else None
    except ValueError:
        return None
