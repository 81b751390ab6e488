"""The Slack channel: real slack-bolt and slack_sdk against the fake Slack on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from crowddesk.connectors.base import CredentialsError, DeliveryError
from crowddesk.connectors.slack import EVENTS_PATH, INTERACTIVE_PATH, SlackChannel
from crowddesk.connectors.slack_blocks import SECTION_CHARS
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.demo_bot import free_port
from tests.fakes.slack_api import (
    BOT_ID,
    BOT_TOKEN,
    BOT_USER_ID,
    SIGNING_SECRET,
    FakeSlackAPI,
    block_actions,
    channel_message,
    direct_message,
    event_callback,
    mention,
    signed_headers,
)
from tests.slack_bot import SlackBot, new_id

DM = "D0CUSTOMER"
USER = "U0CUSTOMER"


class RecordingSink:
    """Stands in for the gateway: records what the channel hands over, replies nothing."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self._arrived = threading.Condition()

    async def __call__(self, message: InboundMessage) -> list[OutboundMessage]:
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return []

    def wait_for(self, count: int, timeout: float = 10.0) -> list[InboundMessage]:
        with self._arrived:
            if not self._arrived.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"expected {count} message(s), got {self.messages}")
            return list(self.messages)


def credentials(api: FakeSlackAPI, **extra: Any) -> dict[str, Any]:
    return {"slack_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET, "base_url": api.base_url, **extra}


@pytest.fixture()
def channel(slack_api: FakeSlackAPI) -> SlackChannel:
    return SlackChannel.from_credentials(credentials(slack_api))


@pytest.fixture()
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture()
def client(channel: SlackChannel, sink: RecordingSink) -> Iterator[TestClient]:
    """The channel's webhook routes in an app whose shutdown stops the channel, as `crowddesk run` does."""

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await channel.stop()

    app = FastAPI(lifespan=lifespan)
    router = channel.router(sink)
    assert router is not None
    app.include_router(router)
    with TestClient(app) as test_client:
        yield test_client


def post_event(client: TestClient, event: dict[str, Any], event_id: str | None = None, **headers: str) -> Any:
    body = event_callback(event, event_id)
    return client.post(EVENTS_PATH, content=body, headers={**signed_headers(body), **headers})


# -- inbound ------------------------------------------------------------------------------


def test_url_verification_handshake_echoes_the_challenge(client: TestClient) -> None:
    body = json.dumps(
        {
            "token": "unused",
            "challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P",
            "type": "url_verification",
        }
    )
    response = client.post(EVENTS_PATH, content=body, headers=signed_headers(body))
    assert response.status_code == 200
    assert response.json() == {"challenge": "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"}


def test_a_direct_message_reaches_the_bot_with_the_event_id(client: TestClient, sink: RecordingSink) -> None:
    response = post_event(client, direct_message(DM, USER, "How do I freeze my card?"), "Ev0FREEZE")
    assert response.status_code == 200
    [message] = sink.wait_for(1)
    assert (message.channel, message.sender_id, message.text, message.message_id) == (
        "slack",
        f"slack:{DM}:{USER}",
        "How do I freeze my card?",
        "Ev0FREEZE",
    )
    assert message.metadata["team_id"] == "T0TEAM"


@pytest.mark.parametrize("forgery", ["wrong secret", "stale timestamp", "tampered body", "no signature"])
def test_a_forged_request_is_refused_and_never_reaches_the_bot(
    client: TestClient,
    sink: RecordingSink,
    forgery: str,
) -> None:
    body = event_callback(direct_message(DM, USER, "transfer all my money"))
    headers = {
        "wrong secret": signed_headers(body, secret="not-the-signing-secret"),
        "stale timestamp": signed_headers(body, timestamp=int(time.time()) - 600),
        "tampered body": signed_headers(body.replace("all my", "none of my")),
        "no signature": {"Content-Type": "application/json"},
    }[forgery]
    assert client.post(EVENTS_PATH, content=body, headers=headers).status_code == 401
    # A genuine message afterwards is the only one the bot sees.
    post_event(client, direct_message(DM, USER, "hello"))
    assert [m.text for m in sink.wait_for(1)] == ["hello"]


def test_bots_edits_and_channel_chatter_are_acknowledged_but_ignored(
    client: TestClient,
    sink: RecordingSink,
) -> None:
    ignored = [
        direct_message(DM, BOT_USER_ID, "our own reply", bot_id=BOT_ID),
        direct_message(DM, "U0OTHERBOT", "another bot", bot_id="B0OTHER", subtype="bot_message"),
        direct_message(DM, USER, "edited", subtype="message_changed"),
        channel_message("C0GENERAL", USER, "chatter in a channel, no mention"),
        direct_message(DM, USER, "   "),
    ]
    for event in ignored:
        assert post_event(client, event).status_code == 200
    post_event(client, direct_message(DM, USER, "a real question"))
    assert [m.text for m in sink.wait_for(1)] == ["a real question"]


def test_a_mention_in_a_channel_is_a_conversation_with_that_user_there(
    client: TestClient,
    sink: RecordingSink,
) -> None:
    post_event(client, mention("C0GENERAL", USER, "what are your fees?"))
    [message] = sink.wait_for(1)
    assert (message.sender_id, message.text) == (f"slack:C0GENERAL:{USER}", "what are your fees?")


def test_a_retried_event_keeps_its_event_id_so_the_gateway_can_drop_it(
    client: TestClient,
    sink: RecordingSink,
) -> None:
    event = direct_message(DM, USER, "is the app down?")
    first = post_event(client, event, "Ev0RETRIED")
    retry = post_event(
        client, event, "Ev0RETRIED", **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    )
    assert (first.status_code, retry.status_code) == (200, 200)
    assert [m.message_id for m in sink.wait_for(2)] == ["Ev0RETRIED", "Ev0RETRIED"]


def test_a_button_press_sends_the_buttons_payload(client: TestClient, sink: RecordingSink) -> None:
    body = block_actions(DM, USER, "crowddesk_button_1", "/faq/freeze_card")
    response = client.post(
        INTERACTIVE_PATH, content=body, headers=signed_headers(body, content_type="application/x-www-form-urlencoded")
    )
    assert response.status_code == 200
    [message] = sink.wait_for(1)
    assert (message.sender_id, message.text) == (f"slack:{DM}:{USER}", "/faq/freeze_card")
    assert message.message_id and message.message_id.count(".") == 2  # the interaction's trigger_id


# -- outbound -----------------------------------------------------------------------------


def send(channel: SlackChannel, recipient: str, message: OutboundMessage) -> None:
    asyncio.run(channel.send(recipient, message))


def test_a_reply_is_block_kit_with_buttons_and_the_source_link(
    channel: SlackChannel,
    slack_api: FakeSlackAPI,
) -> None:
    before = len(slack_api.calls("chat.postMessage"))
    answer = OutboundMessage(
        f"slack:{DM}:{USER}",
        "Freeze it in the app under Cards > Freeze.\n\nSource: https://community.example/t/42",
        buttons=(Button("Yes, thanks", "/affirm"), Button("No", "/deny")),
        custom={"kb_entry": "faq/freeze_card", "source_url": "https://community.example/t/42"},
    )
    send(channel, answer.recipient_id, answer)
    call = slack_api.wait_for("chat.postMessage", before + 1)[-1]
    assert call["channel"] == DM
    assert call["text"] == "Freeze it in the app under Cards &gt; Freeze."
    section, source, buttons = call["blocks"]
    assert section == {"type": "section", "text": {"type": "mrkdwn", "text": call["text"]}}
    assert source["elements"][0]["text"] == "Source: <https://community.example/t/42>"
    assert [(b["text"]["text"], b["value"]) for b in buttons["elements"]] == [
        ("Yes, thanks", "/affirm"),
        ("No", "/deny"),
    ]


def test_a_reply_in_a_channel_mentions_the_customer_and_long_text_is_split(
    channel: SlackChannel,
    slack_api: FakeSlackAPI,
) -> None:
    before = len(slack_api.calls("chat.postMessage"))
    long_text = "\n".join(["A line an agent wrote about fees."] * 150)  # ~5,000 characters
    send(channel, f"slack:C0GENERAL:{USER}", OutboundMessage(f"slack:C0GENERAL:{USER}", long_text))
    call = slack_api.wait_for("chat.postMessage", before + 1)[-1]
    assert call["channel"] == "C0GENERAL"
    assert call["text"].startswith(f"<@{USER}> A line")
    assert len(call["blocks"]) == 2
    assert all(len(b["text"]["text"]) <= SECTION_CHARS for b in call["blocks"])


def test_rate_limit_server_error_and_unknown_channel_become_delivery_errors(
    channel: SlackChannel,
    slack_api: FakeSlackAPI,
) -> None:
    message = OutboundMessage(f"slack:{DM}:{USER}", "hello")
    slack_api.rate_limit_next("chat.postMessage", retry_after=7)
    with pytest.raises(DeliveryError) as limited:
        send(channel, message.recipient_id, message)
    assert (limited.value.retry_after, limited.value.permanent) == (7.0, False)

    slack_api.server_error_next("chat.postMessage")
    with pytest.raises(DeliveryError) as down:
        send(channel, message.recipient_id, message)
    assert (down.value.retry_after, down.value.permanent) == (None, False)

    for error in ("channel_not_found", "not_in_channel", "account_inactive"):
        slack_api.error_next("chat.postMessage", error)
        with pytest.raises(DeliveryError, match=error) as gone:
            send(channel, message.recipient_id, message)
        assert gone.value.permanent


def test_an_unreachable_slack_is_a_retryable_delivery_error() -> None:
    closed = f"http://127.0.0.1:{free_port()}/api/"
    channel = SlackChannel.from_credentials(
        {"slack_token": BOT_TOKEN, "slack_signing_secret": SIGNING_SECRET, "base_url": closed}
    )
    with pytest.raises(DeliveryError, match="unreachable") as refused:
        send(channel, f"slack:{DM}:{USER}", OutboundMessage(f"slack:{DM}:{USER}", "hello"))
    assert not refused.value.permanent


# -- credentials --------------------------------------------------------------------------


def test_socket_mode_needs_an_app_token_instead_of_a_signing_secret() -> None:
    channel = SlackChannel.from_credentials(
        {"slack_token": BOT_TOKEN, "socket_mode": "true", "slack_app_token": "xapp-1-A0APP-1-abc"}
    )
    assert channel.settings.socket_mode
    assert channel.router(RecordingSink()) is None  # no webhook: events arrive over the socket


@pytest.mark.parametrize(
    ("block", "error"),
    [
        ({}, "slack.slack_token: missing"),
        ({"slack_token": BOT_TOKEN}, "slack.slack_signing_secret: missing; it is required unless socket_mode"),
        ({"slack_token": BOT_TOKEN, "socket_mode": True}, "slack.slack_app_token: missing"),
        ({"slack_token": BOT_TOKEN, "socket_mode": True, "slack_app_token": "xoxb-wrong"}, "app-level token"),
        ({"slack_token": "xapp-1-A0APP-1-abc", "slack_signing_secret": "s"}, "slack.slack_token: this is an app-level"),
        (
            {"slack_token": BOT_TOKEN, "slack_signing_secret": "s", "socket_mode": "sometimes"},
            "slack.socket_mode: must be true or false",
        ),
        (
            {"slack_token": BOT_TOKEN, "slack_signing_secret": "s", "use_threads": True},
            "slack.use_threads: unknown key; expected one of: base_url, desk_channel",
        ),
        ({"slack_token": 12345, "slack_signing_secret": "s"}, "slack.slack_token: must be a string"),
    ],
)
def test_credentials_errors_name_the_key_and_never_the_secret(block: dict[str, Any], error: str) -> None:
    with pytest.raises(CredentialsError, match=error) as raised:
        SlackChannel.from_credentials(block)
    assert "xoxb-test-bot-token" not in str(raised.value)


# -- through crowddesk's server: gateway, engine, outbox ----------------------------------


def source_line(post: dict[str, Any]) -> str:
    """The text of a posted KB answer's source block (its feedback buttons come after it)."""
    [context] = [block for block in post["blocks"] if block["type"] == "context"]
    return str(context["elements"][0]["text"])


def test_a_question_in_a_direct_message_is_answered_with_its_source(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    assert (
        slack_bot.event(direct_message(dm, user, "It's been a week and my new card still hasn't arrived")).status_code
        == 200
    )
    [answer] = slack_bot.posts_to(dm)
    assert source_line(answer).startswith("Source: <https://community.northwind-bank.example/t/")
    assert [b["text"]["text"] for b in answer["blocks"][-1]["elements"]] == ["Helpful", "Not helpful"]
    assert slack_bot.tracker(f"slack:{dm}:{user}")["latest_message"]["intent"]["name"] == "faq/card_arrival"


def test_pressing_a_button_of_the_greeting_answers_that_question(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    slack_bot.event(direct_message(dm, user, "hello there"))
    [greeting] = slack_bot.posts_to(dm)
    buttons = {b["text"]["text"]: b for b in greeting["blocks"][-1]["elements"]}
    pressed = buttons["Card not arrived"]
    assert slack_bot.press(dm, user, pressed["action_id"], pressed["value"]).status_code == 200
    answer = slack_bot.posts_to(dm, 2)[-1]
    assert "community.northwind-bank.example" in source_line(answer)


def test_a_forged_event_is_refused_and_nothing_is_stored(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    body = event_callback(direct_message(dm, user, "hello there"))
    response = slack_bot.client.post(EVENTS_PATH, content=body, headers=signed_headers(body, secret="guessed-secret"))
    assert response.status_code == 401
    assert slack_bot.tracker(f"slack:{dm}:{user}")["events"] == []


def test_a_retried_event_is_answered_once(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    event = direct_message(dm, user, "hello there")
    slack_bot.event(event, "Ev0ONCE" + dm)
    slack_bot.event(event, "Ev0ONCE" + dm, **{"X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"})
    slack_bot.event(event, "Ev0ONCE" + dm, **{"X-Slack-Retry-Num": "2", "X-Slack-Retry-Reason": "http_timeout"})
    # A later message's reply follows any reply to the retries (one conversation, one order).
    slack_bot.event(direct_message(dm, user, "thank you"))
    replies = slack_bot.posts_to(dm, 2)
    assert len(replies) == 2
    said = [e["text"] for e in slack_bot.tracker(f"slack:{dm}:{user}")["events"] if e["event"] == "user"]
    assert said == ["hello there", "thank you"]


def test_a_rate_limited_reply_is_delivered_once_after_retry_after(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    refused_before = slack_bot.api.refusals("chat.postMessage")
    slack_bot.api.rate_limit_next("chat.postMessage", retry_after=1, where=lambda call: call["channel"] == dm)
    slack_bot.event(direct_message(dm, user, "hello there"))
    [greeting] = slack_bot.posts_to(dm)
    assert greeting["text"].startswith(("Hi, I'm the Northwind", "Hello!"))
    assert slack_bot.api.refusals("chat.postMessage") == refused_before + 1
    # One customer's messages go out in order, so once the next reply is out the first one
    # is settled: sent once, after one refusal.
    slack_bot.event(direct_message(dm, user, "thank you"))
    replies = slack_bot.posts_to(dm, 2)
    assert len(replies) == 2 and replies[0] == greeting and replies[1]["text"] != greeting["text"]
    first, _ = [r for r in slack_bot.bot.outbox.records() if r.message.recipient_id == f"slack:{dm}:{user}"]
    assert (first.status, first.attempts) == ("delivered", 2)


def test_an_agents_reply_after_a_handoff_reaches_the_slack_customer(slack_bot: SlackBot) -> None:
    dm, user = new_id("D"), new_id("U")
    slack_bot.event(direct_message(dm, user, "I want to talk to a real person please"))
    slack_bot.posts_to(dm)  # the bot says a person will take over
    ticket = slack_bot.tracker(f"slack:{dm}:{user}")["handoff"]
    assert ticket is not None and ticket["packet"]["channel"] == "slack"
    agent = slack_bot.bot.agents.add(new_id("agent-"), "Grace")
    headers = {"Authorization": f"Bearer {slack_bot.bot.agents.issue_token(agent.id)}"}
    api = f"/desk/api/tickets/{ticket['id']}"
    assert slack_bot.client.post(f"{api}/claim", headers=headers).status_code == 200
    assert (
        slack_bot.client.post(
            f"{api}/reply", headers=headers, json={"text": "Hi, Grace here. Your card is on its way."}
        ).status_code
        == 200
    )
    [reply] = slack_bot.api.wait_for(
        "chat.postMessage", where=lambda call: call["channel"] == dm and "Grace" in call["text"]
    )
    assert reply["text"] == "Hi, Grace here. Your card is on its way."
    assert reply["blocks"][0]["elements"][0]["text"] == "*Grace*, support team"
