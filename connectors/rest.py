"""Rasa-compatible REST channel: POST /webhooks/rest/webhook {"sender", "message"}.

The replies are the HTTP response. A REST client has no address the bot could call later, so
agent replies after a handoff (and the rating question) are read from the conversation
tracker, `GET /conversations/{sender}/tracker`; `send` accepts them and does nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator

from crowddesk.connectors.base import ChannelConnector, CredentialsError, MessageSink
from crowddesk.connectors.types import InboundMessage, OutboundMessage

CHANNEL_NAME = "rest"
SENDER_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")


class RestMessage(BaseModel):
    sender: str = Field(description="Your id for the customer (1-128 of A-Z a-z 0-9 _ . : @ + -)")
    message: str = Field(description="The customer's text, or a button payload such as /greet")
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("sender")
    @classmethod
    def _sender_format(cls, value: str) -> str:
        if not SENDER_PATTERN.match(value):
            raise ValueError("sender must be 1-128 characters of A-Z a-z 0-9 _ . : @ + -")
        return value


class RestReply(BaseModel):
    recipient_id: str
    text: str
    buttons: list[dict[str, str]] | None = None
    image: str | None = None
    custom: dict[str, Any] | None = None


class InvalidJSON(ValueError):
    """The request body is not JSON."""


async def read_json_body(request: Request) -> Any:
    """The body as JSON whatever the content type says, as Rasa reads it: `curl -d` works."""
    try:
        return json.loads(await request.body())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidJSON(f"request body is not valid JSON ({exc})") from exc


async def read_rest_message(request: Request) -> RestMessage:
    """The request's {"sender", "message"} body, or a 400/422 naming what is wrong."""
    try:
        return RestMessage.model_validate(await read_json_body(request))
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from exc


REST_MESSAGE_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": RestMessage.model_json_schema()}}}}


def rest_router(sink: MessageSink) -> APIRouter:
    """The Rasa REST webhook, giving each message to `sink` and answering with its replies."""
    router = APIRouter(tags=["channels"])

    @router.post(
        "/webhooks/rest/webhook",
        response_model=list[RestReply],
        response_model_exclude_none=True,
        summary="Send a customer message; returns the bot's replies (Rasa REST channel)",
        openapi_extra=REST_MESSAGE_BODY,
    )
    async def webhook(request: Request) -> list[dict[str, Any]]:
        body = await read_rest_message(request)
        replies = await sink(
            InboundMessage(CHANNEL_NAME, body.sender, body.message, metadata=body.metadata)
        )
        return [reply.as_rasa() for reply in replies]

    return router


class RestChannel(ChannelConnector):
    """Rasa's `rest:` channel: replies travel in the webhook's response."""

    name: ClassVar[str] = CHANNEL_NAME
    replies_inline: ClassVar[bool] = True

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> RestChannel:
        """`rest:` takes no settings."""
        if settings:
            raise CredentialsError(f"{CHANNEL_NAME}: takes no settings, got {', '.join(map(str, settings))}")
        return cls()

    def router(self, sink: MessageSink) -> APIRouter:
        """POST /webhooks/rest/webhook."""
        return rest_router(sink)

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """Accept and drop: REST customers read later messages from their tracker."""
