"""A fake X API v2 on 127.0.0.1: create_tweet and one-to-one Direct Messages with X's shapes
and errors, and the signed Account Activity webhook events X sends.

Point the channel at it with `api_url: api.base_url`. It checks that requests carry the app's
and the account's OAuth 1.0a keys, records each accepted call (method "tweets": text,
in_reply_to_tweet_id, id; method "dms": participant_id, text) and can answer the next call with
an X error (a 429 with `x-rate-limit-reset`, a 503, a 403...).
"""

from __future__ import annotations

import itertools
import json
import time
from typing import Any

from aiohttp import web

from crowddesk.connectors.x import SIGNATURE_HEADER, signature
from tests.fakes.server import FakeAPIServer, Params

CONSUMER_KEY = "x-consumer-key-for-tests"
CONSUMER_SECRET = "x-consumer-secret-for-tests"
ACCESS_TOKEN = "1500000000000000000-x-access-token-for-tests"
ACCESS_TOKEN_SECRET = "x-access-token-secret-for-tests"
ACCOUNT_ID = "1500000000000000000"  # the support account, @AcmeSupport
ACCOUNT_HANDLE = "AcmeSupport"


class FakeXAPI(FakeAPIServer):
    """The v2 endpoints the channel uses, for one account."""

    thread_name = "fake-x-api"

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1_900_000_000_000_000_000)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/2/tweets", self._create_tweet)
        app.router.add_post("/2/dm_conversations/with/{participant_id}/messages", self._create_dm)

    def refuse_next(self, method: str, status: int, detail: str, *, reset_in: int | None = None) -> None:
        """Answer the next call of `method` ("tweets" or "dms") with this X error."""
        body = {"title": detail, "detail": detail, "type": "about:blank", "status": status}
        headers = {} if reset_in is None else {"x-rate-limit-reset": str(int(time.time()) + reset_in)}
        self.fail_next(method, web.json_response(body, status=status, headers=headers))

    async def _create_tweet(self, request: web.Request) -> web.Response:
        refused = _unauthorized(request)
        if refused is not None:
            return refused
        body = await request.json()
        params: Params = {
            "text": body.get("text"),
            "in_reply_to_tweet_id": (body.get("reply") or {}).get("in_reply_to_tweet_id"),
        }
        failure = self.scripted_failure("tweets", params)
        if failure is not None:
            return failure
        tweet_id = str(next(self._ids))
        self.record("tweets", {**params, "id": tweet_id})
        return web.json_response({"data": {"id": tweet_id, "text": params["text"]}}, status=201)

    async def _create_dm(self, request: web.Request) -> web.Response:
        refused = _unauthorized(request)
        if refused is not None:
            return refused
        body = await request.json()
        params: Params = {"participant_id": request.match_info["participant_id"], "text": body.get("text")}
        failure = self.scripted_failure("dms", params)
        if failure is not None:
            return failure
        self.record("dms", params)
        data = {"dm_conversation_id": f"{ACCOUNT_ID}-{params['participant_id']}", "dm_event_id": str(next(self._ids))}
        return web.json_response({"data": data}, status=201)


def _unauthorized(request: web.Request) -> web.Response | None:
    authorization = request.headers.get("Authorization", "")
    if (
        authorization.startswith("OAuth ")
        and f'oauth_consumer_key="{CONSUMER_KEY}"' in authorization
        and f'oauth_token="{ACCESS_TOKEN}"' in authorization
    ):
        return None
    body = {"title": "Unauthorized", "detail": "Unauthorized", "type": "about:blank", "status": 401}
    return web.json_response(body, status=401)


def mention(
    tweet_id: str,
    user_id: str,
    text: str,
    *,
    handle: str = "customer",
    followers: int = 120,
    in_reply_to: str | None = None,
) -> dict[str, Any]:
    """A `tweet_create_events` entry: a tweet by `user_id` that mentions the account."""
    full_text = f"@{ACCOUNT_HANDLE} {text}"
    return {
        "created_at": "Mon Jun 01 18:15:00 +0000 2026",
        "id": int(tweet_id),
        "id_str": tweet_id,
        "text": full_text[:140],
        "truncated": len(full_text) > 140,
        **({"extended_tweet": {"full_text": full_text}} if len(full_text) > 140 else {}),
        "in_reply_to_status_id_str": in_reply_to,
        "user": {"id": int(user_id), "id_str": user_id, "screen_name": handle, "followers_count": followers},
        "entities": {
            "user_mentions": [
                {"screen_name": ACCOUNT_HANDLE, "id": int(ACCOUNT_ID), "id_str": ACCOUNT_ID, "indices": [0, 12]}
            ]
        },
    }


def direct_message(event_id: str, sender_id: str, text: str, quick_reply: str | None = None) -> dict[str, Any]:
    """A `direct_message_events` entry: a DM from `sender_id` (the account's own id for the DMs
    it sent, which X delivers too)."""
    recipient = ACCOUNT_ID if sender_id != ACCOUNT_ID else "1"
    data: dict[str, Any] = {"text": text, "entities": {"hashtags": [], "urls": [], "user_mentions": []}}
    if quick_reply is not None:
        data["quick_reply_response"] = {"type": "options", "metadata": quick_reply}
    return {
        "type": "message_create",
        "id": event_id,
        "created_timestamp": str(int(time.time() * 1000)),
        "message_create": {"target": {"recipient_id": recipient}, "sender_id": sender_id, "message_data": data},
    }


def events(tweets: list[dict[str, Any]] | None = None, dms: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The Account Activity payload X posts for the account."""
    payload: dict[str, Any] = {"for_user_id": ACCOUNT_ID}
    if tweets:
        payload["tweet_create_events"] = tweets
    if dms:
        payload["direct_message_events"] = dms
    return payload


def signed(payload: dict[str, Any], secret: str = CONSUMER_SECRET) -> tuple[bytes, dict[str, str]]:
    """The body and headers X sends with `payload`."""
    body = json.dumps(payload).encode()
    return body, {"Content-Type": "application/json", SIGNATURE_HEADER: signature(body, secret)}
