"""The Telegram channel: real python-telegram-bot against a fake Bot API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crowddesk.bot.project.credentials import build_channels, load_credentials
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.telegram import SECRET_HEADER, WEBHOOK_PATH, TelegramChannel
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.demo_bot import API_ACCESS, API_AUTH
from tests.fakes.telegram_api import (
    TOKEN,
    FakeTelegramAPI,
    callback_update,
    text_update,
)

SECRET = "s3cret-token_for-tests"
CHAT = 4242
SENDER = f"telegram:{CHAT}"


@pytest.fixture()
def telegram_api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as api:
        yield api


def channel_for(api: FakeTelegramAPI, **settings: str) -> TelegramChannel:
    block = {"access_token": TOKEN, "secret_token": SECRET, "base_url": api.base_url, **settings}
    return TelegramChannel.from_credentials(block)


class RecordingSink:
    """Stands in for the gateway: records what the connector hands to the bot."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.arrived = asyncio.Event()

    async def __call__(self, message: InboundMessage) -> list[OutboundMessage]:
        self.messages.append(message)
        self.arrived.set()
        return []


@asynccontextmanager
async def webhook_client(channel: TelegramChannel, sink: RecordingSink) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    router = channel.router(sink)
    assert router is not None
    app.include_router(router)
    await channel.start(sink)
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            yield client
    finally:
        await channel.stop()


def run_webhook(
    api: FakeTelegramAPI, scenario: Callable[[httpx.AsyncClient, RecordingSink], Awaitable[Any]], **settings: str
) -> RecordingSink:
    sink = RecordingSink()

    async def go() -> None:
        async with webhook_client(channel_for(api, **settings), sink) as client:
            await scenario(client, sink)

    asyncio.run(go())
    return sink


def deliver(
    client: httpx.AsyncClient, update: dict[str, Any], secret: str | None = SECRET
) -> Awaitable[httpx.Response]:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    return client.post(WEBHOOK_PATH, json=update, headers=headers)


# --- credentials ---------------------------------------------------------------------------------


def test_credentials_missing_access_token_names_the_key() -> None:
    with pytest.raises(CredentialsError, match="access_token: missing"):
        TelegramChannel.from_credentials({"secret_token": SECRET})


def test_webhook_mode_requires_a_secret_token() -> None:
    with pytest.raises(CredentialsError, match="secret_token: missing"):
        TelegramChannel.from_credentials({"access_token": TOKEN, "webhook_url": "https://bot.example/hook"})


@pytest.mark.parametrize(
    ("block", "message"),
    [
        ({"mode": "webhooks"}, "mode: 'webhooks' is not one of: webhook, polling"),
        ({"secret_token": "has spaces"}, "secret_token: must be 1-256 characters"),
        ({"webhook_url": "http://bot.example/hook"}, "webhook_url: Telegram only calls https:// URLs"),
        ({"acess_token": "x"}, "acess_token: unknown key; expected one of: access_token, base_url"),
        ({"verify": 42}, "verify: expected a string, got int"),
    ],
)
def test_credentials_errors_name_the_key(block: dict[str, Any], message: str) -> None:
    with pytest.raises(CredentialsError, match=message):
        TelegramChannel.from_credentials({"access_token": TOKEN, "secret_token": SECRET, **block})


def test_a_bad_block_in_credentials_yml_points_at_the_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "credentials.yml"
    path.write_text('telegram:\n  access_token: "${TELEGRAM_TOKEN}"\n  mode: webhook\n', encoding="utf-8")
    with pytest.raises(ProjectFileError) as caught:
        build_channels(load_credentials(path, root=tmp_path), {"TELEGRAM_TOKEN": TOKEN})
    assert str(caught.value).startswith("credentials.yml:1: telegram.secret_token: missing")
    assert TOKEN not in str(caught.value)


def test_polling_mode_needs_only_the_token_and_mounts_no_webhook() -> None:
    channel = TelegramChannel.from_credentials({"access_token": TOKEN, "mode": "polling"})
    assert channel.router(RecordingSink()) is None
    assert TOKEN not in repr(channel.settings)


