"""The Messenger and Instagram channels against a fake Graph Send API on 127.0.0.1, and the demo
bot answering on both through `crowddesk run`'s server."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import time_machine
from fastapi import FastAPI

from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.meta.messaging import InstagramChannel, MessengerChannel, MetaMessagingChannel
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.channel_bots import RecordingSink
from tests.demo_bot import API_AUTH, agent_headers
from tests.fakes.meta_send_api import (
    ACCESS_TOKENS,
    APP_SECRET,
    VERIFY_TOKEN,
    FakeMetaSendAPI,
    delivered,
    echo,
    from_customer,
    postback,
    quick_reply_pressed,
    signed,
    text_message,
    webhook_body,
)
from tests.fakes.server import Where
from tests.meta_bot import MetaBot

PLATFORMS = ["messenger", "instagram"]
CHANNELS: dict[str, type[MetaMessagingChannel]] = {"messenger": MessengerChannel, "instagram": InstagramChannel}
CUSTOMER = "6000000000000001"


def block(platform: str) -> dict[str, str]:
    return {"page_access_token": ACCESS_TOKENS[platform], "app_secret": APP_SECRET, "verify_token": VERIFY_TOKEN}


@pytest.fixture()
def send_api() -> Iterator[FakeMetaSendAPI]:
    with FakeMetaSendAPI() as api:
        yield api


def channel_for(platform: str, api: FakeMetaSendAPI) -> MetaMessagingChannel:
    return CHANNELS[platform].from_credentials({**block(platform), "api_url": api.base_url})


def call_webhook(
    channel: MetaMessagingChannel, sink: RecordingSink, method: str, body: bytes = b"", **options: Any
) -> httpx.Response:
    app = FastAPI()
    app.include_router(channel.router(sink))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            return await client.request(method, channel.webhook_path(), content=body, **options)

    return asyncio.run(go())


def post_events(
    channel: MetaMessagingChannel, sink: RecordingSink, *events: dict[str, Any], secret: str = APP_SECRET
) -> httpx.Response:
    body, headers = signed(webhook_body(channel.name, *events), secret)
    return call_webhook(channel, sink, "POST", body, headers=headers)


def send(channel: MetaMessagingChannel, *messages: OutboundMessage) -> None:
    """Send `messages` in order on one event loop, as the outbox does, then close the client."""

    async def go() -> None:
        try:
            for message in messages:
                await channel.send(message.recipient_id, message)
        finally:
            await channel.stop()

    asyncio.run(go())


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("platform", "change", "message"),
    [
        ("messenger", {"page_access_token": None}, "messenger.page_access_token: missing"),
        ("instagram", {"app_secret": ""}, "instagram.app_secret: missing"),
        ("messenger", {"verify_token": 1234}, "messenger.verify_token: expected a string, got int"),
        ("instagram", {"api_version": "25"}, "instagram.api_version: expected a Graph API version such as v"),
        ("messenger", {"api_url": "graph.facebook.com"}, "messenger.api_url: expected an http"),
        (
            "instagram",
            {"access_token": "x"},
            (
                "instagram.access_token: unknown key; expected one of: api_url, api_version, app_secret, "
                "page_access_token, verify_token"
            ),
        ),
    ],
)
def test_credentials_errors_name_the_key(platform: str, change: dict[str, Any], message: str) -> None:
    settings = {key: value for key, value in {**block(platform), **change}.items() if value is not None}
    with pytest.raises(CredentialsError, match=message) as error:
        CHANNELS[platform].from_credentials(settings)
    assert not {ACCESS_TOKENS[platform], APP_SECRET} & set(str(error.value).split())


@pytest.mark.parametrize("platform", PLATFORMS)
def test_no_secret_is_in_the_settings_repr(platform: str) -> None:
    shown = repr(CHANNELS[platform].from_credentials(block(platform)).settings)
    assert "graph.facebook.com" in shown
    assert ACCESS_TOKENS[platform] not in shown and APP_SECRET not in shown and VERIFY_TOKEN not in shown


# --- webhook -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_subscription_check_echoes_the_challenge_only_for_the_verify_token(
    send_api: FakeMetaSendAPI, platform: str
) -> None:
    channel = channel_for(platform, send_api)
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", "hub.verify_token": VERIFY_TOKEN}
    accepted = call_webhook(channel, RecordingSink(), "GET", params=query)
    assert (accepted.status_code, accepted.text) == (200, "1158201444")
    forged = call_webhook(channel, RecordingSink(), "GET", params={**query, "hub.verify_token": "guess"})
    assert forged.status_code == 403 and "hub.verify_token" in forged.json()["detail"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_text_quick_replies_and_postbacks_reach_the_bot_and_the_rest_is_ignored(
    send_api: FakeMetaSendAPI, platform: str
) -> None:
    sink = RecordingSink()
    response = post_events(
        channel_for(platform, send_api),
        sink,
        text_message(platform, CUSTOMER, "my card hasn't arrived", "m_1"),
        quick_reply_pressed(platform, CUSTOMER, "Track my card order", "/track_card_delivery", "m_2"),
        postback(platform, CUSTOMER, "Get Started", "/greet", "m_3"),
        echo(platform, CUSTOMER, "Hi, I'm the Northwind Bank assistant.", "m_4"),
        delivered(platform, CUSTOMER, "m_4"),
        from_customer(platform, CUSTOMER, read={"watermark": 1_700_000_000_001}),
        from_customer(platform, CUSTOMER, message={"mid": "m_5", "attachments": [{"type": "image"}]}),
    )
    assert (response.status_code, response.text) == (200, "EVENT_RECEIVED")
    sender = f"{platform}:{CUSTOMER}"
    assert sink.messages == [
        InboundMessage(platform, sender, "my card hasn't arrived", message_id="m_1"),
        InboundMessage(platform, sender, "/track_card_delivery", message_id="m_2"),
        InboundMessage(platform, sender, "/greet", message_id="m_3"),
    ]


@pytest.mark.parametrize("secret", ["someone-elses-secret", ""])
def test_a_forged_signature_is_a_403_and_nothing_reaches_the_bot(send_api: FakeMetaSendAPI, secret: str) -> None:
    sink = RecordingSink()
    channel = channel_for("messenger", send_api)
    response = post_events(channel, sink, text_message("messenger", CUSTOMER, "hello", "m_6"), secret=secret)
    assert response.status_code == 403 and "X-Hub-Signature-256" in response.json()["detail"]
    unsigned = call_webhook(channel, sink, "POST", b'{"object": "page", "entry": []}')
    assert unsigned.status_code == 403
    assert sink.messages == []


def test_a_delivery_for_the_other_platform_is_a_400(send_api: FakeMetaSendAPI) -> None:
    body, headers = signed(webhook_body("instagram", text_message("instagram", CUSTOMER, "hello", "m_7")))
    sink = RecordingSink()
    response = call_webhook(channel_for("messenger", send_api), sink, "POST", body, headers=headers)
    assert response.status_code == 400 and 'expected object "page"' in response.json()["detail"]
    assert sink.messages == []


# --- sending -------------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_up_to_13_buttons_are_quick_replies_with_short_titles(send_api: FakeMetaSendAPI, platform: str) -> None:
    buttons = (Button("Card not arrived", "/faq/card_arrival"), Button("Talk to a person right now", "/human_handoff"))
    send(channel_for(platform, send_api), OutboundMessage(f"{platform}:{CUSTOMER}", "Did you mean?", buttons))
    [call] = send_api.calls("messages")
    assert call["platform"] == platform
    assert call["recipient"] == {"id": CUSTOMER}
    assert call["messaging_type"] == "RESPONSE" and "tag" not in call
    assert call["message"] == {
        "text": "Did you mean?",
        "quick_replies": [
            {"content_type": "text", "title": "Card not arrived", "payload": "/faq/card_arrival"},
            {"content_type": "text", "title": "Talk to a person ri…", "payload": "/human_handoff"},
        ],
    }


def test_more_than_13_buttons_are_a_numbered_list_and_a_number_picks_one(send_api: FakeMetaSendAPI) -> None:
    channel = channel_for("messenger", send_api)
    buttons = tuple(Button(f"Branch {number}", f"/branch{number}") for number in range(1, 15))
    sender = f"messenger:{CUSTOMER}"
    send(channel, OutboundMessage(sender, "Which branch?", buttons))
    [call] = send_api.calls("messages")
    assert "quick_replies" not in call["message"]
    assert call["message"]["text"].splitlines()[-1] == "Reply 14 for Branch 14"

    sink = RecordingSink()
    post_events(channel, sink, text_message("messenger", CUSTOMER, "14", "m_8"))
    assert sink.messages[-1].text == "/branch14"


@pytest.mark.parametrize(("platform", "limit", "parts"), [("messenger", 2000, 3), ("instagram", 1000, 6)])
def test_a_long_reply_is_split_at_whitespace_and_the_image_follows(
    send_api: FakeMetaSendAPI, platform: str, limit: int, parts: int
) -> None:
    words = [f"word{number}" for number in range(700)]
    image = "https://bank.example.com/card.png"
    buttons = (Button("Helpful", "/kb_feedback"),)
    send(channel_for(platform, send_api), OutboundMessage(f"{platform}:{CUSTOMER}", " ".join(words), buttons, image))
    messages = [call["message"] for call in send_api.calls("messages")]
    texts = [message["text"] for message in messages[:-1]]
    assert len(texts) == parts and all(len(text) <= limit for text in texts)
    assert " ".join(texts).split() == words
    assert messages[-1]["attachment"] == {"type": "image", "payload": {"url": image}}
    assert [message.get("quick_replies") is not None for message in messages] == [False] * parts + [True]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_the_reply_window_decides_tag_or_refusal(send_api: FakeMetaSendAPI, platform: str) -> None:
    channel = channel_for(platform, send_api)
    now = time.time()
    sender = f"{platform}:{CUSTOMER}"
    text = "Ana here, sorry for the wait."
    agent_late = OutboundMessage(sender, text, customer_wrote_at=now - 3 * 86400, sent_by_agent=True)
    bot_late = OutboundMessage(sender, "How would you rate the help you got?", customer_wrote_at=now - 25 * 3600)
    agent_too_late = OutboundMessage(sender, text, customer_wrote_at=now - 8 * 86400, sent_by_agent=True)

    assert channel.refusal(agent_late, now) is None
    assert "within 24 hours" in (channel.refusal(bot_late, now) or "")
    assert "within 7 days" in (channel.refusal(agent_too_late, now) or "")

    send(channel, agent_late)
    [call] = send_api.calls("messages")
    assert (call["messaging_type"], call["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")
    for closed in (bot_late, agent_too_late):
        with pytest.raises(DeliveryError, match="the customer last wrote") as error:
            send(channel_for(platform, send_api), closed)
        assert error.value.permanent
    assert len(send_api.calls("messages")) == 1


@pytest.mark.parametrize(
    ("status", "code", "subcode", "permanent"),
    [
        (429, 613, None, False),
        (400, 4, None, False),
        (400, 17, None, False),
        (400, 32, None, False),
        (400, 613, None, False),
        (400, 2, None, False),
        (500, 1, None, False),
        (503, 100, None, False),
        (400, 10, 2018278, True),
        (400, 551, 1545041, True),
        (400, 100, None, True),
        (401, 190, None, False),  # an expired token: renewed, the messages go
    ],
)
def test_graph_errors_become_delivery_errors(
    send_api: FakeMetaSendAPI, status: int, code: int, subcode: int | None, permanent: bool
) -> None:
    send_api.refuse_next(status, code, "refused", subcode)
    with pytest.raises(DeliveryError) as error:
        send(channel_for("instagram", send_api), OutboundMessage(f"instagram:{CUSTOMER}", "hello"))
    assert error.value.permanent is permanent
    assert f"Instagram refused the message: HTTP {status}, error {code}" in str(error.value)
    assert send_api.calls("messages") == []


def test_an_unreachable_api_is_a_retryable_delivery_error() -> None:
    with FakeMetaSendAPI() as api:
        channel = channel_for("messenger", api)
    with pytest.raises(DeliveryError, match="Messenger could not be reached") as error:
        send(channel, OutboundMessage(f"messenger:{CUSTOMER}", "hello"))
    assert not error.value.permanent


def test_the_access_token_never_reaches_the_logs(send_api: FakeMetaSendAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send(channel_for("messenger", send_api), OutboundMessage(f"messenger:{CUSTOMER}", "hello"))
    assert "/me/messages" in caplog.text
    assert ACCESS_TOKENS["messenger"] not in caplog.text


# --- end to end through `crowddesk run`'s server -------------------------------------------------


_customers = itertools.count(7_000_000_000_000_001)


def new_customer() -> str:
    return str(next(_customers))


def new_mid() -> str:
    return f"m_{uuid.uuid4().hex}"


def deliver(bot: MetaBot, platform: str, *events: dict[str, Any], secret: str = APP_SECRET) -> int:
    """Post one webhook delivery as Meta would; the webhook's HTTP status."""
    body, headers = signed(webhook_body(platform, *events), secret)
    return bot.client.post(f"/webhooks/{platform}/webhook", content=body, headers=headers).status_code


