"""X (Twitter): mentions and Direct Messages through the Account Activity API webhook in, the
v2 API (the `tweepy` library) out.

X checks the webhook with a CRC GET (`crc_token`, answered with its HMAC-SHA256 under the
consumer secret) and signs every POST with `x-twitter-webhooks-signature`, the same HMAC of the
raw body. A tweet mentioning the account becomes an `InboundMessage` with
`metadata["public_post"]` (`crowddesk.bot.dialogue.public_posts` decides what may be said in
public); a Direct Message becomes an ordinary one. Both come from `x:<user id>`, so a mention
and the DMs after it are one conversation. Message ids are tweet and DM event ids, so a
redelivered webhook is processed once by the gateway.

Replies to a public post go under the tweet, as a thread when longer than a post; a reply that
must stay private posts only the acknowledgement under the tweet, then goes by DM, as do agents'
replies and answers to DMs. Buttons become a numbered list.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, ClassVar

import tweepy
from fastapi import APIRouter, HTTPException, Request
from requests import PreparedRequest, Response
from requests.adapters import HTTPAdapter

from crowddesk.connectors.base import (
    ChannelConnector,
    CredentialsError,
    DeliveryError,
    MessageSink,
    reject_unknown_keys,
    text_settings,
)
from crowddesk.connectors.numbered_buttons import chosen_payload, numbered_text
from crowddesk.connectors.reply_rate import ReplyRate
from crowddesk.connectors.segments import split_text
from crowddesk.connectors.types import InboundMessage, OutboundMessage

CHANNEL_NAME = "x"
SENDER_PREFIX = f"{CHANNEL_NAME}:"
WEBHOOK_PATH = "/webhooks/x/webhook"
SIGNATURE_HEADER = "x-twitter-webhooks-signature"
# The host tweepy's Client calls; `api_url` redirects it (a proxy, a test server).
TWEEPY_HOST = "https://api.twitter.com"
_REQUIRED_KEYS = ("consumer_key", "consumer_secret", "access_token", "access_token_secret")
MAX_POST_CHARACTERS = 280
MAX_DM_CHARACTERS = 10_000
# Below the outbox's send timeout: a hung request must end in its thread too, not only be abandoned.
REQUEST_TIMEOUT_SECONDS = 20.0
_LEADING_MENTIONS = re.compile(r"^(?:@\w+\s*)+")


@dataclass(frozen=True)
class XSettings:
    """The `x:` block of credentials.yml, validated: the app's consumer keys and the support
    account's access token (OAuth 1.0a user context, which posting and DMs need)."""

    consumer_key: str
    consumer_secret: str = field(repr=False)
    access_token: str
    access_token_secret: str = field(repr=False)
    api_url: str = TWEEPY_HOST

    @classmethod
    def parse(cls, block: Mapping[str, Any]) -> XSettings:
        """Check every key; a `CredentialsError` names the first one that is wrong."""
        reject_unknown_keys(CHANNEL_NAME, block, cls.__dataclass_fields__)
        values = text_settings(CHANNEL_NAME, block)
        for key in _REQUIRED_KEYS:
            if key not in values:
                raise CredentialsError(f"{CHANNEL_NAME}.{key}: missing; see the app's Keys and tokens page")
        if not values.get("api_url", TWEEPY_HOST).startswith(("https://", "http://")):
            raise CredentialsError(f"{CHANNEL_NAME}.api_url: expected an http(s):// URL")
        return cls(**values)


def signature(body: bytes, consumer_secret: str) -> str:
    """What X sends as `x-twitter-webhooks-signature` with `body` (and answers a CRC with)."""
    digest = hmac.new(consumer_secret.encode(), body, hashlib.sha256).digest()
    return "sha256=" + base64.b64encode(digest).decode()


class _ApiAdapter(HTTPAdapter):
    """Sends tweepy's requests to `api_url` with a timeout (tweepy sets neither)."""

    def __init__(self, api_url: str) -> None:
        super().__init__()
        self.api_url = api_url.rstrip("/")

    def send(self, request: PreparedRequest, **kwargs: Any) -> Response:  # type: ignore[override]
        if request.url and request.url.startswith(TWEEPY_HOST):
            request.url = self.api_url + request.url.removeprefix(TWEEPY_HOST)
        kwargs["timeout"] = kwargs.get("timeout") or REQUEST_TIMEOUT_SECONDS
        return super().send(request, **kwargs)


