"""Rasa's callback channel: messages come in like REST, replies are POSTed to your `url`.

    callback:
      url: "https://example.com/bot-replies"

POST {"sender", "message"} to /webhooks/callback/webhook; it answers "success" at once, and
every reply, including an agent's after a handoff, arrives later as a POST of
{"recipient_id", "text", "buttons"?, "custom"?} to the configured URL, with an `Idempotency-Key`
header that is the same on every attempt to send that reply: delivery is at least once, so
a receiver that keeps the keys it saw for a day drops a repeat sent after a crash.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
)
from crowddesk.connectors.rest import REST_MESSAGE_BODY, read_rest_message
from crowddesk.connectors.types import OutboundMessage

CHANNEL_NAME = "callback"
SETTINGS = ("url", "timeout")
DEFAULT_TIMEOUT_SECONDS = 10.0


def retry_after_seconds(header: str | None) -> float | None:
    """An HTTP Retry-After value (seconds or an HTTP date) as seconds from now."""
    if not header:
        return None
    if header.strip().isdigit():
        return float(header)
    try:
        when = parsedate_to_datetime(header)
    except (TypeError, ValueError):
        return None
    return max((when - datetime.now(UTC)).total_seconds(), 0.0)


class CallbackChannel(ChannelConnector):
    """Replies go to one HTTP endpoint of yours, as JSON, through the outbox."""

    name: ClassVar[str] = CHANNEL_NAME
    api_client: ClassVar[bool] = True

    def __init__(self, url: str, *, timeout: float = DEFAULT_TIMEOUT_SECONDS) -> None:
        self.url = url
        self._client = httpx.AsyncClient(timeout=timeout)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> CallbackChannel:
        """`url` (required) and `timeout` in seconds."""
        reject_unknown_keys(CHANNEL_NAME, settings, SETTINGS)
        url = settings.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise CredentialsError(f"{CHANNEL_NAME}.url: missing or not an http(s) URL; replies are POSTed there")
        timeout = settings.get("timeout", DEFAULT_TIMEOUT_SECONDS)
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise CredentialsError(f"{CHANNEL_NAME}.timeout: expected a positive number of seconds")
        return cls(url, timeout=float(timeout))

    def router(self, sink: MessageSink) -> APIRouter:
        """POST /webhooks/callback/webhook, Rasa's callback input."""
        router = APIRouter(tags=["channels"])

        @router.post(
            "/webhooks/callback/webhook",
            response_class=PlainTextResponse,
            summary="Send a customer message; replies are POSTed to the callback URL (Rasa callback channel)",
            openapi_extra=REST_MESSAGE_BODY,
        )
        async def webhook(request: Request) -> str:
            body = await read_rest_message(request, CHANNEL_NAME)
            await sink(body.inbound(CHANNEL_NAME))
            return "success"

        return router

    async def stop(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """POST the message as JSON; 429 and 5xx are worth retrying, other 4xx are not."""
        try:
            headers = {"Idempotency-Key": message.delivery_key} if message.delivery_key else {}
            response = await self._client.post(self.url, json=message.as_rasa(), headers=headers)
        except httpx.HTTPError as error:
            raise DeliveryError(f"callback URL unreachable: {type(error).__name__}") from error
        status = response.status_code
        if status == 429:
            raise DeliveryError(
                "callback URL is rate limiting (429)",
                retry_after=retry_after_seconds(response.headers.get("retry-after")),
            )
        if status >= 500 or status == 408:
            raise DeliveryError(f"callback URL answered {status}")
        if status >= 400:
            raise DeliveryError(f"callback URL refused the message ({status})", permanent=True)
