"""Rasa-compatible REST channel: POST /webhooks/rest/webhook {"sender", "message"}."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, ValidationError, field_validator

from crowddesk.connectors.types import InboundMessage, OutboundMessage

CHANNEL_NAME = "rest"
SENDER_PATTERN = re.compile(r"^[A-Za-z0-9_.:@+\-]{1,128}$")

MessageHandler = Callable[[InboundMessage], Awaitable[list[OutboundMessage]]]


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


def rest_router(handle: MessageHandler) -> APIRouter:
    router = APIRouter(tags=["channels"])

    @router.post(
        "/webhooks/rest/webhook",
        response_model=list[RestReply],
        response_model_exclude_none=True,
        summary="Send a customer message; returns the bot's replies (Rasa REST channel)",
        openapi_extra={"requestBody": {"required": True, "content": {
            "application/json": {"schema": RestMessage.model_json_schema()}}}},
    )
    async def webhook(request: Request) -> list[dict[str, Any]]:
        try:
            body = RestMessage.model_validate(await read_json_body(request))
        except ValidationError as exc:
            raise RequestValidationError(exc.errors()) from exc
        replies = await handle(
            InboundMessage(CHANNEL_NAME, body.sender, body.message, metadata=body.metadata)
        )
        return [reply.as_rasa() for reply in replies]

    return router