def say(bot: MetaBot, platform: str, customer: str, text: str, mid: str | None = None) -> int:
    return deliver(bot, platform, text_message(platform, customer, text, mid or new_mid()))


def sent_to(
    bot: MetaBot, platform: str, customer: str, count: int = 1, where: Where | None = None
) -> list[dict[str, Any]]:
    """Wait for the bot's first `count` Send API calls to `customer` (those `where` accepts); their bodies."""

    def wanted(call: dict[str, Any]) -> bool:
        to_customer = call["platform"] == platform and call["recipient"]["id"] == customer
        return to_customer and (where is None or where(call))

    return bot.api.wait_for("messages", count, where=wanted)


def user_texts(bot: MetaBot, platform: str, customer: str) -> list[str]:
    events = bot.client.get(f"/conversations/{platform}:{customer}/tracker", headers=API_AUTH).json()["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def handoff_written_days_ago(bot: MetaBot, platform: str, customer: str, days: float) -> tuple[str, dict[str, str]]:
    """The customer asked for a person `days` ago and got the bot's answer then; now an agent
    has claimed the ticket. Its id and the agent's desk API header."""
    with time_machine.travel(datetime.now(UTC) - timedelta(days=days), tick=True):
        say(bot, platform, customer, "/human_handoff")
        sent_to(bot, platform, customer)
    ticket = bot.client.get(f"/conversations/{platform}:{customer}/tracker", headers=API_AUTH).json()["handoff"]
    auth = agent_headers(bot.bot)
    assert bot.client.post(f"/desk/api/tickets/{ticket['id']}/claim", headers=auth).status_code == 200
    return ticket["id"], auth


def wait_until(found: Any, timeout: float = 20.0) -> Any:
    """Poll `found()` until it returns something truthy; that value."""
    deadline = time.monotonic() + timeout
    while not (value := found()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_question_is_answered(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    assert say(meta_bot, platform, customer, "I ordered a card two weeks ago and it still hasn't arrived") == 200
    answer = sent_to(meta_bot, platform, customer)[0]
    assert "Source: https://" in answer["message"]["text"]
    assert answer["messaging_type"] == "RESPONSE"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_quick_reply_pressed_is_read_as_its_payload(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    say(meta_bot, platform, customer, "/greet")
    [greeting] = sent_to(meta_bot, platform, customer)
    [track] = [reply for reply in greeting["message"]["quick_replies"] if reply["title"] == "Track my card order"]
    deliver(meta_bot, platform, quick_reply_pressed(platform, customer, track["title"], track["payload"], new_mid()))
    sent_to(meta_bot, platform, customer, 2)
    assert user_texts(meta_bot, platform, customer) == ["/greet", "/track_card_delivery"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_forged_delivery_is_rejected_and_nothing_is_stored(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    assert deliver(meta_bot, platform, text_message(platform, customer, "hello", new_mid()), secret="forged") == 403
    assert user_texts(meta_bot, platform, customer) == []


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_redelivered_message_is_answered_once(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    mid = new_mid()
    assert say(meta_bot, platform, customer, "/greet", mid) == 200
    assert say(meta_bot, platform, customer, "/greet", mid) == 200
    say(meta_bot, platform, customer, "/thanks")
    # One customer's replies go out in order: once the thanks arrived, a second greeting would have too.
    thanks = [variation.text for variation in meta_bot.bot.project.domain.responses["utter_thanks"]]
    replies = sent_to(meta_bot, platform, customer, 2)
    assert len(replies) == 2 and replies[1]["message"]["text"] in thanks
    assert user_texts(meta_bot, platform, customer) == ["/greet", "/thanks"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_a_rate_limited_reply_is_delivered_exactly_once(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    refused = meta_bot.api.refusals("messages")
    meta_bot.api.refuse_next(429, 613, "Calls to this api have exceeded the rate limit.", to=customer)
    say(meta_bot, platform, customer, "/greet")
    say(meta_bot, platform, customer, "/thanks")
    replies = sent_to(meta_bot, platform, customer, 2)
    assert meta_bot.api.refusals("messages") == refused + 1
    assert len(replies) == 2 and "quick_replies" in replies[0]["message"]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_agents_reply_reaches_the_customer(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    ticket, auth = handoff_written_days_ago(meta_bot, platform, customer, days=0)
    reply = "Hi, Ana here. I have reissued your card."
    response = meta_bot.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    [call] = sent_to(meta_bot, platform, customer, where=lambda call: call["message"].get("text") == reply)
    assert call["recipient"]["id"] == customer and call["platform"] == platform
    assert call["messaging_type"] == "RESPONSE"


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_agents_reply_3_days_later_is_tagged_and_the_bots_rating_question_is_not(
    meta_bot: MetaBot, platform: str
) -> None:
    customer = new_customer()
    ticket, auth = handoff_written_days_ago(meta_bot, platform, customer, days=3)
    reply = "Sorry for the wait: your new card left today."
    response = meta_bot.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    [call] = sent_to(meta_bot, platform, customer, where=lambda call: call["message"].get("text") == reply)
    assert (call["messaging_type"], call["tag"]) == ("MESSAGE_TAG", "HUMAN_AGENT")

    # Resolving makes the bot ask for a rating: no person wrote that, so no tag may carry it.
    assert meta_bot.client.post(f"/desk/api/tickets/{ticket}/resolve", headers=auth).status_code == 200
    failed = wait_until(lambda: meta_bot.bot.outbox.failed_to(f"{platform}:{customer}"))
    assert "within 24 hours" in (failed[0].last_error or "")
    tagged = meta_bot.api.calls("messages", where=lambda call: call["recipient"]["id"] == customer and "tag" in call)
    assert [call["message"]["text"] for call in tagged] == [reply]


@pytest.mark.parametrize("platform", PLATFORMS)
def test_an_agents_reply_8_days_later_is_refused_and_nothing_is_queued(meta_bot: MetaBot, platform: str) -> None:
    customer = new_customer()
    ticket, auth = handoff_written_days_ago(meta_bot, platform, customer, days=8)
    response = meta_bot.client.post(f"/desk/api/tickets/{ticket}/reply", headers=auth, json={"text": "Still there?"})
    assert response.status_code == 409
    reason = response.json()["error"]
    assert reason.startswith(f"{CHANNELS[platform].platform} accepts messages only within 7 days")
    assert "the customer last wrote 192 hours ago" in reason
    sender = f"{platform}:{customer}"
    queued = [record.message for record in meta_bot.bot.outbox.records() if record.message.recipient_id == sender]
    assert queued and not any(message.sent_by_agent for message in queued)
    events = meta_bot.client.get(f"/conversations/{sender}/tracker", headers=API_AUTH).json()["events"]
    assert "Still there?" not in [event.get("text") for event in events]
