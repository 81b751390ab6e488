"""A fake Slack on 127.0.0.1: the Web API under `base_url`, and the signed requests Slack sends.

Point slack_sdk at it with `AsyncWebClient(token, base_url=api.base_url)`. It serves auth.test,
chat.postMessage, chat.update, chat.postEphemeral and reactions.add with Slack's response
shapes and error codes, records accepted calls, and can be told to answer the next call with
a 429 + Retry-After, a 500 or a Slack error code. The request builders sign with slack_sdk's
own `SignatureVerifier`, as Slack signs Events API and interactivity requests.
"""

from __future__ import annotations

import itertools
import json
import time
import uuid
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from tests.fakes.server import FakeAPIServer, Params, Where

BOT_TOKEN = "xoxb-test-bot-token"
SIGNING_SECRET = "test-signing-secret"
TEAM_ID = "T0TEAM"
BOT_USER_ID = "U0BOT"
BOT_ID = "B0BOT"
APP_ID = "A0APP"


class FakeSlackAPI(FakeAPIServer):
    """The Web API methods CrowdDesk calls; `messages` holds what is posted, by (channel, ts),
    and a recorded chat.postMessage call carries the `ts` of the message it created."""

    thread_name = "fake-slack-api"

    def __init__(self, token: str = BOT_TOKEN) -> None:
        super().__init__()
        self.token = token
        self.messages: dict[tuple[str, str], Params] = {}
        self._timestamps = itertools.count(1)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/api/{method}", self._handle)

    def rate_limit_next(self, method: str, retry_after: int = 1, where: Where | None = None) -> None:
        self.fail_next(
            method,
            web.json_response(
                {"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": str(retry_after)}
            ),
            where,
        )

    def server_error_next(self, method: str, where: Where | None = None) -> None:
        self.fail_next(method, web.Response(status=500, text="Internal Server Error"), where)

    def error_next(self, method: str, error: str, where: Where | None = None) -> None:
        """Slack's way of refusing: HTTP 200 with `ok: false` and an error code."""
        self.fail_next(method, web.json_response({"ok": False, "error": error}), where)

    async def _handle(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"ok": False, "error": "invalid_auth"})
        params = await _parameters(request)
        failure = self.scripted_failure(method, params)
        if failure is not None:
            return failure
        handler = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "reactions.add": lambda _: {},
        }.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        result = handler(params)
        if "error" in result:
            return web.json_response({"ok": False, **result})
        # A posted message is recorded with the `ts` Slack gave it: its id for updates and threads.
        self.record(method, {**params, "ts": result["ts"]} if method == "chat.postMessage" else params)
        return web.json_response({"ok": True, **result})

    def _auth_test(self, _: Params) -> Params:
        return {
            "url": "https://crowddesk-test.slack.com/",
            "team": "CrowdDesk Test",
            "user": "crowddesk",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _post_message(self, params: Params) -> Params:
        if not params.get("channel"):
            return {"error": "channel_not_found"}
        if not params.get("text") and not params.get("blocks"):
            return {"error": "no_text"}
        ts = f"{1_700_000_000 + next(self._timestamps)}.000100"
        message = {
            "type": "message",
            "user": BOT_USER_ID,
            "bot_id": BOT_ID,
            "ts": ts,
            "text": params.get("text", ""),
            "blocks": params.get("blocks", []),
        }
        if params.get("thread_ts"):
            message["thread_ts"] = params["thread_ts"]
        self.messages[(params["channel"], ts)] = message
        return {"channel": params["channel"], "ts": ts, "message": message}

    def _update(self, params: Params) -> Params:
        key = (params.get("channel", ""), params.get("ts", ""))
        if key not in self.messages:
            return {"error": "message_not_found"}
        self.messages[key].update(text=params.get("text", ""), blocks=params.get("blocks", []))
        return {"channel": key[0], "ts": key[1], "text": params.get("text", "")}

    def _post_ephemeral(self, params: Params) -> Params:
        if not params.get("channel") or not params.get("user"):
            return {"error": "channel_not_found" if not params.get("channel") else "user_not_found"}
        return {"message_ts": f"{1_700_000_000 + next(self._timestamps)}.000200"}


async def _parameters(request: web.Request) -> Params:
    params: Params = dict(request.query)
    if request.content_type == "application/json":
        params.update(await request.json())
    else:
        params.update({key: str(value) for key, value in (await request.post()).items()})
    if isinstance(params.get("blocks"), str):
        params["blocks"] = json.loads(params["blocks"])
    return params


# -- requests as Slack sends them ---------------------------------------------------------


def signed_headers(
    body: str, *, secret: str = SIGNING_SECRET, content_type: str = "application/json", timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with `body`, signed with `secret`."""
    stamp = str(timestamp if timestamp is not None else int(time.time()))
    signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body)
    return {"Content-Type": content_type, "X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signature}


def event_callback(event: Params, event_id: str | None = None) -> str:
    """An Events API `event_callback` envelope around `event`, as JSON."""
    return json.dumps(
        {
            "token": "unused-verification-token",
            "team_id": TEAM_ID,
            "api_app_id": APP_ID,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{uuid.uuid4().hex[:10].upper()}",
            "event_time": int(time.time()),
            "authorizations": [{"team_id": TEAM_ID, "user_id": BOT_USER_ID, "is_bot": True}],
        }
    )


def direct_message(channel: str, user: str, text: str, **extra: Any) -> Params:
    """A `message` event in a direct message with the app (message.im)."""
    return {
        "type": "message",
        "channel": channel,
        "user": user,
        "text": text,
        "channel_type": "im",
        "ts": f"{time.time():.6f}",
        "event_ts": f"{time.time():.6f}",
        **extra,
    }


def channel_message(channel: str, user: str, text: str, **extra: Any) -> Params:
    """A `message` event in a channel the app is in (message.channels)."""
    return {**direct_message(channel, user, text, **extra), "channel_type": "channel"}


def mention(channel: str, user: str, text: str) -> Params:
    """An `app_mention` event: someone wrote @crowddesk in a channel."""
    return {
        "type": "app_mention",
        "channel": channel,
        "user": user,
        "text": f"<@{BOT_USER_ID}> {text}",
        "ts": f"{time.time():.6f}",
        "event_ts": f"{time.time():.6f}",
    }


def block_actions(
    channel: str, user: str, action_id: str, value: str, *, message_ts: str = "1.0", user_name: str = "ada"
) -> str:
    """A button press on a message (interactivity), form-encoded as Slack posts it."""
    payload = {
        "type": "block_actions",
        "api_app_id": APP_ID,
        "token": "unused-verification-token",
        "team": {"id": TEAM_ID, "domain": "crowddesk-test"},
        "user": {"id": user, "username": user_name, "name": user_name, "team_id": TEAM_ID},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "trigger_id": f"{int(time.time())}.{uuid.uuid4().int % 10**12}.{uuid.uuid4().hex}",
        "channel": {"id": channel, "name": "directmessage"},
        "message": {"type": "message", "ts": message_ts, "user": BOT_USER_ID, "bot_id": BOT_ID, "text": ""},
        "response_url": "http://127.0.0.1:9/unused-response-url",
        "actions": [
            {
                "type": "button",
                "action_id": action_id,
                "block_id": "b1",
                "value": value,
                "text": {"type": "plain_text", "text": value},
                "action_ts": f"{time.time():.6f}",
            }
        ],
    }
    return urlencode({"payload": json.dumps(payload)})
