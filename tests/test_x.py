"""The X channel: the real `tweepy` library against a fake X API on 127.0.0.1, and the demo bot
answering mentions in public or in private."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.types import Button, OutboundMessage
from crowddesk.connectors.x import WEBHOOK_PATH, XChannel
from tests.channel_bots import ChannelBot, RecordingSink, serving_demo_bot
from tests.demo_bot import API_AUTH, agent_headers
from tests.fakes.x_api import (
    ACCESS_TOKEN,
    ACCESS_TOKEN_SECRET,
    ACCOUNT_ID,
    CONSUMER_KEY,
    CONSUMER_SECRET,
    FakeXAPI,
    direct_message,
    events,
    mention,
    signed,
)

BLOCK = {
    "consumer_key": CONSUMER_KEY,
    "consumer_secret": CONSUMER_SECRET,
    "access_token": ACCESS_TOKEN,
    "access_token_secret": ACCESS_TOKEN_SECRET,
}
ACKNOWLEDGEMENT = "Thanks, we've sent you a private message."
CARD_NUMBER = "4111 1111 1111 1111"
_ids = itertools.count(1_700_000_000_000_000_001)


def new_id() -> str:
    return str(next(_ids))


@pytest.fixture()
def x_api() -> Iterator[FakeXAPI]:
    with FakeXAPI() as api:
        yield api


def channel_for(api: FakeXAPI) -> XChannel:
    return XChannel.from_credentials({**BLOCK, "api_url": api.base_url})


def call_webhook(channel: XChannel, sink: RecordingSink, method: str, **request: Any) -> httpx.Response:
    app = FastAPI()
    app.include_router(channel.router(sink))

    async def go() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://test") as client:
            return await client.request(method, WEBHOOK_PATH, **request)

    return asyncio.run(go())


def deliver(channel: XChannel, sink: RecordingSink, payload: dict[str, Any]) -> httpx.Response:
    body, headers = signed(payload)
    return call_webhook(channel, sink, "POST", content=body, headers=headers)


def send(channel: XChannel, message: OutboundMessage) -> None:
    asyncio.run(channel.send(message.recipient_id, message))


# --- credentials ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"consumer_secret": None}, "x.consumer_secret: missing"),
        ({"access_token": ""}, "x.access_token: missing"),
        ({"api_url": "api.example.com"}, "x.api_url: expected an http(s):// URL"),
        ({"consumer_token": "k"}, "x.consumer_token: unknown key; expected one of: access_token, access_token_secret"),
        ({"consumer_key": 12345}, "x.consumer_key: expected a string, got int"),
    ],
)
def test_credentials_errors_name_the_key(change: dict[str, Any], message: str) -> None:
    block = {key: value for key, value in {**BLOCK, **change}.items() if value is not None}
    with pytest.raises(CredentialsError, match=re.escape(message)) as error:
        XChannel.from_credentials(block)
    assert CONSUMER_SECRET not in str(error.value) and ACCESS_TOKEN_SECRET not in str(error.value)


def test_the_secrets_are_not_in_the_channels_repr() -> None:
    settings = repr(XChannel.from_credentials(BLOCK).settings)
    assert CONSUMER_SECRET not in settings and ACCESS_TOKEN_SECRET not in settings


# --- webhook -------------------------------------------------------------------------------------


def test_the_crc_check_is_answered_with_the_hmac_of_the_token(x_api: FakeXAPI) -> None:
    channel = channel_for(x_api)
    response = call_webhook(channel, RecordingSink(), "GET", params={"crc_token": "challenge-123"})
    digest = hmac.new(CONSUMER_SECRET.encode(), b"challenge-123", hashlib.sha256).digest()
    assert response.status_code == 200
    assert response.json() == {"response_token": "sha256=" + base64.b64encode(digest).decode()}
    assert call_webhook(channel, RecordingSink(), "GET").status_code == 400


def test_a_mention_and_a_dm_reach_the_bot_from_the_same_sender(x_api: FakeXAPI) -> None:
    sink = RecordingSink()
    tweet = mention("1801", "42", "how do I order a new card?", handle="jo", followers=3210)
    response = deliver(channel_for(x_api), sink, events([tweet], [direct_message("9001", "42", "hello again")]))
    assert response.status_code == 200
    public, private = sink.messages
    assert (public.sender_id, public.text, public.message_id) == ("x:42", "how do I order a new card?", "1801")
    assert public.metadata["public_post"] == {
        "platform": "x",
        "post_id": "1801",
        "author": "jo",
        "followers": 3210,
        "replies_last_hour": None,
        "url": "https://x.com/jo/status/1801",
    }
    assert (private.sender_id, private.text, private.message_id, private.metadata) == (
        "x:42",
        "hello again",
        "9001",
        {},
    )


def test_replies_to_one_tweet_are_counted_per_hour(x_api: FakeXAPI) -> None:
    sink, channel = RecordingSink(), channel_for(x_api)
    replies = [mention(f"19{n:02}", f"7{n}", "same problem here", in_reply_to="1800") for n in range(3)]
    deliver(channel, sink, events(replies))
    deliver(channel, sink, events(replies[-1:]))  # redelivered: not a new reply
    assert [m.metadata["public_post"]["replies_last_hour"] for m in sink.messages] == [1, 2, 3, 3]


def test_the_accounts_own_tweets_and_dms_are_ignored(x_api: FakeXAPI) -> None:
    sink = RecordingSink()
    own_tweet = mention("1802", ACCOUNT_ID, "we're looking into it")
    deliver(channel_for(x_api), sink, events([own_tweet], [direct_message("9002", ACCOUNT_ID, "here is the answer")]))
    assert sink.messages == []


def test_a_quick_reply_is_read_as_its_payload(x_api: FakeXAPI) -> None:
    sink = RecordingSink()
    deliver(channel_for(x_api), sink, events(dms=[direct_message("9003", "43", "Track my card", "/track_card")]))
    assert [m.text for m in sink.messages] == ["/track_card"]


@pytest.mark.parametrize("secret", ["someone-elses-secret", ""])
def test_a_forged_signature_is_a_403_and_nothing_reaches_the_bot(x_api: FakeXAPI, secret: str) -> None:
    sink = RecordingSink()
    body, headers = signed(events([mention("1803", "44", "hello")]), secret)
    if not secret:
        del headers["x-twitter-webhooks-signature"]
    response = call_webhook(channel_for(x_api), sink, "POST", content=body, headers=headers)
    assert response.status_code == 403
    assert "x-twitter-webhooks-signature" in response.json()["detail"]
    assert sink.messages == []


# --- sending -------------------------------------------------------------------------------------


def public_post(post_id: str, **extra: Any) -> dict[str, Any]:
    return {"platform": "x", "post_id": post_id, "author": "jo", "followers": 10, "replies_last_hour": None, **extra}


def test_a_long_public_reply_is_a_thread_under_the_tweet(x_api: FakeXAPI) -> None:
    words = [f"word{n}" for n in range(100)]
    message = OutboundMessage("x:42", " ".join(words), public_post=public_post("1804", visibility="public"))
    send(channel_for(x_api), message)
    tweets = x_api.calls("tweets")
    assert len(tweets) == 3 and all(len(t["text"]) <= 280 for t in tweets)
    assert [t["in_reply_to_tweet_id"] for t in tweets] == ["1804", tweets[0]["id"], tweets[1]["id"]]
    assert " ".join(t["text"] for t in tweets).split() == words
    assert x_api.calls("dms") == []


def test_a_private_reply_acknowledges_in_public_then_goes_by_dm_with_numbered_buttons(x_api: FakeXAPI) -> None:
    buttons = (Button("Yes", "/affirm"), Button("No", "/deny"))
    where = public_post("1805", visibility="private", acknowledgement=ACKNOWLEDGEMENT)
    channel = channel_for(x_api)
    send(channel, OutboundMessage("x:42", "Was the payment made today?", buttons, public_post=where))
    assert [(t["text"], t["in_reply_to_tweet_id"]) for t in x_api.calls("tweets")] == [(ACKNOWLEDGEMENT, "1805")]
    assert x_api.calls("dms") == [
        {"participant_id": "42", "text": "Was the payment made today?\n\nReply 1 for Yes\nReply 2 for No"}
    ]

    sink = RecordingSink()
    deliver(channel, sink, events(dms=[direct_message("9004", "42", "2")]))
    assert [m.text for m in sink.messages] == ["/deny"]


def test_a_retry_after_the_acknowledgement_sends_only_the_dm(x_api: FakeXAPI) -> None:
    channel = channel_for(x_api)
    where = public_post("1806", visibility="private", acknowledgement=ACKNOWLEDGEMENT)
    message = OutboundMessage("x:42", "Let's look at your payment.", public_post=where)
    x_api.refuse_next("dms", 503, "Service Unavailable")
    with pytest.raises(DeliveryError) as error:
        send(channel, message)
    assert not error.value.permanent
    send(channel, message)
    assert [t["text"] for t in x_api.calls("tweets")] == [ACKNOWLEDGEMENT]
    assert [d["text"] for d in x_api.calls("dms")] == ["Let's look at your payment."]


@pytest.mark.parametrize(
    ("status", "permanent"), [(429, False), (500, False), (503, False), (400, True), (403, True), (404, True)]
)
def test_x_refusals_become_delivery_errors(x_api: FakeXAPI, status: int, permanent: bool) -> None:
    x_api.refuse_next("dms", status, "refused", reset_in=30 if status == 429 else None)
    with pytest.raises(DeliveryError) as error:
        send(channel_for(x_api), OutboundMessage("x:42", "hello"))
    assert error.value.permanent is permanent
    assert f"HTTP {status}: refused" in str(error.value)
    if status == 429:
        assert error.value.retry_after is not None and 25 <= error.value.retry_after <= 31
    assert x_api.calls("dms") == []


def test_an_unreachable_api_is_a_retryable_delivery_error() -> None:
    with FakeXAPI() as api:
        channel = channel_for(api)
    with pytest.raises(DeliveryError) as error:
        send(channel, OutboundMessage("x:42", "hello"))
    assert not error.value.permanent


def test_the_secrets_never_reach_the_logs(x_api: FakeXAPI, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    send(channel_for(x_api), OutboundMessage("x:42", "hello"))
    assert "dm_conversations" in caplog.text
    assert CONSUMER_SECRET not in caplog.text and ACCESS_TOKEN_SECRET not in caplog.text


# --- end to end through `crowddesk run`'s server -------------------------------------------------


XBot = ChannelBot[FakeXAPI]
"""The demo bot's server (`client`) and the fake X API its channel talks to."""