# --- webhook -------------------------------------------------------------------------------------


def test_start_registers_the_webhook_with_its_secret(telegram_api: FakeTelegramAPI) -> None:
    async def nothing(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        pass

    run_webhook(telegram_api, nothing, webhook_url="https://bot.example/webhooks/telegram/webhook")
    assert telegram_api.webhook is not None
    assert telegram_api.webhook["url"] == "https://bot.example/webhooks/telegram/webhook"
    assert telegram_api.webhook["secret_token"] == SECRET
    assert telegram_api.webhook["allowed_updates"] == ["message", "callback_query"]


def test_start_refuses_a_token_of_another_bot(telegram_api: FakeTelegramAPI) -> None:
    channel = channel_for(telegram_api, verify="@someone_elses_bot")
    with pytest.raises(CredentialsError, match="the token belongs to @crowddesk_test_bot"):
        asyncio.run(channel.start(RecordingSink()))


def test_start_with_a_rejected_token_does_not_reveal_it(telegram_api: FakeTelegramAPI) -> None:
    channel = channel_for(telegram_api, access_token="999:not-the-right-token")
    with pytest.raises(CredentialsError, match="Telegram rejected the token") as error:
        asyncio.run(channel.start(RecordingSink()))
    assert "not-the-right-token" not in str(error.value)


def test_text_message_reaches_the_bot_with_update_id_as_message_id(telegram_api: FakeTelegramAPI) -> None:
    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        response = await deliver(client, text_update(1001, CHAT, "my card hasn't arrived"))
        assert response.status_code == 200

    sink = run_webhook(telegram_api, scenario)
    assert sink.messages == [
        InboundMessage(
            "telegram",
            SENDER,
            "my card hasn't arrived",
            message_id="1001",
            metadata={"user_id": CHAT, "username": "ada"},
        )
    ]


@pytest.mark.parametrize("text", ["/start", "/start@crowddesk_test_bot", "/start campaign42"])
def test_start_command_greets(telegram_api: FakeTelegramAPI, text: str) -> None:
    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        await deliver(client, text_update(7, CHAT, text))

    assert [m.text for m in run_webhook(telegram_api, scenario).messages] == ["/greet"]


def test_button_press_is_the_payload_and_stops_the_spinner(telegram_api: FakeTelegramAPI) -> None:
    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        response = await deliver(client, callback_update(2002, CHAT, "/faq/card_arrival"))
        assert response.status_code == 200

    sink = run_webhook(telegram_api, scenario)
    assert [(m.sender_id, m.text, m.message_id) for m in sink.messages] == [(SENDER, "/faq/card_arrival", "2002")]
    assert [call["callback_query_id"] for call in telegram_api.calls("answerCallbackQuery")] == ["cq-2002"]


@pytest.mark.parametrize("secret", [None, "wrong-secret", SECRET + "x"])
def test_wrong_or_missing_secret_is_rejected_and_nothing_reaches_the_bot(
    telegram_api: FakeTelegramAPI, secret: str | None
) -> None:
    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        response = await deliver(client, text_update(3003, CHAT, "hello"), secret=secret)
        assert response.status_code == 403
        assert SECRET_HEADER in response.json()["detail"]

    assert run_webhook(telegram_api, scenario).messages == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "not valid JSON"),
        (b'{"message": {}}', "integer update_id"),
        (b"[1, 2]", "integer update_id"),
    ],
)
def test_malformed_update_is_a_400_with_a_reason(telegram_api: FakeTelegramAPI, body: bytes, reason: str) -> None:
    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        response = await client.post(WEBHOOK_PATH, content=body, headers={SECRET_HEADER: SECRET})
        assert response.status_code == 400
        assert reason in response.json()["detail"]

    assert run_webhook(telegram_api, scenario).messages == []


