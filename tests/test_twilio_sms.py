"""The SMS channel: the real `twilio` library against a fake Twilio REST API on 127.0.0.1."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from sqlalchemy import Engine

from crowddesk.bot.conversations.channel_memory import DatabaseChannelMemory
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.twilio_sms import WEBHOOK_PATH, TwilioSmsChannel
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.channel_bots import ChannelBot, RecordingSink, serving_demo_bot
from tests.demo_bot import API_AUTH, agent_headers
from tests.fakes.twilio_api import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    PUBLIC_URL,
    TWILIO_NUMBER,
    FakeTwilioAPI,
    incoming_sms,
    signed,
)

WEBHOOK_URL = PUBLIC_URL + WEBHOOK_PATH
PHONE = "+15551230001"
SENDER = f"twilio:{PHONE}"
BLOCK = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "twilio_number": TWILIO_NUMBER, "public_url": PUBLIC_URL}


@pytest.fixture()
def twilio_api() -> Iterator[FakeTwilioAPI]:
    with FakeTwilioAPI() as api:
        yield api


def channel_for(api: FakeTwilioAPI) -> TwilioSmsChannel:
    return TwilioSmsChannel.from_credentials({**BLOCK, "api_url": api.base_url})


def post_sms(
    channel: TwilioSmsChannel, sink: RecordingSink, fields: dict[str, str], token: str = AUTH_TOKEN
) -> httpx.Response:
    app = FastAPI()
    app.include_router(channel.router(sink))
    body, headers = signed(WEBHOOK_URL, fields, token)

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            return await client.post(WEBHOOK_PATH, content=body, headers=headers)

    return asyncio.run(go())


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"auth_token": None}, "twilio.auth_token: missing"),
        ({"twilio_number": ""}, "twilio.twilio_number: missing"),
        ({"public_url": "http://bot.example.com"}, "twilio.public_url: Twilio signs the https:// URL"),
        ({"acount_sid": "AC1"}, "twilio.acount_sid: unknown key; expected one of: account_sid, api_url"),
        ({"twilio_number": 15005550006}, "twilio.twilio_number: expected a string, got int"),
    ],
)
def test_credentials_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    block = {key: value for key, value in {**BLOCK, **change}.items() if value is not None}
    with pytest.raises(CredentialsError, match=message) as error:
        TwilioSmsChannel.from_credentials(block)
    assert AUTH_TOKEN not in str(error.value)


def test_the_auth_token_is_not_in_the_channels_repr() -> None:
    assert AUTH_TOKEN not in repr(TwilioSmsChannel.from_credentials(BLOCK).settings)


# --- webhook -------------------------------------------------------------------------------------


def test_a_signed_sms_reaches_the_bot_and_gets_empty_twiml(twilio_api: FakeTwilioAPI) -> None:
    sink = RecordingSink()
    response = post_sms(channel_for(twilio_api), sink, incoming_sms(PHONE, "my card hasn't arrived", "SM1"))
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/xml")
    assert response.text.endswith("<Response/>")
    assert sink.messages == [InboundMessage("twilio", SENDER, "my card hasn't arrived", message_id="SM1")]


@pytest.mark.parametrize("token", ["someone-elses-token", ""])
def test_a_forged_signature_is_a_403_and_nothing_reaches_the_bot(twilio_api: FakeTwilioAPI, token: str) -> None:
    sink = RecordingSink()
    response = post_sms(channel_for(twilio_api), sink, incoming_sms(PHONE, "hello", "SM2"), token=token)
    assert response.status_code == 403
    assert "X-Twilio-Signature" in response.json()["detail"]
    assert sink.messages == []


def test_a_signed_request_without_a_sender_is_a_400(twilio_api: FakeTwilioAPI) -> None:
    fields = incoming_sms(PHONE, "hello", "SM3")
    del fields["From"]
    response = post_sms(channel_for(twilio_api), RecordingSink(), fields)
    assert response.status_code == 400
    assert "From and MessageSid are required" in response.json()["detail"]


# --- sending -------------------------------------------------------------------------------------


def send(channel: TwilioSmsChannel, message: OutboundMessage) -> None:
    asyncio.run(channel.send(message.recipient_id, message))


def test_buttons_are_a_numbered_list_and_a_number_picks_that_button(twilio_api: FakeTwilioAPI) -> None:
    channel = channel_for(twilio_api)
    buttons = (Button("Card not arrived", "/faq/card_arrival"), Button("Talk to a person", "/human_handoff"))
    send(channel, OutboundMessage(SENDER, "Did you mean one of these?", buttons))
    [call] = twilio_api.calls("messages")
    assert (call["To"], call["From"]) == (PHONE, TWILIO_NUMBER)
    assert call["Body"] == "Did you mean one of these?\n\nReply 1 for Card not arrived\nReply 2 for Talk to a person"

    sink = RecordingSink()
    for sid, text in [("SM10", "2"), ("SM11", " 1 "), ("SM12", "3"), ("SM13", "I still have 2 questions")]:
        post_sms(channel, sink, incoming_sms(PHONE, text, sid))
    post_sms(channel, sink, incoming_sms("+15559990000", "2", "SM14"))  # offered nothing
    assert [m.text for m in sink.messages] == [
        "/human_handoff",
        "/faq/card_arrival",
        "3",
        "I still have 2 questions",
        "2",
    ]

    # A later message without buttons (an agent asking how many cards) retires the list.
    send(channel, OutboundMessage(SENDER, "How many cards did you order?"))
    post_sms(channel, sink, incoming_sms(PHONE, "2", "SM15"))
    assert sink.messages[-1].text == "2"


def test_a_number_picks_the_button_another_server_process_offered(twilio_api: FakeTwilioAPI, db_engine: Engine) -> None:
    # Two channels on one database stand for two server processes behind a load balancer.
    offering, answering = channel_for(twilio_api), channel_for(twilio_api)
    for channel in (offering, answering):
        channel.attach_memory(DatabaseChannelMemory(db_engine, "twilio"))
    send(offering, OutboundMessage(SENDER, "Pick one", (Button("Card", "/card"), Button("Person", "/human_handoff"))))
    sink = RecordingSink()
    post_sms(answering, sink, incoming_sms(PHONE, "2", "SM20"))
    assert [m.text for m in sink.messages] == ["/human_handoff"]


def test_a_long_reply_is_split_at_whitespace_into_sms_sized_parts(twilio_api: FakeTwilioAPI) -> None:
    words = [f"word{number}" for number in range(700)]
    text = " ".join(words)
    assert len(text) == 5489
    send(channel_for(twilio_api), OutboundMessage(SENDER, text))
    bodies = [call["Body"] for call in twilio_api.calls("messages")]
    assert len(bodies) == 4
    assert all(len(body) <= 1600 for body in bodies)
    assert " ".join(bodies).split() == words


@pytest.mark.parametrize(
    ("status", "code", "permanent"),
    [(429, 20429, False), (500, 20500, False), (503, 20503, False), (400, 21211, True), (400, 21610, True)],
)
def test_twilio_refusals_become_delivery_errors(
    twilio_api: FakeTwilioAPI, status: int, code: int, permanent: bool
) -> None:
    twilio_api.refuse_next(status, code, "refused")
    with pytest.raises(DeliveryError) as error:
        send(channel_for(twilio_api), OutboundMessage(SENDER, "hello"))
    assert error.value.permanent is permanent
    assert f"error {code}" in str(error.value)
    assert twilio_api.calls("messages") == []


def test_an_unreachable_api_is_a_retryable_delivery_error() -> None:
    with FakeTwilioAPI() as api:
        channel = channel_for(api)
    with pytest.raises(DeliveryError) as error:
        send(channel, OutboundMessage(SENDER, "hello"))
    assert not error.value.permanent


def test_the_auth_token_never_reaches_the_logs(twilio_api: FakeTwilioAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send(channel_for(twilio_api), OutboundMessage(SENDER, "hello"))
    assert "Messages.json" in caplog.text
    assert AUTH_TOKEN not in caplog.text


# --- end to end through `crowddesk run`'s server -------------------------------------------------


SmsBot = ChannelBot[FakeTwilioAPI]
"""The demo bot's server (`client`) and the fake Twilio API its SMS channel talks to."""

