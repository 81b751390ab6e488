"""Per channel, for `benchmarks.channels`: how to send one signed inbound message as the platform
would, and how to recognise its reply at the channel's fake platform server (tests/fakes).

A channel joins the benchmark with one `ChannelAdapter` in `ADAPTERS`: its credentials.yml block
pointed at the fake, the webhook request for one customer's message, and the recorded call that
carries a reply with the customer it is addressed to.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, cast

from crowddesk.connectors.meta.messaging import InstagramChannel, MessengerChannel, MetaMessagingChannel
from crowddesk.connectors.meta.whatsapp import WEBHOOK_PATH as WHATSAPP_WEBHOOK_PATH
from crowddesk.connectors.slack import EVENTS_PATH
from crowddesk.connectors.telegram import SECRET_HEADER
from crowddesk.connectors.telegram import WEBHOOK_PATH as TELEGRAM_WEBHOOK_PATH
from crowddesk.connectors.twilio_sms import WEBHOOK_PATH as TWILIO_WEBHOOK_PATH
from crowddesk.connectors.x import WEBHOOK_PATH as X_WEBHOOK_PATH
from tests.fakes import meta_send_api, slack_api, telegram_api, twilio_api, whatsapp_api, x_api
from tests.fakes.server import FakeAPIServer, Params

ARRIVED = "_arrived"
"""Added to every call a timed fake records: `time.perf_counter()` when the fake accepted it."""

F = TypeVar("F", bound=FakeAPIServer)


class _ArrivalTimes(FakeAPIServer):
    def record(self, method: str, params: Params) -> None:
        # Stamped in the fake's own thread as the call is accepted, not when a waiter wakes up.
        super().record(method, {**params, ARRIVED: time.perf_counter()})


def timed(fake: type[F]) -> type[F]:
    """`fake` with each accepted call stamped with its arrival time under `ARRIVED`."""
    return cast(type[F], type(f"Timed{fake.__name__}", (_ArrivalTimes, fake), {}))


@dataclass(frozen=True)
class Webhook:
    """One inbound HTTP request as the platform sends it to CrowdDesk."""

    path: str
    body: bytes
    headers: dict[str, str]


@dataclass(frozen=True)
class FakePlatform(Generic[F]):
    """A channel's fake platform server, how the channel is pointed at it, and where replies land."""

    api: type[F]
    credentials: Callable[[F], dict[str, Any]]
    """The channel's credentials.yml block, pointed at the running fake."""
    reply_method: str
    """The fake's name for the call that delivers one message (what `FakeAPIServer.calls` takes)."""
    recipient: Callable[[Params], str]
    """The customer a recorded reply is addressed to, as `ChannelAdapter.customer` names them."""


@dataclass(frozen=True)
class ChannelAdapter:
    """One channel as the benchmark drives it."""

    name: str
    """The channel's block in credentials.yml (and its registry name)."""
    customer: Callable[[int], str]
    """The address of customer number n on this channel (a chat id, a phone number...)."""
    inbound: Callable[[str, int, str], Webhook]
    """The signed webhook request for (customer address, message number unique in the run, text)."""
    platform: FakePlatform[Any] | None = None
    """None when the replies are the webhook's HTTP response (REST)."""


def _json(data: Any) -> bytes:
    return json.dumps(data).encode()


def _rest_message(customer: str, number: int, text: str) -> Webhook:
    return Webhook("/webhooks/rest/webhook", _json({"sender": customer, "message": text}), {})


# -- telegram: webhook mode, the secret token Telegram echoes in a header -----------------------

TELEGRAM_SECRET = "benchmark-secret-token"


def _telegram_block(api: telegram_api.FakeTelegramAPI) -> dict[str, Any]:
    return {
        "access_token": telegram_api.TOKEN,
        "secret_token": TELEGRAM_SECRET,
        "webhook_url": "https://bot.example.com" + TELEGRAM_WEBHOOK_PATH,
        "base_url": api.base_url,
    }


def _telegram_update(customer: str, number: int, text: str) -> Webhook:
    update = telegram_api.text_update(number, int(customer), text)
    return Webhook(
        TELEGRAM_WEBHOOK_PATH,
        _json(update),
        {"Content-Type": "application/json", SECRET_HEADER: TELEGRAM_SECRET},
    )


# -- slack: an Events API direct message, signed with the signing secret ------------------------


def _slack_block(api: slack_api.FakeSlackAPI) -> dict[str, Any]:
    return {
        "slack_token": slack_api.BOT_TOKEN,
        "slack_signing_secret": slack_api.SIGNING_SECRET,
        "base_url": api.base_url,
    }


def _slack_event(customer: str, number: int, text: str) -> Webhook:
    # The customer's direct-message conversation D… with its user U… (same digits).
    body = slack_api.event_callback(slack_api.direct_message(customer, "U" + customer[1:], text), f"Ev{number:012d}")
    return Webhook(EVENTS_PATH, body.encode(), slack_api.signed_headers(body))


# -- twilio: an inbound SMS form, signed with the auth token over the public webhook URL ---------


def _twilio_block(api: twilio_api.FakeTwilioAPI) -> dict[str, Any]:
    return {
        "account_sid": twilio_api.ACCOUNT_SID,
        "auth_token": twilio_api.AUTH_TOKEN,
        "twilio_number": twilio_api.TWILIO_NUMBER,
        "public_url": twilio_api.PUBLIC_URL,
        "api_url": api.base_url,
    }


