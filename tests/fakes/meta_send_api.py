"""A fake Graph API on 127.0.0.1 for Messenger and Instagram: the Send API and replies under
comments, and the signed webhook deliveries Meta sends.

Point a channel at it with `api_url: api.base_url`. Every call checks the access token (an
`Authorization: Bearer` header or an `access_token` parameter, as Graph accepts) and answers a
refusal with Graph's error shape. POST /{version}/me/messages refuses what Meta refuses (text
over the platform's limit, more than 13 quick replies, a MESSAGE_TAG without its tag, a second
private reply to one comment) and records each accepted message (method "messages": the JSON
body plus "platform", the token's owner). A private reply (`recipient.comment_id`) answers with
the commenter's messaging id, which `add_comment` set. POST /{version}/{comment id}/comments
(Facebook) and /{version}/{comment id}/replies (Instagram) record each reply posted under a
comment (method "comment_replies": "platform", "comment_id", "message", "id").
`refuse_next` scripts a Graph error for the next Send API call (a 429, error 613, error 10
outside the window...).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
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
# The Graph edge that replies under a comment on each platform.
REPLY_EDGES = {"messenger": "comments", "instagram": "replies"}


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
        self._ids = itertools.count(1_800_000_000_000_001)
        self._commenters: dict[str, str] = {}
        self._privately_replied: set[str] = set()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/{version}/me/messages", self._send)
        app.router.add_post("/{version}/{comment_id}/{edge}", self._reply_under_comment)

    def add_comment(self, comment_id: str, messaging_id: str) -> None:
        """A comment exists, by the customer Messenger or Instagram knows as `messaging_id` (the
        PSID or IGSID a private reply to it answers with)."""
        with self._recorded:
            self._commenters[comment_id] = messaging_id

    def refuse_next(
        self, status: int, code: int, message: str, subcode: int | None = None, *, to: str | None = None
    ) -> None:
        """Answer the next Send API call (to the recipient id, or the comment id of a private
        reply, `to`, if given) with this Graph error."""
        where = None if to is None else (lambda params: to in params["recipient"].values())
        self.fail_next("messages", graph_error(status, code, message, subcode), where)

    async def _send(self, request: web.Request) -> web.Response:
        platform = _platform(request)
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
        recipient = body["recipient"].get("id")
        comment_id = body["recipient"].get("comment_id")
        if comment_id is not None:
            with self._recorded:
                recipient = self._commenters.get(comment_id)
                replied = comment_id in self._privately_replied
                self._privately_replied.add(comment_id)
            if recipient is None:
                return graph_error(400, 100, "Invalid parameter: the comment does not exist")
            if replied:
                return graph_error(400, 10900, "Activity already replied to")
        self.record("messages", params)
        return web.json_response({"recipient_id": recipient, "message_id": f"m_{next(self._mids)}"})

    async def _reply_under_comment(self, request: web.Request) -> web.Response:
        platform = _platform(request)
        if platform is None:
            return graph_error(400, 190, "Invalid OAuth access token - Cannot parse access token")
        if request.match_info["edge"] != REPLY_EDGES[platform]:
            return graph_error(400, 100, f"Unsupported post request: use /{REPLY_EDGES[platform]} on {platform}")
        try:
            message = (json.loads(await request.read()) or {}).get("message")
        except (ValueError, AttributeError):
            return graph_error(400, 100, "Invalid parameter")
        if not isinstance(message, str) or not message:
            return graph_error(400, 100, "param message must be non-empty")
        reply_id = str(next(self._ids))
        comment_id = request.match_info["comment_id"]
        self.record(
            "comment_replies", {"platform": platform, "comment_id": comment_id, "message": message, "id": reply_id}
        )
        return web.json_response({"id": reply_id})


def _platform(request: web.Request) -> str | None:
    """Whose access token the request carries, if any of them."""
    token = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.query.get("access_token")
    return next((name for name, known in ACCESS_TOKENS.items() if token == known), None)


def _problem(body: Mapping[str, Any], text_limit: int) -> str | None:
    """Why the Send API refuses `body` as a parameter error, if it does."""
    recipient = body.get("recipient") or {}
    if not isinstance(recipient, dict) or not (
        isinstance(recipient.get("id"), str) ^ isinstance(recipient.get("comment_id"), str)
    ):
        return "param recipient must have a string id or comment_id"
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


def webhook_body(
    platform: str, *events: Mapping[str, Any], changes: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """A webhook delivery of `events` (each one `entry[].messaging[]` item) and `changes` (each
    one `entry[].changes[]` item: a comment) to `platform`'s app."""
    entry: dict[str, Any] = {"id": PAGE_IDS[platform], "time": 1_700_000_000_000}
    if events or not changes:
        entry["messaging"] = list(events)
    if changes:
        entry["changes"] = list(changes)
    return {"object": WEBHOOK_OBJECTS[platform], "entry": [entry]}


def page_comment(
    comment_id: str, author_id: str, message: str | None, *, post_id: str = "104000000000001_900001", **value: Any
) -> dict[str, Any]:
    """The Page `feed` change for a comment on a post (`verb` "add" unless given)."""
    fields = {
        "from": {"id": author_id, "name": "Jo Rivera"},
        "post": {"id": post_id, "permalink_url": f"https://www.facebook.com/{post_id}", "status_type": "added_photos"},
        "message": message,
        "post_id": post_id,
        "comment_id": comment_id,
        "created_time": 1_700_000_000,
        "item": "comment",
        "parent_id": post_id,
        "verb": "add",
        **value,
    }
    return {"field": "feed", "value": {key: item for key, item in fields.items() if item is not None}}


def instagram_comment(
    comment_id: str, author_id: str, text: str | None, *, media_id: str = "17900000000000001", **value: Any
) -> dict[str, Any]:
    """The Instagram `comments` change for a comment on a media."""
    fields = {
        "from": {"id": author_id, "username": "jo.rivera"},
        "media": {"id": media_id, "media_product_type": "FEED"},
        "id": comment_id,
        "text": text,
        **value,
    }
    return {"field": "comments", "value": {key: item for key, item in fields.items() if item is not None}}


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
