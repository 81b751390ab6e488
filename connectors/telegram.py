"""Telegram channel on python-telegram-bot: a verified webhook, or long polling for development.

Inbound updates become `InboundMessage`s whose `message_id` is the update_id, so a webhook
delivery Telegram repeats is processed once by the gateway; the sender id is
`telegram:<chat id>` (numeric ids would otherwise collide with other channels' senders), and
`send` posts to that chat. Outbound messages render buttons as an inline keyboard and a
knowledge-base source as a link button.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, Literal

from fastapi import APIRouter, HTTPException, Request, Response
from telegram import Bot, InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.error import (
    BadRequest,
    ChatMigrated,
    Forbidden,
    InvalidToken,
    RetryAfter,
    TelegramError,
)
from telegram.ext import Updater

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
    text_settings,
)
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)

CHANNEL_NAME = "telegram"
SENDER_PREFIX = f"{CHANNEL_NAME}:"
WEBHOOK_PATH = "/webhooks/telegram/webhook"
# Errors found when the bot starts, after credentials.yml was loaded, name the file themselves.
CREDENTIALS_KEY = f"credentials.yml: {CHANNEL_NAME}"
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
DEFAULT_BASE_URL = "https://api.telegram.org/bot"
# Only these update kinds carry customer input; asking for no others saves deliveries.
ALLOWED_UPDATES = ("message", "callback_query")
# Telegram's own limits: secret tokens, and the bytes a button's callback data may hold.
_SECRET_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
CALLBACK_DATA_BYTES = 64
# "/start", "/start@SomeBot" and deep links ("/start ref42") all open a conversation.
_START_COMMAND = re.compile(r"^/start(@\w+)?(\s|$)")
SOURCE_BUTTON_TITLE = "Source"
POLL_TIMEOUT = timedelta(seconds=10)


class _TokenRedactor(logging.Filter):
    """Removes bot tokens from log records: the Bot API puts the token in every request URL,
    which httpx logs at INFO and python-telegram-bot at DEBUG."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(token in message for token in self.tokens):
            for token in self.tokens:
                message = message.replace(token, "<telegram-token>")
            record.msg, record.args = message, None
        return True


_REDACTOR = _TokenRedactor()
for _name in ("httpx", "telegram.Bot"):
    logging.getLogger(_name).addFilter(_REDACTOR)


@dataclass(frozen=True)
class TelegramSettings:
    """The `telegram:` block of credentials.yml, validated."""

    access_token: str = field(repr=False)
    mode: Literal["webhook", "polling"] = "webhook"
    secret_token: str | None = field(default=None, repr=False)
    webhook_url: str | None = None
    verify: str | None = None
    base_url: str = DEFAULT_BASE_URL
    start_payload: str = "/greet"

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> TelegramSettings:
        """Check every key; a `CredentialsError` names the first one that is wrong."""
        reject_unknown_keys(CHANNEL_NAME, block, cls.__dataclass_fields__)
        # Any: `mode` is checked against its Literal below, not by the type of the dict.
        values: dict[str, Any] = text_settings(CHANNEL_NAME, block)
        if "access_token" not in values:
            raise CredentialsError(
                f"{CHANNEL_NAME}.access_token: missing; set it to the token @BotFather gave you, "
                'e.g. access_token: "${TELEGRAM_TOKEN}"'
            )
        mode = values.setdefault("mode", "webhook")
        if mode not in ("webhook", "polling"):
            raise CredentialsError(f"{CHANNEL_NAME}.mode: {mode!r} is not one of: webhook, polling")
        secret = values.get("secret_token")
        if mode == "webhook" and secret is None:
            raise CredentialsError(
                f"{CHANNEL_NAME}.secret_token: missing; webhook mode needs it to reject forged updates "
                "(or set mode: polling for development)"
            )
        if secret is not None and not _SECRET_TOKEN.match(secret):
            raise CredentialsError(f"{CHANNEL_NAME}.secret_token: must be 1-256 characters of A-Z a-z 0-9 _ -")
        if not values.get("webhook_url", "https://").startswith("https://"):
            raise CredentialsError(f"{CHANNEL_NAME}.webhook_url: Telegram only calls https:// URLs")
        return cls(**values)