def test_updates_without_text_are_acknowledged_and_ignored(telegram_api: FakeTelegramAPI) -> None:
    sticker = text_update(4004, CHAT, "")
    del sticker["message"]["text"]
    sticker["message"]["sticker"] = {
        "file_id": "f",
        "file_unique_id": "u",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "type": "regular",
    }

    async def scenario(client: httpx.AsyncClient, sink: RecordingSink) -> None:
        assert (await deliver(client, sticker)).status_code == 200
        assert (await deliver(client, {"update_id": 4005})).status_code == 200

    assert run_webhook(telegram_api, scenario).messages == []


# --- polling -------------------------------------------------------------------------------------


def test_polling_hands_updates_to_the_bot_and_stops_cleanly(telegram_api: FakeTelegramAPI) -> None:
    telegram_api.queue_update(text_update(10, CHAT, "hello"))
    channel = TelegramChannel.from_credentials(
        {"access_token": TOKEN, "mode": "polling", "base_url": telegram_api.base_url}
    )
    sink = RecordingSink()

    async def go() -> None:
        await channel.start(sink)
        try:
            await sink.arrived.wait()
            sink.arrived.clear()
            telegram_api.queue_update(callback_update(11, CHAT, "/human_handoff"))
            await sink.arrived.wait()
        finally:
            await channel.stop()

    asyncio.run(go())
    assert [(m.text, m.message_id) for m in sink.messages] == [("hello", "10"), ("/human_handoff", "11")]
    assert telegram_api.calls("deleteWebhook"), "polling must remove a webhook Telegram would otherwise use"
    # Stopping confirms the last update, so a restart does not process it again.
    assert int(telegram_api.calls("getUpdates")[-1]["offset"]) == 12


# --- sending -------------------------------------------------------------------------------------


def send(api: FakeTelegramAPI, message: OutboundMessage, recipient: str = SENDER) -> None:
    channel = channel_for(api)

    async def go() -> None:
        await channel.start(RecordingSink())
        try:
            await channel.send(recipient, message)
        finally:
            await channel.stop()

    asyncio.run(go())


def test_buttons_become_an_inline_keyboard(telegram_api: FakeTelegramAPI) -> None:
    send(
        telegram_api,
        OutboundMessage(
            SENDER,
            "Did you mean one of these?",
            (
                Button("Card not arrived", "/faq/card_arrival"),
                Button("Talk to a person", "/human_handoff"),
            ),
        ),
    )
    [call] = telegram_api.calls("sendMessage")
    assert call["chat_id"] == str(CHAT)
    assert call["text"] == "Did you mean one of these?"
    assert call["reply_markup"] == {
        "inline_keyboard": [
            [{"text": "Card not arrived", "callback_data": "/faq/card_arrival"}],
            [{"text": "Talk to a person", "callback_data": "/human_handoff"}],
        ]
    }


def test_a_payload_too_long_for_telegram_sends_the_title(telegram_api: FakeTelegramAPI) -> None:
    payload = '/inform_order_number{"order_number": "' + "9" * 60 + '"}'
    send(telegram_api, OutboundMessage(SENDER, "Which order?", (Button("My last order", payload),)))
    [call] = telegram_api.calls("sendMessage")
    assert call["reply_markup"]["inline_keyboard"] == [[{"text": "My last order", "callback_data": "My last order"}]]


def test_knowledge_base_source_is_a_link_button(telegram_api: FakeTelegramAPI) -> None:
    url = "https://community.example.com/t/123"
    send(
        telegram_api,
        OutboundMessage(
            SENDER,
            f"Cards arrive within 5 working days.\n\nSource: {url}",
            custom={"kb_entry": "faq/card_arrival", "source_url": url},
        ),
    )
    [call] = telegram_api.calls("sendMessage")
    assert call["text"] == "Cards arrive within 5 working days."
    assert call["reply_markup"] == {"inline_keyboard": [[{"text": "Source", "url": url}]]}


def test_plain_text_has_no_keyboard(telegram_api: FakeTelegramAPI) -> None:
    send(telegram_api, OutboundMessage(SENDER, "Goodbye!"))
    [call] = telegram_api.calls("sendMessage")
    assert "reply_markup" not in call


