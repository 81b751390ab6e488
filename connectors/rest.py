"""Rasa-compatible REST channel: POST /webhooks/rest/webhook {"sender", "message"}.

The replies are the HTTP response. A REST client has no address the bot could call later, so
agent replies after a handoff (and the rating question) are read from the conversation
tracker, `GET /conversations/{sender}/tracker`; `send` accepts them and does nothing else.

An optional `message_id` makes a retry safe: the message is processed once, and sending it
again answers with the first delivery's replies. Senders in another channel's namespace
(`webchat:...`, `telegram:...`) are refused: REST can't write to those conversations.

    rest:
      allowed_origins: ["https://shop.example.com"]  # web pages that may call the webhook
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import APIRouter, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator

from crowddesk.connectors.base import ChannelConnector, MessageSink, reject_unknown_keys
from crowddesk.connectors.origins import SETTING as ORIGINS_SETTING
from crowddesk.connectors.origins import cors_headers, read_allowed_origins
from crowddesk.connectors.registry import namespace_owner
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from crowddesk.errors import Rejected

CHANNEL_NAME = "rest"
SENDER_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")
# No ":", so "<sender>:<message_id>" names one message of one sender (see `RestMessage.inbound`).
MESSAGE_ID_PATTERN = r"^[A-Za-z0-9_.@+\-]{1,127}$"
PREFLIGHT_HEADERS = {
    "Access-Control-Allow-Methods": "POST",
    "Access-Control-Allow-Headers": "Content-Type",
    "Access-Control-Max-Age": "600",
}


class RestMessage(BaseModel):
    sender: str = Field(description="Your id for the customer (1-128 of A-Z a-z 0-9 _ . : @ + -)")
    message: str = Field(description="The customer's text, or a button payload such as /greet")
    metadata: dict[str, Any] = Field(default_factory=dict)
    message_id: str | None = Field(
        default=None,
        pattern=MESSAGE_ID_PATTERN,
        description="Optional idempotency key (1-127 of A-Z a-z 0-9 _ . @ + -): a message sent again "
        "with the same sender and message_id is processed once",
    )

    @field_validator("sender")
    @classmethod
    def _sender_format(cls, value: str) -> str:
        if not SENDER_PATTERN.match(value):
            raise ValueError("sender must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        return value

    def inbound(self, channel: str) -> InboundMessage:
        """The message as `channel` hands it on; its message_id is scoped by sender, so two
        clients choosing the same id never shadow each other's messages."""
        delivery_id = None if self.message_id is None else f"{self.sender}:{self.message_id}"
        return InboundMessage(channel, self.sender, self.message, message_id=delivery_id, metadata=self.metadata)


class RestReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[dict[str, str]] | None = None
    image: str | None = None
    custom: dict[str, Any] | None = None


class InvalidJSON(Rejected, ValueError):
    """The request body is not JSON."""


async def read_json_body(request: Request) -> Any:
    """The body as JSON whatever the content type says, as Rasa reads it: `curl -d` works."""
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"request body is not valid JSON ({exc})") from exc


async def read_rest_message(request: Request, channel: str) -> RestMessage:
    """The request's {"sender", "message"} body, or a 400/422 naming what is wrong; a sender in
    another channel's namespace is refused, so `channel` can't write to its conversations."""
    try:
        body = RestMessage.model_validate(await read_json_body(request))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc
    owner = namespace_owner(body.sender)
    if owner is not None and owner != channel:
        raise RequestValidationError(
            [
                {
                    "type": "value_error",
                    "loc": ("body", "sender"),
                    "msg": (
                        f"{body.sender!r} is a sender of the {owner} channel; pick one without the '{owner}:' prefix"
                    ),
                }
            ]
        )
    return body


REST_MESSAGE_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": RestMessage.model_json_schema()}}}
}


def rest_router(sink: MessageSink, allowed_origins: frozenset[str] | None = None) -> APIRouter:
    """The Rasa REST webhook, giving each message to `sink` and answering with its replies;
    browsers may call it from the server's own origin and `allowed_origins` (None: localhost)."""
    router = APIRouter(tags=["channels"])

    @router.post(
        "/webhooks/rest/webhook",
        response_model=list[RestReply],
        response_model_exclude_none=True,
        summary="Send a customer message; returns the bot's replies (Rasa REST channel)",
        openapi_extra=REST_MESSAGE_BODY,
    )
    async def webhook(request: Request, response: Response) -> list[dict[str, Any]]:
        response.headers.update(cors_headers(request, allowed_origins, CHANNEL_NAME))
        body = await read_rest_message(request, CHANNEL_NAME)
        replies = await sink(body.inbound(CHANNEL_NAME))
        return [reply.as_rasa() for reply in replies]

    @router.options("/webhooks/rest/webhook", include_in_schema=False)
    async def preflight(request: Request) -> Response:
        headers = cors_headers(request, allowed_origins, CHANNEL_NAME)
        return Response(status_code=204, headers={**headers, **PREFLIGHT_HEADERS} if headers else {})

    return router


class RestChannel(ChannelConnector):
    """Rasa's `rest:` channel: replies travel in the webhook's response."""

    name: ClassVar[str] = CHANNEL_NAME
    replies_inline: ClassVar[bool] = True
    api_client: ClassVar[bool] = True

    def __init__(self, allowed_origins: frozenset[str] | None = None) -> None:
        """`allowed_origins`: web pages on other origins that may call the webhook (`*`: any);
        None allows any localhost port. The server's own origin is always allowed."""
        self.allowed_origins = allowed_origins

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> RestChannel:
        """`allowed_origins` (optional)."""
        reject_unknown_keys(CHANNEL_NAME, settings, (ORIGINS_SETTING,))
        return cls(read_allowed_origins(CHANNEL_NAME, settings))

    def router(self, sink: MessageSink) -> APIRouter:
        """POST (and the browsers' preflight OPTIONS) /webhooks/rest/webhook."""
        return rest_router(sink, self.allowed_origins)

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """Accept and drop: REST customers read later messages from their tracker."""
