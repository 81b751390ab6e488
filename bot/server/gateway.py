"""The message sink every connector is given: de-duplicate, then run the engine.

Platforms redeliver webhooks they think were lost (Telegram resends an update, Slack retries an
event with `X-Slack-Retry-Num`); the first delivery of a (channel, message_id) pair wins
through a unique key in the database, so a redelivery never reaches the engine, even when it
races the original or lands on another server process. Channels that don't answer inline
have the engine queue the replies in the outbox, in the transaction that stores the turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import delete
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.store import InboundMessageRow
from crowddesk.bot.dialogue.engine import Engine, MessageRejected, TurnSummary
from crowddesk.bot.server.replay import first_replies
from crowddesk.connectors.base import ChannelConnector
from crowddesk.connectors.text import repaired
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from crowddesk.storage.upserts import insert_missing

logger = logging.getLogger(__name__)


class SeenMessages:
    """Which platform deliveries were already handed to the engine."""

    def __init__(self, engine: SqlEngine) -> None:
        self._sessions = sessionmaker(engine)

    def first_sight(self, channel: str, message_id: str) -> bool:
        """Record the delivery; True only for the first caller with this (channel, message_id)."""
        row = {"channel": channel, "message_id": message_id, "received_at": datetime.now(UTC)}
        with self._sessions.begin() as session:
            return insert_missing(session, InboundMessageRow, [row]) == 1

    def forget(self, channel: str, message_id: str) -> None:
        """Drop the record so a redelivery is processed (the first attempt failed)."""
        with self._sessions.begin() as session:
            session.execute(
                delete(InboundMessageRow).where(
                    InboundMessageRow.channel == channel, InboundMessageRow.message_id == message_id
                )
            )


def repaired_message(message: InboundMessage) -> InboundMessage:
    """`message` with its text normalised (`normalise_text`), the original kept when changed."""
    text, original = repaired(message.text)
    if text == message.text:
        return message
    return replace(message, text=text, original_text=original)


class Gateway:
    """The `MessageSink` for all connectors. Returns the replies; for channels that don't
    answer inline they are also stored in the outbox, which delivers them through `send`."""

    def __init__(
        self,
        engine: Engine,
        seen: SeenMessages,
        outbox: Outbox,
        channels: Mapping[str, ChannelConnector],
        on_turn: Callable[[TurnSummary], None] | None = None,
    ) -> None:
        self.engine = engine
        self.seen = seen
        self.outbox = outbox
        self.channels = channels
        self.on_turn = on_turn  # hears each turn the engine stores (the app's metrics)

    async def __call__(self, message: InboundMessage) -> list[OutboundMessage]:
        """Process one verified message unless its delivery id was seen before (then: [])."""
        delivery_id = message.message_id
        connector = self.channels.get(message.channel)
        api_client = connector is not None and connector.api_client
        if delivery_id is not None and not await asyncio.to_thread(self.seen.first_sight, message.channel, delivery_id):
            logger.info("%s delivered message %s again; ignored", message.channel, delivery_id)
            if api_client:  # a client's retry: answer it as the first delivery was answered
                return await asyncio.to_thread(first_replies, self.engine.store, message)
            return []
        message = repaired_message(message)
        inline = connector is not None and connector.replies_inline
        try:
            return await self.engine.handle(message, outbox=None if inline else self.outbox, on_turn=self.on_turn)
        except MessageRejected as rejected:
            if inline or api_client or delivery_id is None:  # the HTTP status tells the client why
                await self._forget(message)
                raise
            # A platform (it sends delivery ids) would redeliver a failed webhook forever: keep
            # the delivery record, tell the customer instead.
            logger.info("%s message from %s rejected: %s", message.channel, message.sender_id, rejected)
            await asyncio.to_thread(
                self.outbox.enqueue,
                message.channel,
                [
                    OutboundMessage(
                        message.sender_id,
                        f"Sorry, I couldn't read that: {rejected}. Please send it again in shorter parts.",
                    )
                ],
            )
            return []
        except BaseException:
            # The turn was not stored (its events and queued replies commit together): let the
            # platform's redelivery try again.
            await self._forget(message)
            raise

    async def _forget(self, message: InboundMessage) -> None:
        if message.message_id is not None:
            await asyncio.to_thread(self.seen.forget, message.channel, message.message_id)