@pytest.mark.parametrize(
    ("status", "description", "retry_after", "permanent"),
    [
        (429, "Too Many Requests: retry after 3", 3.0, False),
        (500, "Internal Server Error", None, False),
        (502, "Bad Gateway", None, False),
        (400, "Bad Request: chat not found", None, True),
        (403, "Forbidden: bot was blocked by the user", None, True),
    ],
)
def test_platform_refusals_become_delivery_errors(
    telegram_api: FakeTelegramAPI,
    status: int,
    description: str,
    retry_after: float | None,
    permanent: bool,
) -> None:
    telegram_api.refuse_next("sendMessage", status, description, retry_after=3 if status == 429 else None)
    with pytest.raises(DeliveryError) as error:
        send(telegram_api, OutboundMessage(SENDER, "hello"))
    assert (error.value.retry_after, error.value.permanent) == (retry_after, permanent)
    assert telegram_api.calls("sendMessage") == []


def test_unreachable_api_is_a_retryable_delivery_error() -> None:
    with FakeTelegramAPI() as api:
        channel = channel_for(api)
    # The fake has stopped: nothing listens on its port any more.

    async def go() -> None:
        try:
            await channel.send(SENDER, OutboundMessage(SENDER, "hello"))
        finally:
            await channel.stop()

    with pytest.raises(DeliveryError) as error:
        asyncio.run(go())
    assert not error.value.permanent and error.value.retry_after is None