CREDENTIALS = """\
rest:
x:
  consumer_key: "%s"
  consumer_secret: "${X_CONSUMER_SECRET}"
  access_token: "%s"
  access_token_secret: "${X_ACCESS_TOKEN_SECRET}"
  api_url: "%s"
"""


@pytest.fixture(scope="module")
def x_bot(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[XBot]:
    """The demo bot with an X channel in its credentials.yml, talking to the fake API."""
    with (
        FakeXAPI() as api,
        serving_demo_bot(
            api,
            CREDENTIALS % (CONSUMER_KEY, ACCESS_TOKEN, api.base_url),
            {"X_CONSUMER_SECRET": CONSUMER_SECRET, "X_ACCESS_TOKEN_SECRET": ACCESS_TOKEN_SECRET},
            demo_project=demo_project,
            demo_training=demo_training,
            action_server_url=action_server_url,
            directory=tmp_path_factory.mktemp("x"),
        ) as served,
    ):
        yield served


def post_events(bot: XBot, payload: dict[str, Any], secret: str = CONSUMER_SECRET) -> int:
    body, headers = signed(payload, secret)
    return bot.client.post(WEBHOOK_PATH, content=body, headers=headers).status_code


def mention_from(bot: XBot, user: str, text: str, tweet_id: str | None = None, followers: int = 150) -> str:
    """Post a mention as X would; its tweet id."""
    tweet_id = tweet_id or new_id()
    assert post_events(bot, events([mention(tweet_id, user, text, followers=followers)])) == 200
    return tweet_id


def dm_from(bot: XBot, user: str, text: str) -> None:
    assert post_events(bot, events(dms=[direct_message(new_id(), user, text)])) == 200


def tweets_under(bot: XBot, tweet_id: str, count: int = 1) -> list[str]:
    calls = bot.api.wait_for("tweets", count, where=lambda call: call["in_reply_to_tweet_id"] == tweet_id)
    return [call["text"] for call in calls]


def public_answer(bot: XBot, tweet_id: str) -> list[str]:
    """The thread the bot posted under `tweet_id`, up to the answer's source line."""
    parts: list[str] = []
    reply_to = tweet_id
    while not parts or "Source: https://" not in parts[-1]:
        [part] = tweets_with(bot, reply_to)
        parts.append(part["text"])
        reply_to = part["id"]
    return parts


def tweets_with(bot: XBot, reply_to: str) -> list[dict[str, Any]]:
    """The bot's posts replying to `reply_to`, once there is one."""
    return bot.api.wait_for("tweets", where=lambda call: call["in_reply_to_tweet_id"] == reply_to)


def dms_to(bot: XBot, user: str, count: int = 1) -> list[str]:
    return [call["text"] for call in bot.api.wait_for("dms", count, where=lambda call: call["participant_id"] == user)]


def user_texts(bot: XBot, user: str) -> list[str]:
    events = bot.client.get(f"/conversations/x:{user}/tracker", headers=API_AUTH).json()["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def tickets_of(bot: XBot, user: str) -> list[Any]:
    return [t for t in bot.bot.conversations.list_handoffs() if t.sender_id == f"x:{user}"]


def test_a_general_question_mentioned_in_public_is_answered_under_the_tweet(x_bot: XBot) -> None:
    user = new_id()
    tweet_id = mention_from(x_bot, user, "How long does it take for a new card to arrive?")
    thread = public_answer(x_bot, tweet_id)
    assert "Source: https://" in thread[-1]
    assert all(len(part) <= 280 for part in thread)
    assert x_bot.api.calls("dms", where=lambda call: call["participant_id"] == user) == []


def test_an_account_question_is_acknowledged_in_public_and_continues_by_dm(x_bot: XBot) -> None:
    user = new_id()
    tweet_id = mention_from(x_bot, user, "my card was charged twice for one purchase")
    assert tweets_under(x_bot, tweet_id) == [ACKNOWLEDGEMENT]
    [first_dm] = dms_to(x_bot, user)
    assert first_dm

    dm_from(x_bot, user, "I want to talk to a person")
    dms_to(x_bot, user, 2)
    assert user_texts(x_bot, user) == ["my card was charged twice for one purchase", "I want to talk to a person"]
    [ticket] = tickets_of(x_bot, user)
    transcript = [line["text"] for line in ticket.packet["transcript"] if line["role"] == "customer"]
    assert transcript == ["my card was charged twice for one purchase", "I want to talk to a person"]
    # Everything after the acknowledgement stayed private.
    assert [t["text"] for t in x_bot.api.calls("tweets", where=lambda c: c["in_reply_to_tweet_id"] == tweet_id)] == [
        ACKNOWLEDGEMENT
    ]


def test_a_card_number_in_a_mention_is_never_posted_in_public(x_bot: XBot) -> None:
    user = new_id()
    tweet_id = mention_from(x_bot, user, f"is my card {CARD_NUMBER} blocked?")
    tweets_under(x_bot, tweet_id)
    dms_to(x_bot, user)
    digits = CARD_NUMBER.replace(" ", "")
    assert all(digits not in call["text"].replace(" ", "") for call in x_bot.api.calls("tweets"))


def test_a_frustrated_mention_from_a_large_audience_is_a_high_priority_ticket(x_bot: XBot) -> None:
    user = new_id()
    tweet_id = mention_from(x_bot, user, "your app is useless, nobody helps", followers=50_000)
    assert tweets_under(x_bot, tweet_id) == [ACKNOWLEDGEMENT]
    dms_to(x_bot, user)
    [ticket] = tickets_of(x_bot, user)
    assert ticket.priority == "high"
    assert ticket.packet["priority_reasons"] == ["frustrated", "50,000 followers"]


def test_a_redelivered_mention_is_answered_once(x_bot: XBot) -> None:
    user, tweet_id = new_id(), new_id()
    mention_from(x_bot, user, "How long does it take for a new card to arrive?", tweet_id)
    mention_from(x_bot, user, "How long does it take for a new card to arrive?", tweet_id)
    dm_from(x_bot, user, "/thanks")
    dms_to(x_bot, user)  # one customer's replies go out in order: the second answer would be out by now
    assert len(tweets_under(x_bot, tweet_id)) == 1  # one thread under the tweet, not two
    assert user_texts(x_bot, user) == ["How long does it take for a new card to arrive?", "/thanks"]


def test_a_429_from_x_still_delivers_the_reply_exactly_once(x_bot: XBot) -> None:
    user = new_id()
    refused = x_bot.api.refusals("dms")
    x_bot.api.refuse_next("dms", 429, "Too Many Requests", reset_in=1)
    dm_from(x_bot, user, "/greet")
    dm_from(x_bot, user, "/thanks")
    replies = dms_to(x_bot, user, 2)
    assert x_bot.api.refusals("dms") == refused + 1
    assert len(replies) == 2 and "Reply 1 for" in replies[0]


def test_an_agents_reply_reaches_the_customer_by_dm_never_in_public(x_bot: XBot) -> None:
    user = new_id()
    tweet_id = mention_from(x_bot, user, "I want to talk to a person about a refund")
    assert tweets_under(x_bot, tweet_id) == [ACKNOWLEDGEMENT]
    dms_to(x_bot, user)
    [ticket] = tickets_of(x_bot, user)
    client, auth = x_bot.client, agent_headers(x_bot.bot)
    assert client.post(f"/desk/api/tickets/{ticket.id}/claim", headers=auth).status_code == 200
    reply = "Hi, Ana here. I've refunded the duplicate payment."
    response = client.post(f"/desk/api/tickets/{ticket.id}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    assert reply in dms_to(x_bot, user, 2)
    assert all(reply not in call["text"] for call in x_bot.api.calls("tweets"))
