"""A fake Graph API Send API on 127.0.0.1 for Messenger and Instagram, and the signed webhook
deliveries Meta sends.

Point a channel at it with `api_url: api.base_url`. POST /{version}/me/messages checks the access
token (an `Authorization: Bearer` header or an `access_token` parameter, as Graph accepts),
refuses what Meta refuses (text over the platform's limit, more than 13 quick replies, a
MESSAGE_TAG without its tag) with Graph's error shape, and records each accepted message (method
"messages": the JSON body plus "platform", the token's owner). `refuse_next` scripts a Graph
error for the next call (a 429, error 613, error 10 outside the window...).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web

from crowddesk.connectors.meta.webhooks import SIGNATURE_HEADER, signature
from tests.fakes.server import FakeAPIServer, Params

# One Page access token per platform: Instagram messaging goes through the Facebook Page its
# professional account is linked to.
ACCESS_TOKENS = {"messenger": "messenger-page-token-for-tests", "instagram": "instagram-page-token-for-tests"}
APP_SECRET = "meta-app-secret-for-tests"
VERIFY_TOKEN = "meta-verify-token-for-tests"
PAGE_IDS = {"messenger": "104000000000001", "instagram": "17841400000000001"}
WEBHOOK_OBJECTS = {"messenger": "page", "instagram": "instagram"}
# Meta's documented limits: message text, and quick replies per message.
TEXT_LIMITS = {"messenger": 2000, "instagram": 1000}
MAX_QUICK_REPLIES = 13
MESSAGING_TYPES = {"RESPONSE", "UPDATE", "MESSAGE_TAG"}


def graph_error(status: int, code: int, message: str, subcode: int | None = None) -> web.Response:
    """A Graph API error response, as Meta shapes it."""
    error: dict[str, Any] = {"message": f"(#{code}) {message}", "type": "OAuthException", "code": code}
    if subcode is not None:
        error["error_subcode"] = subcode
    return web.json_response({"error": {**error, "fbtrace_id": "AbCdEfGhIjK"}}, status=status)


class FakeMetaSendAPI(FakeAPIServer):
    """The Send API under `base_url`, for the Messenger Page and the Instagram account."""

    thread_name = "fake-meta-send-api"

    def __init__(self) -> None:
        super().__init__()
        self._mids = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/me/messages", self._send)

    def refuse_next(
        self, status: int, code: int, message: str, subcode: int | None = None, *, to: str | None = None
    ) -> None:
        """Answer the next Send API call (to the recipient id `to`, if given) with this Graph error."""
        where = None if to is None else (lambda params: params["recipient"]["id"] == to)
        self.fail_next("messages", graph_error(status, code, message, subcode), where)

    async def _send(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.query.get("access_token")
        platform = next((name for name, known in ACCESS_TOKENS.items() if token == known), None)
        if platform is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        try:
            body = json.loads(await request.read())
        except ValueError:
            return graph_error(400, 100, "Invalid parameter")
        params: Params = {**body, "platform": platform}
        problem = _problem(body, TEXT_LIMITS[platform])
        if problem is not None:
            return graph_error(400, 100, problem)
        failure = self.scripted_failure("messages", params)
        if failure is not None:
            return failure
        self.record("messages", params)
        return web.json_response({"recipient_id": body["recipient"]["id"], "message_id": f"m_{next(self._mids)}"})


def _problem(body: Mapping[str, Any], text_limit: int) -> str | None:
    """Why the Send API refuses `body` as a parameter error, if it does."""
    if not isinstance((body.get("recipient") or {}).get("id"), str):
        return "param recipient[id] must be a string"
    if body.get("messaging_type") not in MESSAGING_TYPES:
        return "param messaging_type must be one of RESPONSE, UPDATE, MESSAGE_TAG"
    if body["messaging_type"] == "MESSAGE_TAG" and not body.get("tag"):
        return "param tag is required when messaging_type is MESSAGE_TAG"
    message = body.get("message") or {}
    if not message.get("text") and not message.get("attachment"):
        return "param message must be non-empty"
    if len(message.get("text") or "") > text_limit:
        return f"param message[text] must be UTF-8 encoded and less than {text_limit} characters"
    if len(message.get("quick_replies") or ()) > MAX_QUICK_REPLIES:
        return f"param message[quick_replies] must have at most {MAX_QUICK_REPLIES} elements"
    return None


# --- webhook deliveries --------------------------------------------------------------------------


def webhook_body(platform: str, *events: Mapping[str, Any]) -> dict[str, Any]:
    """A webhook delivery of `events` (each one `entry[].messaging[]` item) to `platform`'s app."""
    page = PAGE_IDS[platform]
    return {
        "object": WEBHOOK_OBJECTS[platform],
        "entry": [{"id": page, "time": 1_700_000_000_000, "messaging": list(events)}],
    }


def from_customer(platform: str, customer: str, **event: Any) -> dict[str, Any]:
    """One event a customer caused: `message=...`, `postback=...`, `delivery=...` or `read=...`."""
    page = PAGE_IDS[platform]
    return {"sender": {"id": customer}, "recipient": {"id": page}, "timestamp": 1_700_000_000_000, **event}


def text_message(platform: str, customer: str, text: str, mid: str) -> dict[str, Any]:
    return from_customer(platform, customer, message={"mid": mid, "text": text})


def quick_reply_pressed(platform: str, customer: str, title: str, payload: str, mid: str) -> dict[str, Any]:
    return from_customer(platform, customer, message={"mid": mid, "text": title, "quick_reply": {"payload": payload}})


def postback(platform: str, customer: str, title: str, payload: str, mid: str) -> dict[str, Any]:
    return from_customer(platform, customer, postback={"mid": mid, "title": title, "payload": payload})


def delivered(platform: str, customer: str, mid: str) -> dict[str, Any]:
    """The receipt Meta sends when `customer`'s app received message `mid`."""
    return from_customer(platform, customer, delivery={"mids": [mid], "watermark": 1_700_000_000_000})


def echo(platform: str, customer: str, text: str, mid: str) -> dict[str, Any]:
    """What Meta sends back for a message the Page itself sent."""
    page = PAGE_IDS[platform]
    return {
        "sender": {"id": page},
        "recipient": {"id": customer},
        "timestamp": 1_700_000_000_000,
        "message": {"mid": mid, "text": text, "is_echo": True, "app_id": 1517776481860111},
    }


def signed(body: Mapping[str, Any], app_secret: str = APP_SECRET) -> tuple[bytes, dict[str, str]]:
    """The raw body and headers Meta posts `body` with."""
    raw = json.dumps(body).encode()
    return raw, {"Content-Type": "application/json", SIGNATURE_HEADER: signature(raw, app_secret)}
