"""The WhatsApp channel: the real `pywa` client against a fake Cloud API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI

from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.meta.whatsapp import WEBHOOK_PATH, WhatsAppChannel
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.channel_bots import ChannelBot, RecordingSink, serving_demo_bot
from tests.demo_bot import API_AUTH, agent_headers
from tests.fakes.server import Params
from tests.fakes.whatsapp_api import (
    ACCESS_TOKEN,
    APP_SECRET,
    PHONE_NUMBER_ID,
    VERIFY_TOKEN,
    FakeWhatsAppAPI,
    button_reply,
    delivery,
    list_reply,
    signed,
    status,
    text_message,
)

WA_ID = "15551230001"
SENDER = f"whatsapp:{WA_ID}"
BLOCK = {
    "phone_number_id": PHONE_NUMBER_ID,
    "access_token": ACCESS_TOKEN,
    "app_secret": APP_SECRET,
    "verify_token": VERIFY_TOKEN,
}
TEMPLATE = {"name": "agent_reply", "language": "en_US"}
DAY = 24 * 3600


@pytest.fixture()
def whatsapp_api() -> Iterator[FakeWhatsAppAPI]:
    with FakeWhatsAppAPI() as api:
        yield api


def channel_for(api: FakeWhatsAppAPI, **change: Any) -> WhatsAppChannel:
    return WhatsAppChannel.from_credentials({**BLOCK, "api_url": api.base_url, **change})


@asynccontextmanager
async def webhook_client(channel: WhatsAppChannel, sink: RecordingSink) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client for the channel's webhook routes; the channel is stopped afterwards."""
    app = FastAPI()
    app.include_router(channel.router(sink))
    try:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            yield client
    finally:
        await channel.stop()


async def post(client: httpx.AsyncClient, payload: dict[str, Any], secret: str = APP_SECRET) -> httpx.Response:
    body, headers = signed(payload, secret)
    return await client.post(WEBHOOK_PATH, content=body, headers=headers)


def receive(channel: WhatsAppChannel, *payloads: dict[str, Any]) -> tuple[list[int], list[InboundMessage]]:
    """Post each webhook payload, signed; the HTTP statuses and what reached the bot."""
    sink = RecordingSink()

    async def go() -> list[int]:
        async with webhook_client(channel, sink) as client:
            return [(await post(client, payload)).status_code for payload in payloads]

    return asyncio.run(go()), sink.messages


def send(channel: WhatsAppChannel, message: OutboundMessage) -> None:
    async def go() -> None:
        try:
            await channel.send(message.recipient_id, message)
        finally:
            await channel.stop()

    asyncio.run(go())


def shown(message: Params) -> str:
    """The text the customer reads in one message the API accepted."""
    kind = message["type"]
    if kind == "text":
        return str(message["text"]["body"])
    if kind == "interactive":
        return str(message["interactive"]["body"]["text"])
    if kind == "template":
        [component] = message["template"]["components"]
        return str(component["parameters"][0]["text"])
    return str(message[kind].get("link"))


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"access_token": None}, "whatsapp.access_token: missing"),
        ({"app_secret": ""}, "whatsapp.app_secret: missing"),
        ({"verify_token": None}, "whatsapp.verify_token: missing"),
        ({"phone_number_id": 106540352242922}, "whatsapp.phone_number_id: expected a string, got int"),
        ({"phone_id": "1"}, "whatsapp.phone_id: unknown key; expected one of: access_token, api_url"),
        ({"api_version": "v21"}, "whatsapp.api_version: 'v21' is not a Graph API version"),
        ({"api_url": "graph.facebook.com"}, "whatsapp.api_url: expected an http"),
        ({"window_template": "agent_reply"}, "whatsapp.window_template: expected a mapping"),
        ({"window_template": {"name": "agent_reply"}}, "whatsapp.window_template.language: missing"),
        ({"window_template": {**TEMPLATE, "language": "english"}}, "window_template.language: 'english' is not"),
        ({"window_template": {**TEMPLATE, "lang": "en"}}, "whatsapp.window_template.lang: unknown key"),
    ],
)
def test_credentials_errors_name_the_key(change: dict[str, Any], error: str) -> None:
    block = {key: value for key, value in {**BLOCK, **change}.items() if value is not None}
    with pytest.raises(CredentialsError, match=error) as raised:
        WhatsAppChannel.from_credentials(block)
    assert ACCESS_TOKEN not in str(raised.value) and APP_SECRET not in str(raised.value)