class TelegramChannel(ChannelConnector):
    """Telegram through python-telegram-bot's `Bot`: webhook or polling in, sendMessage out."""

    name: ClassVar[str] = CHANNEL_NAME
    # Telegram allows about 30 messages a second per bot before it answers 429.
    max_messages_per_second: ClassVar[float] = 30.0

    def __init__(self, settings: TelegramSettings) -> None:
        self.settings = settings
        _REDACTOR.tokens.add(settings.access_token)
        self.bot = Bot(settings.access_token, base_url=settings.base_url)
        self._updater: Updater | None = None
        self._consumer: asyncio.Task[None] | None = None

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> TelegramChannel:
        """Build from the `telegram:` block of credentials.yml."""
        return cls(TelegramSettings.parse(settings))

    def router(self, sink: MessageSink) -> APIRouter | None:
        """POST /webhooks/telegram/webhook in webhook mode; polling mode needs no route."""
        if self.settings.mode != "webhook":
            return None
        router = APIRouter(tags=["channels"])

        @router.post(
            WEBHOOK_PATH,
            summary="Telegram Bot API webhook (updates signed with the secret token)",
            responses={400: {"description": "not a Telegram update"}, 403: {"description": "wrong secret token"}},
        )
        async def webhook(request: Request) -> Response:
            if not self._authentic(request.headers.get(SECRET_HEADER)):
                raise HTTPException(403, f"missing or wrong {SECRET_HEADER} header")
            await self._dispatch(self._parse_update(await request.body()), sink)
            return Response(status_code=200)

        return router

    async def start(self, sink: MessageSink) -> None:
        """Check the token (getMe); then register the webhook, or start polling in polling mode.
        If any step fails, what was started is stopped again before the error propagates."""
        try:
            await self._check_token()
            if self.settings.mode == "polling":
                await self._start_polling(sink)
            elif self.settings.webhook_url:
                await self.bot.set_webhook(
                    self.settings.webhook_url,
                    secret_token=self.settings.secret_token,
                    allowed_updates=ALLOWED_UPDATES,
                )
        except BaseException:
            await self.stop()
            raise

    async def _start_polling(self, sink: MessageSink) -> None:
        self._updater = Updater(self.bot, asyncio.Queue())
        await self._updater.initialize()
        updates = await self._updater.start_polling(timeout=POLL_TIMEOUT, allowed_updates=ALLOWED_UPDATES)
        self._consumer = asyncio.create_task(self._consume(updates, sink), name="telegram-polling")

    async def stop(self) -> None:
        """Stop polling, finish the updates already fetched, and close the HTTP client."""
        if self._updater is not None:
            if self._updater.running:
                await self._updater.stop()
            if self._consumer is not None:
                # Stopping confirmed every fetched update to Telegram, so the queued ones must be
                # handled now: Telegram will not send them again.
                await self._updater.update_queue.put(None)
                await self._consumer
                self._consumer = None
            await self._updater.shutdown()
            self._updater = None
        await self.bot.shutdown()

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """sendMessage with an inline keyboard; Telegram's refusals become `DeliveryError`s."""
        text, markup = _render(message)
        try:
            try:
                await self.bot.send_message(recipient_id.removeprefix(SENDER_PREFIX), text, reply_markup=markup)
            except ChatMigrated as moved:
                # The group became a supergroup with a new id; the message belongs there.
                await self.bot.send_message(moved.new_chat_id, text, reply_markup=markup)
        except RetryAfter as exc:
            raise DeliveryError(str(exc), retry_after=_seconds(exc.retry_after)) from exc
        except (Forbidden, BadRequest) as exc:
            # Blocked by the user, chat not found, malformed message: the same request can never
            # succeed. BadRequest subclasses NetworkError, so this must come before the catch-all.
            raise DeliveryError(str(exc), permanent=True) from exc
        except TelegramError as exc:
            # Network errors, timeouts, 5xx, and a revoked token that an operator can still fix.
            raise DeliveryError(str(exc)) from exc

    def _authentic(self, presented: str | None) -> bool:
        expected = self.settings.secret_token
        if presented is None or expected is None:
            return False
        return hmac.compare_digest(presented.encode(), expected.encode())

    def _parse_update(self, body: bytes) -> Update:
        try:
            data = json.loads(body)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise HTTPException(400, f"request body is not valid JSON ({exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("update_id"), int):
            raise HTTPException(400, "not a Telegram update: expected an object with an integer update_id")
        try:
            return Update.de_json(data, self.bot)
        except (KeyError, TypeError, ValueError) as exc:
            raise HTTPException(400, f"not a Telegram update ({exc!r})") from exc

    async def _check_token(self) -> None:
        try:
            await self.bot.initialize()
        except InvalidToken:
            # The library's message quotes the token; this one must not.
            raise CredentialsError(f"{CREDENTIALS_KEY}.access_token: Telegram rejected the token") from None
        expected = self.settings.verify
        if expected and self.bot.username.lower() != expected.lstrip("@").lower():
            raise CredentialsError(
                f"{CREDENTIALS_KEY}.verify: the token belongs to @{self.bot.username}, not {expected!r}"
            )

    async def _consume(self, updates: asyncio.Queue[object], sink: MessageSink) -> None:
        # `stop` ends the loop with a None once the updater has put its last update in the queue.
        while isinstance(update := await updates.get(), Update):
            try:
                await self._dispatch(update, sink)
            except Exception:
                # One bad update must not end polling for every other customer.
                logger.exception("telegram update %s could not be processed", update.update_id)

    async def _dispatch(self, update: Update, sink: MessageSink) -> None:
        inbound = await self._inbound(update)
        if inbound is None:
            logger.debug("telegram update %s carries no text; ignored", update.update_id)
            return
        await sink(inbound)

    async def _inbound(self, update: Update) -> InboundMessage | None:
        query = update.callback_query
        if query is not None:
            await self._answer(query.id)
            if not query.data:
                return None
            chat_id = query.message.chat.id if query.message is not None else query.from_user.id
            return self._message(update, chat_id, str(query.data))
        message = update.message
        text = (message.text or message.caption) if message is not None else None
        if message is None or not text:
            return None
        if _START_COMMAND.match(text):
            text = self.settings.start_payload
        return self._message(update, message.chat.id, text)

    def _message(self, update: Update, chat_id: int, text: str) -> InboundMessage:
        user = update.effective_user
        metadata = {"user_id": user.id, "username": user.username} if user else {}
        return InboundMessage(
            CHANNEL_NAME,
            f"{SENDER_PREFIX}{chat_id}",
            text,
            message_id=str(update.update_id),
            metadata={key: value for key, value in metadata.items() if value is not None},
        )

    async def _answer(self, callback_query_id: str) -> None:
        # Stops the button's spinner. The press is handled even if this fails, so only log it.
        try:
            await self.bot.answer_callback_query(callback_query_id)
        except TelegramError as exc:
            logger.warning("could not answer telegram callback query: %s", exc)


def _render(message: OutboundMessage) -> tuple[str, InlineKeyboardMarkup | None]:
    """The text and inline keyboard Telegram shows for `message`: one button per row, and the
    knowledge-base source as a link button instead of the plain-text trailer."""
    text = message.text
    rows = [[InlineKeyboardButton(button.title, callback_data=_callback_data(button))] for button in message.buttons]
    source = message.custom.get("source_url")
    if source:
        text = text.removesuffix(f"\n\nSource: {source}")
        rows.append([InlineKeyboardButton(SOURCE_BUTTON_TITLE, url=source)])
    return text, InlineKeyboardMarkup(rows) if rows else None


def _callback_data(button: Button) -> str:
    # Telegram refuses callback data over 64 bytes; such a button sends its title instead,
    # which the bot reads like typed text.
    for data in (button.payload, button.title):
        if len(data.encode()) <= CALLBACK_DATA_BYTES:
            return data
    return button.title.encode()[:CALLBACK_DATA_BYTES].decode(errors="ignore")


def _seconds(period: int | timedelta) -> float:
    # python-telegram-bot returns seconds as int today and timedelta when PTB_TIMEDELTA is set.
    return period.total_seconds() if isinstance(period, timedelta) else float(period)
