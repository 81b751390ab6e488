"""A fake Telegram Bot API on 127.0.0.1: the real HTTP protocol, recorded calls, scripted errors.

Point python-telegram-bot at it with `Bot(token, base_url=api.base_url)`. It serves getMe,
setWebhook, deleteWebhook, getUpdates (long polling over updates queued with `queue_update`),
sendMessage and answerCallbackQuery with the Bot API's response shapes, and can be told to
answer the next call with a Bot API error (a 429 with `parameters.retry_after`, a 500, ...).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from contextlib import suppress
from typing import Any

from aiohttp import web

from tests.fakes.server import FakeAPIServer, Params

TOKEN = "123456:TEST-token-for-the-fake-api"
BOT_USER = {"id": 123456, "is_bot": True, "first_name": "CrowdDesk", "username": "crowddesk_test_bot"}
# Parameters python-telegram-bot sends JSON-encoded inside a form body.
_JSON_PARAMETERS = frozenset({"reply_markup", "allowed_updates", "link_preview_options", "reply_parameters"})


class FakeTelegramAPI(FakeAPIServer):
    """The Bot API under `base_url`; `webhook` is what setWebhook registered (None after delete)."""

    thread_name = "fake-telegram-api"

    def __init__(self, token: str = TOKEN) -> None:
        super().__init__()
        self.token = token
        self.webhook: Params | None = None
        self._updates: list[Params] = []
        self._update_arrived = asyncio.Event()
        self._message_ids = itertools.count(1)
        self._methods: dict[str, Callable[[Params], Any]] = {
            "getMe": lambda _: BOT_USER,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "sendMessage": self._send_message,
            "answerCallbackQuery": lambda _: True,
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    def routes(self, app: web.Application) -> None:
        app.router.add_post("/bot{token}/{method}", self._handle)

    def refuse_next(self, method: str, status: int, description: str, *, retry_after: int | None = None) -> None:
        """Answer the next call of `method` with this Bot API error (429 carries `retry_after`)."""
        body: Params = {"ok": False, "error_code": status, "description": description}
        if retry_after is not None:
            body["parameters"] = {"retry_after": retry_after}
        self.fail_next(method, web.json_response(body, status=status))

    def queue_update(self, update: Params) -> None:
        """Make `update` available to getUpdates (long polls waiting for it return at once)."""
        self._loop.call_soon_threadsafe(self._add_update, update)

    def stop(self) -> None:
        # A long poll still waiting would hold the server's shutdown for its whole timeout.
        self._loop.call_soon_threadsafe(self._update_arrived.set)
        super().stop()

    async def _handle(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        method = request.match_info["method"]
        params = await _parameters(request)
        failure = self.scripted_failure(method, params)
        if failure is not None:
            return failure
        if method == "getUpdates":
            result = await self._get_updates(params)
        elif method in self._methods:
            result = self._methods[method](params)
        else:
            return web.json_response({"ok": False, "error_code": 404, "description": "Not Found"}, status=404)
        self.record(method, params)
        return web.json_response({"ok": True, "result": result})

    def _set_webhook(self, params: Params) -> bool:
        self.webhook = params
        return True

    def _delete_webhook(self, _: Params) -> bool:
        self.webhook = None
        return True

    def _send_message(self, params: Params) -> Params:
        chat_id = str(params["chat_id"])
        return {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "from": BOT_USER,
            "chat": {"id": int(chat_id) if chat_id.lstrip("-").isdigit() else 0, "type": "private"},
            "text": params["text"],
        }

    def _add_update(self, update: Params) -> None:
        self._updates.append(update)
        self._update_arrived.set()

    async def _get_updates(self, params: Params) -> list[Params]:
        # As Telegram does: an offset confirms every update before it, and the call waits up to
        # `timeout` seconds for an update when none is pending.
        offset = int(params.get("offset") or 0)
        self._updates = [u for u in self._updates if u["update_id"] >= offset]
        if not self._updates:
            self._update_arrived.clear()
            with suppress(TimeoutError):
                await asyncio.wait_for(self._update_arrived.wait(), float(params.get("timeout") or 0))
        return list(self._updates)


async def _parameters(request: web.Request) -> Params:
    if request.content_type == "application/json":
        return dict(await request.json())
    form = await request.post()
    return {key: json.loads(str(value)) if key in _JSON_PARAMETERS else str(value) for key, value in form.items()}


def text_update(update_id: int, chat_id: int, text: str) -> Params:
    """A private-chat text message as Telegram delivers it."""
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": int(time.time()),
            "text": text,
            "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada", "username": "ada"},
        },
    }


def callback_update(update_id: int, chat_id: int, data: str) -> Params:
    """An inline-keyboard button press on one of the bot's messages in a private chat."""
    return {
        "update_id": update_id,
        "callback_query": {
            "id": f"cq-{update_id}",
            "chat_instance": "42",
            "data": data,
            "from": {"id": chat_id, "is_bot": False, "first_name": "Ada", "username": "ada"},
            "message": {
                "message_id": 1,
                "date": int(time.time()),
                "text": "Did you mean one of these?",
                "from": BOT_USER,
                "chat": {"id": chat_id, "type": "private", "first_name": "Ada"},
            },
        },
    }