def test_the_secrets_are_not_in_the_settings_repr() -> None:
    text = repr(WhatsAppChannel.from_credentials({**BLOCK, "window_template": TEMPLATE}).settings)
    assert PHONE_NUMBER_ID in text and "agent_reply" in text
    assert all(secret not in text for secret in (ACCESS_TOKEN, APP_SECRET, VERIFY_TOKEN))


# --- webhook -------------------------------------------------------------------------------------


def test_a_list_reply_reaches_the_bot_as_its_payload_and_statuses_are_ignored(whatsapp_api: FakeWhatsAppAPI) -> None:
    statuses, messages = receive(
        channel_for(whatsapp_api),
        delivery(statuses=(status(WA_ID, "wamid.OUT1", "sent"), status(WA_ID, "wamid.OUT1", "delivered"))),
        delivery(list_reply(WA_ID, "/faq/card_arrival", "Card not arrived", "wamid.IN1")),
        delivery(statuses=(status(WA_ID, "wamid.OUT1", "read"),)),
    )
    assert statuses == [200, 200, 200]
    assert messages == [InboundMessage("whatsapp", SENDER, "/faq/card_arrival", message_id="wamid.IN1")]
    assert [call["message_id"] for call in whatsapp_api.calls("read")] == ["wamid.IN1"]