CREDENTIALS = """\
rest:
twilio:
  account_sid: "${TWILIO_ACCOUNT_SID}"
  auth_token: "${TWILIO_AUTH_TOKEN}"
  twilio_number: "%s"
  public_url: "%s"
  api_url: "%s"
"""


@pytest.fixture(scope="module")
def sms_bot(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SmsBot]:
    """The demo bot with a Twilio channel in its credentials.yml, talking to the fake API."""
    with (
        FakeTwilioAPI() as api,
        serving_demo_bot(
            api,
            CREDENTIALS % (TWILIO_NUMBER, PUBLIC_URL, api.base_url),
            {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN},
            demo_project=demo_project,
            demo_training=demo_training,
            action_server_url=action_server_url,
            directory=tmp_path_factory.mktemp("twilio"),
        ) as served,
    ):
        yield served


_numbers = itertools.count(5_550_100)
_sids = itertools.count(1)


def new_phone() -> str:
    return f"+1555{next(_numbers)}"


def new_sid() -> str:
    return f"SM{next(_sids):032x}"


def text_from(bot: SmsBot, phone: str, text: str, sid: str | None = None, token: str = AUTH_TOKEN) -> int:
    """Post one SMS as Twilio would; the webhook's HTTP status."""
    body, headers = signed(WEBHOOK_URL, incoming_sms(phone, text, sid or new_sid()), token)
    return bot.client.post(WEBHOOK_PATH, content=body, headers=headers).status_code


def texts_to(bot: SmsBot, phone: str, count: int) -> list[str]:
    """Wait for the bot's first `count` SMS to `phone`; their bodies."""
    calls = bot.api.wait_for("messages", count, where=lambda call: call["To"] == phone)
    assert all(call["From"] == TWILIO_NUMBER for call in calls)
    return [call["Body"] for call in calls]


