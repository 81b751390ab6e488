"""SMS through Twilio: a signed webhook in, the Messages REST API (the `twilio` library) out.

Inbound messages become `InboundMessage`s whose `message_id` is Twilio's MessageSid, so a
webhook Twilio repeats is processed once by the gateway; the sender id is `twilio:<phone
number>` (a REST client cannot write to it). The webhook answers an empty TwiML document at once
and replies go through the outbox, so a slow turn never runs into Twilio's webhook timeout.
Buttons become a numbered list the customer answers with the number.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar
from urllib.parse import parse_qsl

from fastapi import APIRouter, HTTPException, Request, Response
from starlette.datastructures import ImmutableMultiDict
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.request_validator import RequestValidator
from twilio.rest import Client

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
    text_settings,
)
from crowddesk.connectors.numbered_buttons import chosen_payload, numbered_text
from crowddesk.connectors.segments import split_text
from crowddesk.connectors.types import InboundMessage, OutboundMessage

CHANNEL_NAME = "twilio"
SENDER_PREFIX = f"{CHANNEL_NAME}:"
WEBHOOK_PATH = "/webhooks/twilio/webhook"
SIGNATURE_HEADER = "X-Twilio-Signature"
DEFAULT_API_URL = "https://api.twilio.com"
# Twilio refuses a message body over 1,600 characters (error 21617).
MAX_MESSAGE_CHARACTERS = 1600
EMPTY_TWIML = '<?xml version="1.0" encoding="UTF-8"?><Response/>'
_REQUIRED_KEYS = ("account_sid", "auth_token", "twilio_number", "public_url")
# Below the outbox's send timeout: a hung request must end in its thread too, not only be abandoned.
REQUEST_TIMEOUT_SECONDS = 20.0
# 429 is Twilio's rate limit, 401 credentials an operator can still fix: both worth retrying.
_RETRYABLE_CLIENT_ERRORS = frozenset({401, 429})


@dataclass(frozen=True)
class TwilioSettings:
    """The `twilio:` block of credentials.yml, validated."""

    account_sid: str
    auth_token: str = field(repr=False)
    twilio_number: str
    public_url: str
    api_url: str = DEFAULT_API_URL

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> TwilioSettings:
        """Check every key; a `CredentialsError` names the first one that is wrong."""
        reject_unknown_keys(CHANNEL_NAME, block, cls.__dataclass_fields__)
        values = text_settings(CHANNEL_NAME, block)
        for key in _REQUIRED_KEYS:
            if key not in values:
                raise CredentialsError(f"{CHANNEL_NAME}.{key}: missing; see the Twilio console")
        if not values["public_url"].startswith("https://"):
            raise CredentialsError(f"{CHANNEL_NAME}.public_url: Twilio signs the https:// URL it calls")
        return cls(**values)

    @property
    def webhook_url(self) -> str:
        """The URL Twilio calls, which its signature covers (the server may sit behind a proxy)."""
        return self.public_url.rstrip("/") + WEBHOOK_PATH


class TwilioSmsChannel(ChannelConnector):
    """SMS on a Twilio phone number: the signed messaging webhook in, Messages.create out."""

    name: ClassVar[str] = CHANNEL_NAME
    # A long code number sends one message a second; Twilio queues faster sends, then refuses.
    max_messages_per_second: ClassVar[float] = 1.0

    def __init__(self, settings: TwilioSettings) -> None:
        self.settings = settings
        self.client = Client(
            settings.account_sid, settings.auth_token, http_client=TwilioHttpClient(timeout=REQUEST_TIMEOUT_SECONDS)
        )
        self.client.api.base_url = settings.api_url
        self._validator = RequestValidator(settings.auth_token)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> TwilioSmsChannel:
        """Build from the `twilio:` block of credentials.yml."""
        return cls(TwilioSettings.parse(settings))

    def router(self, sink: MessageSink) -> APIRouter:
        """POST /webhooks/twilio/webhook, the number's "A message comes in" webhook."""
        router = APIRouter(tags=["channels"])

        @router.post(
            WEBHOOK_PATH,
            summary="Twilio messaging webhook (signed with X-Twilio-Signature)",
            responses={400: {"description": "not a Twilio message"}, 403: {"description": "bad signature"}},
        )
        async def webhook(request: Request) -> Response:
            form = ImmutableMultiDict(
                parse_qsl((await request.body()).decode(errors="replace"), keep_blank_values=True)
            )
            url = self.settings.webhook_url + (f"?{request.url.query}" if request.url.query else "")
            if not self._validator.validate(url, form, request.headers.get(SIGNATURE_HEADER, "")):
                raise HTTPException(403, f"missing or wrong {SIGNATURE_HEADER} header")
            inbound = self._inbound(form)
            if inbound is not None:
                await sink(replace(inbound, text=await chosen_payload(self.memory, inbound.sender_id, inbound.text)))
            return Response(EMPTY_TWIML, media_type="text/xml")

        return router

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """One SMS per ≤1,600-character part, buttons as a numbered list; refusals become
        `DeliveryError`s."""
        text = await numbered_text(self.memory, recipient_id, message)
        if message.image:
            text = f"{text}\n{message.image}" if text else message.image
        for part in split_text(text, MAX_MESSAGE_CHARACTERS):
            await asyncio.to_thread(self._create, recipient_id.removeprefix(SENDER_PREFIX), part)

    def _create(self, to: str, body: str) -> None:
        try:
            self.client.messages.create(to=to, from_=self.settings.twilio_number, body=body)
        except TwilioRestException as exc:
            status = exc.status
            permanent = 400 <= status < 500 and status not in _RETRYABLE_CLIENT_ERRORS
            # Twilio's own message, never the credentials (the library's str() adds console colours).
            raise DeliveryError(
                f"Twilio refused the message: HTTP {status}, error {exc.code}: {exc.msg}", permanent=permanent
            ) from exc
        except (TwilioException, OSError) as exc:
            # Network errors and timeouts (requests' errors are OSErrors): the outbox retries.
            raise DeliveryError(f"Twilio could not be reached: {exc}") from exc

    def _inbound(self, form: ImmutableMultiDict[str, str]) -> InboundMessage | None:
        sender, sid = form.get("From"), form.get("MessageSid")
        if not sender or not sid:
            raise HTTPException(400, "not a Twilio message: From and MessageSid are required")
        text = form.get("Body", "")
        if not text.strip():
            return None  # a picture or an empty message: nothing for the bot to read
        return InboundMessage(CHANNEL_NAME, f"{SENDER_PREFIX}{sender}", text, message_id=sid)