def test_messages_to_another_number_and_stickers_are_acknowledged_and_ignored(whatsapp_api: FakeWhatsAppAPI) -> None:
    elsewhere = delivery(text_message(WA_ID, "hello", "wamid.IN2"))
    elsewhere["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = "999999999999999"
    sticker = {"from": WA_ID, "id": "wamid.IN3", "timestamp": "1749416383", "type": "sticker", "sticker": {}}
    statuses, messages = receive(channel_for(whatsapp_api), elsewhere, delivery(sticker))
    assert statuses == [200, 200]
    assert messages == []


def test_a_signed_body_that_is_not_a_whatsapp_webhook_is_a_400(whatsapp_api: FakeWhatsAppAPI) -> None:
    statuses, messages = receive(channel_for(whatsapp_api), {"object": "page", "entry": []}, {"entry": "x"})
    assert statuses == [400, 400]
    assert messages == []


def test_a_failed_read_receipt_still_hands_the_message_to_the_bot(
    whatsapp_api: FakeWhatsAppAPI, caplog: pytest.LogCaptureFixture
) -> None:
    whatsapp_api.refuse_next(500, 1, "An unknown error occurred", method="read")
    statuses, messages = receive(channel_for(whatsapp_api), delivery(text_message(WA_ID, "hello", "wamid.IN4")))
    assert statuses == [200]
    assert [message.text for message in messages] == ["hello"]
    assert "could not mark whatsapp message wamid.IN4 as read" in caplog.text


# --- sending -------------------------------------------------------------------------------------


def test_up_to_three_buttons_are_reply_buttons_with_titles_cut_to_20(whatsapp_api: FakeWhatsAppAPI) -> None:
    buttons = (Button("Card not arrived", "/faq/card_arrival"), Button("Talk to a person right now", "/human_handoff"))
    send(channel_for(whatsapp_api), OutboundMessage(SENDER, "Did you mean one of these?", buttons))
    [call] = whatsapp_api.calls("messages")
    assert (call["to"], call["type"], call["interactive"]["type"]) == (WA_ID, "interactive", "button")
    assert call["interactive"]["body"]["text"] == "Did you mean one of these?"
    assert [button["reply"] for button in call["interactive"]["action"]["buttons"]] == [
        {"id": "/faq/card_arrival", "title": "Card not arrived"},
        {"id": "/human_handoff", "title": "Talk to a person rig"},
    ]


def test_four_to_ten_buttons_are_a_list_with_row_titles_cut_to_24(whatsapp_api: FakeWhatsAppAPI) -> None:
    titles = ["Cards", "Payments", "Transfers", "Account and personal details"]
    buttons = tuple(Button(title, f"/topic{number}") for number, title in enumerate(titles))
    send(channel_for(whatsapp_api), OutboundMessage(SENDER, "Which topic?", buttons))
    [call] = whatsapp_api.calls("messages")
    assert call["interactive"]["type"] == "list"
    [section] = call["interactive"]["action"]["sections"]
    rows = section["rows"]
    assert [row["title"] for row in rows] == ["Cards", "Payments", "Transfers", "Account and personal det"]
    assert [row["id"] for row in rows] == ["/topic0", "/topic1", "/topic2", "/topic3"]
    assert rows[3]["description"] == "Account and personal details"  # the whole title, under the cut one


def test_more_than_ten_buttons_are_a_numbered_list_and_a_number_picks_that_button(
    whatsapp_api: FakeWhatsAppAPI,
) -> None:
    channel = channel_for(whatsapp_api)
    buttons = tuple(Button(f"Branch {number}", f'/branch{{"id": {number}}}') for number in range(1, 13))
    sink = RecordingSink()

    async def go() -> None:
        async with webhook_client(channel, sink) as client:
            await channel.send(SENDER, OutboundMessage(SENDER, "Which branch?", buttons))
            await post(client, delivery(text_message(WA_ID, "11", "wamid.IN5")))
            await channel.send(SENDER, OutboundMessage(SENDER, "How many cards?"))
            await post(client, delivery(text_message(WA_ID, "2", "wamid.IN6")))

    asyncio.run(go())
    numbered = whatsapp_api.calls("messages")[0]
    assert numbered["type"] == "text"
    assert numbered["text"]["body"].startswith("Which branch?\n\nReply 1 for Branch 1\n")
    assert numbered["text"]["body"].endswith("Reply 12 for Branch 12")
    # A message without buttons retires the list: the "2" then answers "How many cards?".
    assert [message.text for message in sink.messages] == ['/branch{"id": 11}', "2"]


def test_a_long_reply_is_split_into_whatsapp_sized_parts_buttons_on_the_last(whatsapp_api: FakeWhatsAppAPI) -> None:
    words = [f"word{number}" for number in range(1200)]
    text = " ".join(words)
    assert len(text) == 9689
    send(channel_for(whatsapp_api), OutboundMessage(SENDER, text, (Button("Thanks", "/thanks"),)))
    calls = whatsapp_api.calls("messages")
    assert [call["type"] for call in calls] == ["text", "text", "text", "interactive"]
    assert all(len(shown(call)) <= 4096 for call in calls) and len(shown(calls[-1])) <= 1024
    assert " ".join(shown(call) for call in calls).split() == words


def test_an_image_goes_as_an_image_message_by_link(whatsapp_api: FakeWhatsAppAPI) -> None:
    image = "https://bank.example.com/cards/new-card.png"
    send(channel_for(whatsapp_api), OutboundMessage(SENDER, "Your new card looks like this:", image=image))
    text, picture = whatsapp_api.calls("messages")
    assert shown(text) == "Your new card looks like this:"
    assert (picture["type"], picture["image"]) == ("image", {"link": image})


@pytest.mark.parametrize(
    ("status", "code", "retry_after", "permanent"),
    [
        (429, 130429, 7.0, False),
        (400, 131056, None, False),
        (400, 131048, None, False),
        (400, 80007, None, False),
        (403, 4, None, False),
        (500, 1, None, False),
        (503, 2, None, False),
        (401, 190, None, False),  # an expired token: renewed, the messages go
        (400, 131047, None, True),
        (400, 131026, None, True),
        (400, 100, None, True),
    ],
)
def test_graph_api_refusals_become_delivery_errors(
    whatsapp_api: FakeWhatsAppAPI, status: int, code: int, retry_after: float | None, permanent: bool
) -> None:
    whatsapp_api.refuse_next(status, code, "refused", retry_after=retry_after)
    with pytest.raises(DeliveryError) as error:
        send(channel_for(whatsapp_api), OutboundMessage(SENDER, "hello"))
    assert error.value.permanent is permanent
    assert error.value.retry_after == retry_after
    assert f"HTTP {status}, error {code}: refused" in str(error.value)
    assert whatsapp_api.calls("messages") == []


def test_an_unreachable_api_is_a_retryable_delivery_error() -> None:
    with FakeWhatsAppAPI() as api:
        channel = channel_for(api)
    with pytest.raises(DeliveryError, match="WhatsApp could not be reached") as error:
        send(channel, OutboundMessage(SENDER, "hello"))
    assert not error.value.permanent


def test_the_secrets_never_reach_the_logs(whatsapp_api: FakeWhatsAppAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send(channel_for(whatsapp_api), OutboundMessage(SENDER, "hello"))
    receive(channel_for(whatsapp_api), delivery(text_message(WA_ID, "hi", "wamid.IN7")))
    assert f"/{PHONE_NUMBER_ID}/messages" in caplog.text
    assert ACCESS_TOKEN not in caplog.text and APP_SECRET not in caplog.text


def test_past_the_window_without_a_template_a_message_is_refused_for_good(whatsapp_api: FakeWhatsAppAPI) -> None:
    channel = channel_for(whatsapp_api)
    message = OutboundMessage(SENDER, "Your card is on its way.", customer_wrote_at=time.time() - DAY - 3600)
    reason = channel.refusal(message, time.time())
    assert reason is not None and "only within 24 hours" in reason and "25 hours ago" in reason
    assert channel.refusal(OutboundMessage(SENDER, "hi", customer_wrote_at=time.time() - 3600), time.time()) is None
    with pytest.raises(DeliveryError, match="only within 24 hours") as error:
        send(channel, message)
    assert error.value.permanent
    assert whatsapp_api.calls("messages") == []


def test_past_the_window_a_message_goes_out_as_the_template_on_one_line(whatsapp_api: FakeWhatsAppAPI) -> None:
    channel = channel_for(whatsapp_api, window_template=TEMPLATE)
    message = OutboundMessage(
        SENDER,
        "Hi, Ana here.\n\nYour card  is\ton its way.",
        sent_by_agent=True,
        customer_wrote_at=time.time() - 2 * DAY,
    )
    assert channel.refusal(message, time.time()) is None
    send(channel, message)
    [call] = whatsapp_api.calls("messages")
    assert call["type"] == "template"
    assert call["template"]["name"] == "agent_reply" and call["template"]["language"] == {"code": "en_US"}
    assert call["template"]["components"] == [
        {"type": "body", "parameters": [{"type": "text", "text": "Hi, Ana here. Your card is on its way."}]}
    ]


# --- end to end through `crowddesk run`'s server -------------------------------------------------


WhatsAppBot = ChannelBot[FakeWhatsAppAPI]
"""The demo bot's server (`client`) and the fake Cloud API its WhatsApp channel talks to."""

CREDENTIALS = """\
rest:
whatsapp:
  phone_number_id: "%s"
  access_token: "${WHATSAPP_ACCESS_TOKEN}"
  app_secret: "${WHATSAPP_APP_SECRET}"
  verify_token: "${WHATSAPP_VERIFY_TOKEN}"
  api_url: "%s"
"""
WINDOW_TEMPLATE = "  window_template: {name: agent_reply, language: en_US}\n"


@contextmanager
def serving_whatsapp(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, directory: Path, extra: str = ""
) -> Iterator[WhatsAppBot]:
    """The demo bot with a WhatsApp channel (plus `extra` lines of its block), talking to the fake API."""
    secrets = {
        "WHATSAPP_ACCESS_TOKEN": ACCESS_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
    }
    with (
        FakeWhatsAppAPI() as api,
        serving_demo_bot(
            api,
            CREDENTIALS % (PHONE_NUMBER_ID, api.base_url) + extra,
            secrets,
            demo_project=demo_project,
            demo_training=demo_training,
            action_server_url=action_server_url,
            directory=directory,
        ) as served,
    ):
        yield served


@pytest.fixture(scope="module")
def wa_bot(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WhatsAppBot]:
    """With a `window_template` for agent replies past the 24-hour window."""
    directory = tmp_path_factory.mktemp("whatsapp")
    with serving_whatsapp(demo_project, demo_training, action_server_url, directory, WINDOW_TEMPLATE) as served:
        yield served


@pytest.fixture(scope="module")
def wa_bot_without_template(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WhatsAppBot]:
    directory = tmp_path_factory.mktemp("whatsapp-no-template")
    with serving_whatsapp(demo_project, demo_training, action_server_url, directory) as served:
        yield served


_wa_ids = itertools.count(15_551_230_100)
_message_ids = itertools.count(1)


def new_wa_id() -> str:
    return str(next(_wa_ids))


def new_message_id() -> str:
    return f"wamid.IN{next(_message_ids):020d}"


def deliver(bot: WhatsAppBot, payload: dict[str, Any], secret: str = APP_SECRET) -> int:
    """Post one webhook delivery as Meta would; the webhook's HTTP status."""
    body, headers = signed(payload, secret)
    return bot.client.post(WEBHOOK_PATH, content=body, headers=headers).status_code


def write(bot: WhatsAppBot, wa_id: str, text: str, message_id: str | None = None, secret: str = APP_SECRET) -> int:
    return deliver(bot, delivery(text_message(wa_id, text, message_id or new_message_id())), secret)


def messages_to(bot: WhatsAppBot, wa_id: str, count: int) -> list[Params]:
    """Wait for the bot's first `count` messages to `wa_id`."""
    return bot.api.wait_for("messages", count, where=lambda call: call["to"] == wa_id)


def message_saying(bot: WhatsAppBot, wa_id: str, text: str) -> Params:
    """Wait for the bot's message to `wa_id` that shows `text` (after the handoff's own messages)."""
    [message] = bot.api.wait_for("messages", where=lambda call: call["to"] == wa_id and shown(call) == text)
    return message


def user_texts(bot: WhatsAppBot, wa_id: str) -> list[str]:
    events = bot.client.get(f"/conversations/whatsapp:{wa_id}/tracker", headers=API_AUTH).json()["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def claimed_ticket(bot: WhatsAppBot, wa_id: str) -> tuple[str, dict[str, str]]:
    """The customer's handoff ticket, claimed by a new agent; its id and the agent's headers."""
    ticket = bot.client.get(f"/conversations/whatsapp:{wa_id}/tracker", headers=API_AUTH).json()["handoff"]
    assert ticket is not None
    auth = agent_headers(bot.bot)
    assert bot.client.post(f"/desk/api/tickets/{ticket['id']}/claim", headers=auth).status_code == 200
    return ticket["id"], auth


def test_meta_verification_echoes_the_challenge_only_for_the_verify_token(wa_bot: WhatsAppBot) -> None:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    response = wa_bot.client.get(WEBHOOK_PATH, params=query)
    assert (response.status_code, response.text) == (200, "1158201444")
    refused = wa_bot.client.get(WEBHOOK_PATH, params={**query, "hub.verify_token": "guess"})
    assert refused.status_code == 403
    assert "verify_token" in refused.json()["error"]


def test_a_question_on_whatsapp_is_answered_and_marked_read(wa_bot: WhatsAppBot) -> None:
    wa_id, message_id = new_wa_id(), new_message_id()
    assert write(wa_bot, wa_id, "I ordered a card two weeks ago and it still hasn't arrived", message_id) == 200
    [answer] = messages_to(wa_bot, wa_id, 1)
    assert "Source: https://" in shown(answer)
    assert wa_bot.api.calls("read", where=lambda call: call["message_id"] == message_id) == [
        {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
    ]


def test_a_reply_button_press_reaches_the_bot_as_its_payload(wa_bot: WhatsAppBot) -> None:
    wa_id = new_wa_id()
    write(wa_bot, wa_id, "/greet")
    [greeting] = messages_to(wa_bot, wa_id, 1)
    assert greeting["interactive"]["type"] == "button"
    assert [button["reply"]["title"] for button in greeting["interactive"]["action"]["buttons"]] == [
        "Card not arrived",
        "Track my card order",
        "Talk to a person",
    ]
    deliver(wa_bot, delivery(button_reply(wa_id, "/track_card_delivery", "Track my card order", new_message_id())))
    messages_to(wa_bot, wa_id, 2)
    assert user_texts(wa_bot, wa_id) == ["/greet", "/track_card_delivery"]


@pytest.mark.parametrize("secret", ["someone-elses-secret", ""])
def test_a_forged_webhook_is_rejected_and_nothing_is_stored(wa_bot: WhatsAppBot, secret: str) -> None:
    wa_id, message_id = new_wa_id(), new_message_id()
    assert write(wa_bot, wa_id, "hello", message_id, secret=secret) == 403
    assert user_texts(wa_bot, wa_id) == []
    assert wa_bot.api.calls("read", where=lambda call: call["message_id"] == message_id) == []


def test_a_redelivered_webhook_is_answered_once(wa_bot: WhatsAppBot) -> None:
    wa_id, message_id = new_wa_id(), new_message_id()
    assert write(wa_bot, wa_id, "/greet", message_id) == 200
    assert write(wa_bot, wa_id, "/greet", message_id) == 200
    write(wa_bot, wa_id, "/thanks")
    # One customer's replies go out in order: once the thanks arrived, a second greeting would have too.
    thanks = [variation.text for variation in wa_bot.bot.project.domain.responses["utter_thanks"]]
    replies = messages_to(wa_bot, wa_id, 2)
    assert len(replies) == 2 and shown(replies[1]) in thanks
    assert user_texts(wa_bot, wa_id) == ["/greet", "/thanks"]


def test_a_429_from_the_cloud_api_still_delivers_the_reply_exactly_once(wa_bot: WhatsAppBot) -> None:
    wa_id = new_wa_id()
    refused = wa_bot.api.refusals("messages")
    wa_bot.api.refuse_next(429, 130429, "Rate limit hit", where=lambda call: call["to"] == wa_id)
    write(wa_bot, wa_id, "/greet")
    write(wa_bot, wa_id, "/thanks")
    # One customer's replies go out in order: a second greeting would have come before the thanks.
    thanks = [variation.text for variation in wa_bot.bot.project.domain.responses["utter_thanks"]]
    greeting, answer = messages_to(wa_bot, wa_id, 2)
    assert wa_bot.api.refusals("messages") == refused + 1
    assert greeting["type"] == "interactive" and shown(answer) in thanks


def test_an_agents_reply_reaches_the_customer(wa_bot: WhatsAppBot) -> None:
    wa_id = new_wa_id()
    write(wa_bot, wa_id, "/human_handoff")
    messages_to(wa_bot, wa_id, 1)
    ticket, auth = claimed_ticket(wa_bot, wa_id)
    reply = "Hi, Ana here. I've reordered your card; it will arrive by Friday."
    response = wa_bot.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    assert message_saying(wa_bot, wa_id, reply)["type"] == "text"


@contextmanager
def customer_wrote_hours_ago(hours: float) -> Iterator[None]:
    """Run the block on a clock `hours` behind (ticking), as if the customer wrote then."""
    with time_machine.travel(time.time() - hours * 3600, tick=True):
        yield


def test_an_agents_reply_25_hours_later_goes_out_as_the_window_template(wa_bot: WhatsAppBot) -> None:
    wa_id = new_wa_id()
    with customer_wrote_hours_ago(25):
        write(wa_bot, wa_id, "/human_handoff")
    messages_to(wa_bot, wa_id, 1)
    ticket, auth = claimed_ticket(wa_bot, wa_id)
    reply = "Hi, Ana here. Sorry for the wait: your card was reordered."
    response = wa_bot.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    sent = message_saying(wa_bot, wa_id, reply)
    assert sent["type"] == "template" and sent["template"]["name"] == "agent_reply"


def test_without_a_template_the_desk_refuses_a_reply_25_hours_later(wa_bot_without_template: WhatsAppBot) -> None:
    served, wa_id = wa_bot_without_template, new_wa_id()
    with customer_wrote_hours_ago(25):
        write(served, wa_id, "/human_handoff")
    messages_to(served, wa_id, 1)
    ticket, auth = claimed_ticket(served, wa_id)
    reply = "Hi, Ana here. Sorry for the wait."
    response = served.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 409
    detail = response.json()["error"]
    assert detail.startswith("WhatsApp accepts messages only within 24 hours")
    assert "25 hours ago" in detail
    events = served.client.get(f"/conversations/whatsapp:{wa_id}/tracker", headers=API_AUTH).json()["events"]
    assert all(event.get("text") != reply for event in events)
    assert all(record.message.text != reply for record in served.bot.outbox.records())