def user_texts(bot: SmsBot, phone: str) -> list[str]:
    events = bot.client.get(f"/conversations/twilio:{phone}/tracker", headers=API_AUTH).json()["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def test_a_question_by_sms_is_answered(sms_bot: SmsBot) -> None:
    phone = new_phone()
    assert text_from(sms_bot, phone, "I ordered a card two weeks ago and it still hasn't arrived") == 200
    [answer] = texts_to(sms_bot, phone, 1)
    assert "Source: https://" in answer


def test_a_numbered_reply_presses_the_button(sms_bot: SmsBot) -> None:
    phone = new_phone()
    text_from(sms_bot, phone, "/greet")
    [greeting] = texts_to(sms_bot, phone, 1)
    assert "Reply 2 for Track my card order" in greeting
    text_from(sms_bot, phone, "2")
    texts_to(sms_bot, phone, 2)
    assert user_texts(sms_bot, phone) == ["/greet", "/track_card_delivery"]


def test_a_forged_sms_is_rejected_and_nothing_is_stored(sms_bot: SmsBot) -> None:
    phone = new_phone()
    assert text_from(sms_bot, phone, "hello", token="forged") == 403
    assert user_texts(sms_bot, phone) == []


def test_the_same_message_sid_twice_is_answered_once(sms_bot: SmsBot) -> None:
    phone = new_phone()
    sid = new_sid()
    assert text_from(sms_bot, phone, "/greet", sid) == 200
    assert text_from(sms_bot, phone, "/greet", sid) == 200
    text_from(sms_bot, phone, "/thanks")
    # One customer's replies go out in order: once the thanks arrived, a second greeting would have too.
    domain = sms_bot.bot.project.domain
    thanks = [variation.text for variation in domain.responses["utter_thanks"]]
    replies = texts_to(sms_bot, phone, 2)
    assert len(replies) == 2 and replies[1] in thanks
    assert user_texts(sms_bot, phone) == ["/greet", "/thanks"]


def test_a_429_from_twilio_still_delivers_the_reply_exactly_once(sms_bot: SmsBot) -> None:
    phone = new_phone()
    refused = sms_bot.api.refusals("messages")
    sms_bot.api.refuse_next(429, 20429, "Too Many Requests")
    text_from(sms_bot, phone, "/greet")
    text_from(sms_bot, phone, "/thanks")
    replies = texts_to(sms_bot, phone, 2)
    assert sms_bot.api.refusals("messages") == refused + 1
    assert len(replies) == 2 and "Reply 1 for" in replies[0]


def test_an_agents_long_reply_reaches_the_customer_in_parts(sms_bot: SmsBot) -> None:
    phone = new_phone()
    text_from(sms_bot, phone, "/human_handoff")
    texts_to(sms_bot, phone, 1)
    client = sms_bot.client
    ticket = client.get(f"/conversations/twilio:{phone}/tracker", headers=API_AUTH).json()["handoff"]
    assert ticket is not None
    auth = agent_headers(sms_bot.bot)
    assert client.post(f"/desk/api/tickets/{ticket['id']}/claim", headers=auth).status_code == 200
    reply = "Hi, Ana here. " + " ".join(f"step{number}" for number in range(300))
    assert len(reply) > 1600
    response = client.post(f"/desk/api/tickets/{ticket['id']}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    sms_bot.api.wait_for("messages", where=lambda call: call["To"] == phone and call["Body"].endswith("step299"))
    bodies = [call["Body"] for call in sms_bot.api.calls("messages", where=lambda call: call["To"] == phone)]
    parts = bodies[bodies.index(next(body for body in bodies if body.startswith("Hi, Ana here."))) :]
    assert len(parts) == 2 and all(len(part) <= 1600 for part in parts)
    assert " ".join(parts) == reply


def test_a_reply_twilio_refuses_for_good_shows_in_the_ticket_as_not_delivered(sms_bot: SmsBot) -> None:
    phone = new_phone()
    text_from(sms_bot, phone, "/human_handoff")
    client = sms_bot.client
    tracker = client.get(f"/conversations/twilio:{phone}/tracker", headers=API_AUTH).json()
    texts_to(sms_bot, phone, sum(event["event"] == "bot" for event in tracker["events"]))  # the bot's say first
    ticket_id = tracker["handoff"]["id"]
    auth = agent_headers(sms_bot.bot)
    client.post(f"/desk/api/tickets/{ticket_id}/claim", headers=auth)
    sms_bot.api.refuse_next(400, 21610, "Attempt to send to unsubscribed recipient")
    client.post(f"/desk/api/tickets/{ticket_id}/reply", headers=auth, json={"text": "Hi, Ana here"})

    def undelivered() -> list[dict[str, Any]]:
        return client.get(f"/desk/api/tickets/{ticket_id}", headers=auth).json()["undelivered"]

    deadline = time.monotonic() + 20
    while not undelivered() and time.monotonic() < deadline:
        time.sleep(0.05)
    [refused] = undelivered()
    assert refused["text"] == "Hi, Ana here"
    assert "error 21610" in refused["error"] and "unsubscribed" in refused["error"]
