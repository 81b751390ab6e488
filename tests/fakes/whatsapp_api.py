"""A fake WhatsApp Cloud API on 127.0.0.1: the Graph API's messages endpoint with Meta's shapes
and errors, and the signed webhook deliveries Meta sends.

Point the channel at it with `api_url: api.base_url`. It checks the Bearer token and the phone
number id, records each accepted message (method "messages": the JSON body pywa posts) and read
receipt (method "read": its body, with `message_id`), and can answer the next call of either
with a Graph API error (a 429, a 500, 131047 re-engagement...).
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from aiohttp import web

from crowddesk.connectors.meta.webhooks import SIGNATURE_HEADER, signature
from tests.fakes.server import FakeAPIServer, Params, Where

PHONE_NUMBER_ID = "106540352242922"
DISPLAY_PHONE_NUMBER = "15550783881"
ACCESS_TOKEN = "EAAG-whatsapp-access-token-for-tests"
APP_SECRET = "whatsapp-app-secret-for-tests"
VERIFY_TOKEN = "whatsapp-verify-token-for-tests"


def graph_error(status: int, code: int, message: str, retry_after: float | None = None) -> web.Response:
    """A Graph API error response, as Meta sends it."""
    error = {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "AbCdEfGh123"}
    headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
    return web.json_response({"error": error}, status=status, headers=headers)


class FakeWhatsAppAPI(FakeAPIServer):
    """The Cloud API under `base_url`, for one business phone number."""

    thread_name = "fake-whatsapp-api"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post(r"/{version:v\d+\.\d+}/{phone_number_id}/messages", self._messages)

    def refuse_next(
        self,
        status: int,
        code: int,
        message: str,
        *,
        retry_after: float | None = None,
        method: str = "messages",
        where: Where | None = None,
    ) -> None:
        """Answer the next call of `method` ("messages" or "read") with this Graph API error."""
        self.fail_next(method, graph_error(status, code, message, retry_after), where)

    async def _messages(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return graph_error(401, 190, "Invalid OAuth access token - Cannot parse access token")
        if request.match_info["phone_number_id"] != PHONE_NUMBER_ID:
            return graph_error(400, 100, "Unsupported post request. Object does not exist")
        params: Params = await request.json()
        method = "read" if params.get("status") == "read" else "messages"
        failure = self.scripted_failure(method, params)
        if failure is not None:
            return failure
        self.record(method, params)
        if method == "read":
            return web.json_response({"success": True})
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": params["to"], "wa_id": params["to"]}],
                "messages": [{"id": f"wamid.OUT{next(self._ids):020d}"}],
            }
        )


# --- what Meta posts to the webhook --------------------------------------------------------------


def delivery(*messages: dict[str, Any], statuses: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    """One webhook delivery to the channel's number carrying `messages` and `statuses`."""
    value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": DISPLAY_PHONE_NUMBER, "phone_number_id": PHONE_NUMBER_ID},
    }
    if messages:
        value["contacts"] = [{"profile": {"name": "Kerry Fisher"}, "wa_id": message["from"]} for message in messages]
        value["messages"] = list(messages)
    if statuses:
        value["statuses"] = list(statuses)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": "102290129340398", "changes": [{"value": value, "field": "messages"}]}],
    }


def text_message(wa_id: str, text: str, message_id: str) -> dict[str, Any]:
    return {"from": wa_id, "id": message_id, "timestamp": "1749416383", "type": "text", "text": {"body": text}}


def button_reply(wa_id: str, payload: str, title: str, message_id: str) -> dict[str, Any]:
    """The customer pressed a reply button sent with id `payload`."""
    return {
        "context": {"from": DISPLAY_PHONE_NUMBER, "id": "wamid.OUT00000000000000000001"},
        "from": wa_id,
        "id": message_id,
        "timestamp": "1749416390",
        "type": "interactive",
        "interactive": {"type": "button_reply", "button_reply": {"id": payload, "title": title}},
    }


def list_reply(wa_id: str, payload: str, title: str, message_id: str) -> dict[str, Any]:
    """The customer picked a list row sent with id `payload`."""
    return {
        "from": wa_id,
        "id": message_id,
        "timestamp": "1749416395",
        "type": "interactive",
        "interactive": {"type": "list_reply", "list_reply": {"id": payload, "title": title}},
    }


def status(wa_id: str, message_id: str, state: str) -> dict[str, Any]:
    """A statuses callback: the bot's message `message_id` was sent, delivered or read."""
    return {
        "id": message_id,
        "status": state,
        "timestamp": "1749416400",
        "recipient_id": wa_id,
        "pricing": {"billable": True, "pricing_model": "PMP", "category": "service"},
    }


def signed(payload: dict[str, Any], secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and headers Meta sends when it posts `payload` (an empty `secret`: unsigned)."""
    body = json.dumps(payload).encode()
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = signature(body, secret)
    return body, headers