class XChannel(ChannelConnector):
    """One X account: its Account Activity webhook in, create_tweet and DMs out."""

    name: ClassVar[str] = CHANNEL_NAME
    # X's posting limits are per 15 minutes; past them it answers 429 with x-rate-limit-reset,
    # which the outbox waits out.
    max_messages_per_second: ClassVar[float] = 1.0

    def __init__(self, settings: XSettings) -> None:
        self.settings = settings
        self.client = tweepy.Client(
            consumer_key=settings.consumer_key,
            consumer_secret=settings.consumer_secret,
            access_token=settings.access_token,
            access_token_secret=settings.access_token_secret,
            return_type=dict,
        )
        self.client.session.mount(TWEEPY_HOST, _ApiAdapter(settings.api_url))
        self._reply_rate = ReplyRate()

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> XChannel:
        """Build from the `x:` block of credentials.yml."""
        return cls(XSettings.parse(settings))

    def router(self, sink: MessageSink) -> APIRouter:
        """GET (the CRC check) and POST (signed events) /webhooks/x/webhook."""
        router = APIRouter(tags=["channels"])

        @router.get(
            WEBHOOK_PATH,
            summary="X webhook CRC check",
            responses={400: {"description": "no crc_token"}},
        )
        async def crc(request: Request) -> dict[str, str]:
            token = request.query_params.get("crc_token")
            if not token:
                raise HTTPException(400, "expected a crc_token query parameter")
            return {"response_token": signature(token.encode(), self.settings.consumer_secret)}

        @router.post(
            WEBHOOK_PATH,
            summary=f"X Account Activity events (signed with {SIGNATURE_HEADER})",
            responses={400: {"description": "not JSON"}, 403: {"description": "bad signature"}},
        )
        async def webhook(request: Request) -> dict[str, str]:
            body = await request.body()
            header = request.headers.get(SIGNATURE_HEADER, "")
            if not hmac.compare_digest(header.encode(), signature(body, self.settings.consumer_secret).encode()):
                raise HTTPException(403, f"missing or wrong {SIGNATURE_HEADER} header")
            try:
                events = json.loads(body)
            except ValueError:
                raise HTTPException(400, "expected a JSON body") from None
            if not isinstance(events, dict):
                raise HTTPException(400, "expected a JSON object of Account Activity events")
            for inbound in self._inbound(events):
                await sink(replace(inbound, text=await chosen_payload(self.memory, inbound.sender_id, inbound.text)))
            return {}

        return router

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """A public reply under the post (a thread when longer than one), or the acknowledgement
        there and a DM, or a DM alone; refusals become `DeliveryError`s."""
        text = await numbered_text(self.memory, recipient_id, message)
        if message.image:
            text = f"{text}\n{message.image}" if text else message.image
        post = message.public_post or {}
        if post.get("visibility") == "public":
            await self._reply_in_public(recipient_id, str(post["post_id"]), text)
            return
        if post.get("acknowledgement"):
            await self._reply_in_public(recipient_id, str(post["post_id"]), str(post["acknowledgement"]))
        participant = recipient_id.removeprefix(SENDER_PREFIX)
        for part in split_text(text, MAX_DM_CHARACTERS):
            await asyncio.to_thread(
                self._call, self.client.create_direct_message, participant_id=participant, text=part
            )

    async def _reply_in_public(self, recipient_id: str, post_id: str, text: str) -> None:
        """Reply under `post_id`, each further part under the one before it. The tweets posted
        are remembered (the channel's memory, any server process), so a retry of a message
        skips the parts an earlier attempt posted, which X would refuse for good as duplicates,
        and continues the thread from the last one."""
        reply_to = post_id
        for part in split_text(text, MAX_POST_CHARACTERS):
            key = "posted:" + hashlib.sha256(f"{reply_to}\n{part}".encode()).hexdigest()[:32]
            posted = await asyncio.to_thread(self.memory.recall, recipient_id, key)
            if posted is None:
                created = await asyncio.to_thread(
                    self._call, self.client.create_tweet, text=part, in_reply_to_tweet_id=reply_to
                )
                posted = str(created["data"]["id"])
                await asyncio.to_thread(self.memory.remember, recipient_id, key, posted)
            reply_to = str(posted)

    def _call(self, method: Callable[..., Any], **params: Any) -> Any:
        try:
            return method(**params)
        except tweepy.TooManyRequests as exc:
            reset = exc.response.headers.get("x-rate-limit-reset")
            retry_after = max(1.0, float(reset) - time.time()) if reset and reset.isdigit() else None
            raise DeliveryError(_refusal(exc), retry_after=retry_after) from exc
        except tweepy.TwitterServerError as exc:
            raise DeliveryError(_refusal(exc)) from exc
        except tweepy.HTTPException as exc:  # any other 4xx: the request itself is wrong
            raise DeliveryError(_refusal(exc), permanent=True) from exc
        except (tweepy.TweepyException, OSError) as exc:
            # Network errors and timeouts (requests' errors are OSErrors): the outbox retries.
            raise DeliveryError(f"X could not be reached: {exc}") from exc

    def _inbound(self, events: Mapping[str, Any]) -> Iterator[InboundMessage]:
        account = str(events.get("for_user_id") or "")
        for tweet in events.get("tweet_create_events") or ():
            message = self._mention(account, tweet)
            if message is not None:
                yield message
        for event in events.get("direct_message_events") or ():
            message = self._direct_message(account, event)
            if message is not None:
                yield message

    def _mention(self, account: str, tweet: Mapping[str, Any]) -> InboundMessage | None:
        """A tweet mentioning the account, from someone else, as a message from a public post."""
        user = tweet.get("user") or {}
        author, tweet_id = str(user.get("id_str") or ""), str(tweet.get("id_str") or "")
        mentions = {str(m.get("id_str")) for m in (tweet.get("entities") or {}).get("user_mentions") or ()}
        if not author or not tweet_id or author == account or account not in mentions or "retweeted_status" in tweet:
            return None  # the account's own tweets, retweets, and tweets it is not mentioned in
        full_text = (tweet.get("extended_tweet") or {}).get("full_text") or tweet.get("text") or ""
        text = _LEADING_MENTIONS.sub("", full_text).strip()
        if not text:
            return None  # a bare mention: nothing for the bot to read
        parent = tweet.get("in_reply_to_status_id_str")
        handle = str(user.get("screen_name") or "")
        followers = user.get("followers_count")
        post = {
            "platform": CHANNEL_NAME,
            "post_id": tweet_id,
            "author": handle,
            "followers": followers if isinstance(followers, int) else None,
            "replies_last_hour": self._reply_rate.add(str(parent), tweet_id, time.time()) if parent else None,
            "url": f"https://x.com/{handle or 'i'}/status/{tweet_id}",
        }
        return InboundMessage(
            CHANNEL_NAME, f"{SENDER_PREFIX}{author}", text, message_id=tweet_id, metadata={"public_post": post}
        )

    def _direct_message(self, account: str, event: Mapping[str, Any]) -> InboundMessage | None:
        """A DM someone else sent to the account; a quick reply's metadata is its payload."""
        create = event.get("message_create") or {}
        sender, event_id = str(create.get("sender_id") or ""), str(event.get("id") or "")
        if event.get("type") != "message_create" or not sender or not event_id or sender == account:
            return None  # the account's own DMs come back as events too
        data = create.get("message_data") or {}
        quick_reply = (data.get("quick_reply_response") or {}).get("metadata")
        text = str(quick_reply or data.get("text") or "")
        if not text.strip():
            return None  # a picture alone: nothing for the bot to read
        return InboundMessage(CHANNEL_NAME, f"{SENDER_PREFIX}{sender}", text, message_id=event_id)


def _refusal(exc: tweepy.HTTPException) -> str:
    """X's own words on a refusal, never the credentials."""
    messages = "; ".join(str(m) for m in exc.api_messages) or str(exc.response.reason)
    return f"X refused the message: HTTP {exc.response.status_code}: {messages}"