def _twilio_sms(customer: str, number: int, text: str) -> Webhook:
    fields = twilio_api.incoming_sms(customer, text, f"SM{number:032x}")
    body, headers = twilio_api.signed(twilio_api.PUBLIC_URL + TWILIO_WEBHOOK_PATH, fields)
    return Webhook(TWILIO_WEBHOOK_PATH, body.encode(), headers)


# -- whatsapp: a Cloud API webhook delivery, signed with the app secret --------------------------


def _whatsapp_block(api: whatsapp_api.FakeWhatsAppAPI) -> dict[str, Any]:
    return {
        "phone_number_id": whatsapp_api.PHONE_NUMBER_ID,
        "access_token": whatsapp_api.ACCESS_TOKEN,
        "app_secret": whatsapp_api.APP_SECRET,
        "verify_token": whatsapp_api.VERIFY_TOKEN,
        "api_url": api.base_url,
    }


def _whatsapp_message(customer: str, number: int, text: str) -> Webhook:
    delivery = whatsapp_api.delivery(whatsapp_api.text_message(customer, text, f"wamid.IN{number:020d}"))
    return Webhook(WHATSAPP_WEBHOOK_PATH, *whatsapp_api.signed(delivery))


# -- messenger and instagram: Meta's messaging webhook, signed with the app secret --------------


def _meta_block(platform: str) -> Callable[[meta_send_api.FakeMetaSendAPI], dict[str, Any]]:
    def block(api: meta_send_api.FakeMetaSendAPI) -> dict[str, Any]:
        return {
            "page_access_token": meta_send_api.ACCESS_TOKENS[platform],
            "app_secret": meta_send_api.APP_SECRET,
            "verify_token": meta_send_api.VERIFY_TOKEN,
            "api_url": api.base_url,
        }

    return block


def _meta_message(channel: type[MetaMessagingChannel]) -> Callable[[str, int, str], Webhook]:
    def message(customer: str, number: int, text: str) -> Webhook:
        event = meta_send_api.text_message(channel.name, customer, text, f"m_in{number}")
        body = meta_send_api.webhook_body(channel.name, event)
        return Webhook(channel.webhook_path(), *meta_send_api.signed(body))

    return message


def _meta_adapter(channel: type[MetaMessagingChannel]) -> ChannelAdapter:
    return ChannelAdapter(
        channel.name,
        customer=lambda n: str(7_000_000_000_000_000 + n),
        inbound=_meta_message(channel),
        platform=FakePlatform(
            meta_send_api.FakeMetaSendAPI,
            _meta_block(channel.name),
            "messages",
            lambda call: str(call["recipient"]["id"]),
        ),
    )


# -- x: a direct message in the Account Activity webhook, signed with the consumer secret -------


def _x_block(api: x_api.FakeXAPI) -> dict[str, Any]:
    return {
        "consumer_key": x_api.CONSUMER_KEY,
        "consumer_secret": x_api.CONSUMER_SECRET,
        "access_token": x_api.ACCESS_TOKEN,
        "access_token_secret": x_api.ACCESS_TOKEN_SECRET,
        "api_url": api.base_url,
    }


def _x_direct_message(customer: str, number: int, text: str) -> Webhook:
    payload = x_api.events(dms=[x_api.direct_message(str(number), customer, text)])
    return Webhook(X_WEBHOOK_PATH, *x_api.signed(payload))


ADAPTERS: dict[str, ChannelAdapter] = {
    adapter.name: adapter
    for adapter in (
        ChannelAdapter("rest", customer=lambda n: f"bench-{n}", inbound=_rest_message),
        ChannelAdapter(
            "telegram",
            customer=lambda n: str(100_000 + n),
            inbound=_telegram_update,
            platform=FakePlatform(
                telegram_api.FakeTelegramAPI, _telegram_block, "sendMessage", lambda call: str(call["chat_id"])
            ),
        ),
        ChannelAdapter(
            "slack",
            customer=lambda n: f"D{n:010d}",
            inbound=_slack_event,
            platform=FakePlatform(
                slack_api.FakeSlackAPI, _slack_block, "chat.postMessage", lambda call: str(call["channel"])
            ),
        ),
        ChannelAdapter(
            "twilio",
            customer=lambda n: f"+1555{n:07d}",
            inbound=_twilio_sms,
            platform=FakePlatform(twilio_api.FakeTwilioAPI, _twilio_block, "messages", lambda call: str(call["To"])),
        ),
        ChannelAdapter(
            "whatsapp",
            customer=lambda n: f"1555{n:07d}",
            inbound=_whatsapp_message,
            platform=FakePlatform(
                whatsapp_api.FakeWhatsAppAPI, _whatsapp_block, "messages", lambda call: str(call["to"])
            ),
        ),
        _meta_adapter(MessengerChannel),
        _meta_adapter(InstagramChannel),
        ChannelAdapter(
            "x",
            customer=lambda n: str(2_000_000_000 + n),
            inbound=_x_direct_message,
            platform=FakePlatform(x_api.FakeXAPI, _x_block, "dms", lambda call: str(call["participant_id"])),
        ),
    )
}
"""The channels the benchmark knows; REST is the reference the others are compared with."""