def test_the_token_never_reaches_the_logs(telegram_api: FakeTelegramAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send(telegram_api, OutboundMessage(SENDER, "hello"))
    assert "sendMessage" in caplog.text
    assert TOKEN not in caplog.text


# --- end to end through `crowddesk run`'s server -------------------------------------------------


@dataclass(frozen=True)
class TelegramBot:
    """The demo bot's server (`client`) and the fake Bot API its Telegram channel talks to."""

    api: FakeTelegramAPI
    client: TestClient


CREDENTIALS = """\
rest:
telegram:
  access_token: "${TELEGRAM_TOKEN}"
  secret_token: "${TELEGRAM_SECRET_TOKEN}"
  webhook_url: "https://bot.example/webhooks/telegram/webhook"
  base_url: "%s"
"""


@pytest.fixture(scope="module")
def telegram_bot(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TelegramBot]:
    """The demo bot with a Telegram channel in its credentials.yml, talking to the fake API."""
    directory = tmp_path_factory.mktemp("telegram")
    with FakeTelegramAPI() as api, pytest.MonkeyPatch.context() as env:
        env.setenv("TELEGRAM_TOKEN", TOKEN)
        env.setenv("TELEGRAM_SECRET_TOKEN", SECRET)
        credentials = directory / "credentials.yml"
        credentials.write_text(CREDENTIALS % api.base_url, encoding="utf-8")
        bot = assemble(
            demo_project,
            model_dir=demo_training.model_dir,
            credentials=credentials,
            database_url=f"sqlite:///{directory / 'crowddesk.db'}",
            action_endpoint=action_server_url,
        )
        with TestClient(create_app(bot, API_ACCESS)) as client:
            yield TelegramBot(api, client)


_ids = itertools.count(100_000)


def new_chat() -> int:
    return next(_ids)


def post_update(bot: TelegramBot, update: dict[str, Any], secret: str = SECRET) -> httpx.Response:
    return bot.client.post(WEBHOOK_PATH, json=update, headers={SECRET_HEADER: secret})


def replies_to(bot: TelegramBot, chat: int, count: int) -> list[dict[str, Any]]:
    """Wait for the bot's first `count` messages to `chat`."""
    return bot.api.wait_for("sendMessage", count, where=lambda call: call["chat_id"] == str(chat))


def test_server_registers_its_webhook_on_start(telegram_bot: TelegramBot) -> None:
    assert telegram_bot.api.webhook is not None
    assert telegram_bot.api.webhook["url"] == "https://bot.example/webhooks/telegram/webhook"
    assert telegram_bot.api.webhook["secret_token"] == SECRET


def test_a_question_on_telegram_is_answered(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    assert post_update(telegram_bot, text_update(next(_ids), chat, "/start")).status_code == 200
    [greeting] = replies_to(telegram_bot, chat, 1)
    titles = [row[0]["text"] for row in greeting["reply_markup"]["inline_keyboard"]]
    assert "Card not arrived" in titles

    post_update(
        telegram_bot, text_update(next(_ids), chat, "I ordered a card two weeks ago and it still hasn't arrived")
    )
    answer = replies_to(telegram_bot, chat, 2)[-1]
    assert "Source:" not in answer["text"]
    assert any(button.get("url") for row in answer["reply_markup"]["inline_keyboard"] for button in row)


def test_a_button_press_on_telegram_works(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    update = callback_update(next(_ids), chat, "/faq/card_arrival")
    assert post_update(telegram_bot, update).status_code == 200
    [answer] = replies_to(telegram_bot, chat, 1)
    assert answer["text"]
    answered = telegram_bot.api.calls("answerCallbackQuery")
    assert update["callback_query"]["id"] in [call["callback_query_id"] for call in answered]
    events = telegram_bot.client.get(f"/conversations/telegram:{chat}/tracker", headers=API_AUTH).json()["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["/faq/card_arrival"]


def test_a_forged_update_is_rejected_and_nothing_is_stored(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    response = post_update(telegram_bot, text_update(next(_ids), chat, "hello"), secret="forged")
    assert response.status_code == 403
    assert telegram_bot.client.get(f"/conversations/telegram:{chat}/tracker", headers=API_AUTH).json()["events"] == []


def test_a_duplicate_update_gets_one_reply(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    hello = text_update(next(_ids), chat, "/start")
    assert post_update(telegram_bot, hello).status_code == 200
    assert post_update(telegram_bot, hello).status_code == 200
    post_update(telegram_bot, text_update(next(_ids), chat, "/thanks"))
    # Replies to one chat are delivered in order, so once the thanks arrived, a reply to the
    # duplicate would already be there too.
    replies = replies_to(telegram_bot, chat, 2)
    domain = telegram_bot.client.app.state.bot.project.domain
    thanks = [variation.text for variation in domain.responses["utter_thanks"]]
    assert len(replies) == 2 and replies[1]["text"] in thanks


def test_a_429_from_telegram_still_delivers_the_reply_exactly_once(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    refused = telegram_bot.api.refusals("sendMessage")
    telegram_bot.api.refuse_next("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    post_update(telegram_bot, text_update(next(_ids), chat, "/start"))
    post_update(telegram_bot, text_update(next(_ids), chat, "/thanks"))
    replies = replies_to(telegram_bot, chat, 2)
    assert telegram_bot.api.refusals("sendMessage") == refused + 1
    assert len(replies) == 2 and replies[0]["reply_markup"]["inline_keyboard"]


def test_an_agents_reply_after_handoff_reaches_the_telegram_chat(telegram_bot: TelegramBot) -> None:
    chat = new_chat()
    post_update(telegram_bot, text_update(next(_ids), chat, "/human_handoff"))
    replies_to(telegram_bot, chat, 1)
    client = telegram_bot.client
    ticket = client.get(f"/conversations/telegram:{chat}/tracker", headers=API_AUTH).json()["handoff"]
    assert ticket is not None

    agents = client.app.state.bot.agents
    agent_id = f"agent-{chat}"
    agents.add(agent_id, "Ana Agent")
    auth = {"Authorization": f"Bearer {agents.issue_token(agent_id)}"}
    assert client.post(f"/desk/api/tickets/{ticket['id']}/claim", headers=auth).status_code == 200
    reply = client.post(
        f"/desk/api/tickets/{ticket['id']}/reply",
        headers=auth,
        json={"text": "Hi, Ana here. Let me look at your card order."},
    )
    assert reply.status_code == 200, reply.text
    [delivered] = telegram_bot.api.wait_for(
        "sendMessage", where=lambda call: call["chat_id"] == str(chat) and call["text"].startswith("Hi, Ana")
    )
    assert delivered["text"] == "Hi, Ana here. Let me look at your card order."
