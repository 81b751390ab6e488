"""The message sink every connector is given: run the engine once per platform delivery.

A redelivered webhook or a client's retry (the same channel and message_id) is recognised by
the key the first delivery's turn stored (`crowddesk.bot.conversations.deliveries`), even when it
races the original or lands on another server process; a delivery whose turn failed is processed
when it comes again. Channels that don't answer inline have the engine queue the replies in the
outbox, in the transaction that stores the turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from dataclasses import replace

from crowddesk.bot.conversations.deliveries import AlreadyDelivered, SeenMessages
from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.dialogue.engine import Engine, MessageRejected, TurnSummary
from crowddesk.bot.server.replay import first_replies
from crowddesk.connectors.base import ChannelConnector
from crowddesk.connectors.text import repaired
from crowddesk.connectors.types import InboundMessage, OutboundMessage

logger = logging.getLogger(__name__)


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
        """Process one verified message unless its delivery was processed before (then: [],
        or for an API client's retry the replies its first delivery got)."""
        connector = self.channels.get(message.channel)
        api_client = connector is not None and connector.api_client
        inline = connector is not None and connector.replies_inline
        try:
            return await self.engine.handle(
                repaired_message(message),
                outbox=None if inline else self.outbox,
                on_turn=self.on_turn,
                deliveries=self.seen,
            )
        except AlreadyDelivered:
            logger.info("%s delivered message %s again; ignored", message.channel, message.message_id)
            if api_client:  # a client's retry: answer it as the first delivery was answered
                return await asyncio.to_thread(first_replies, self.engine.store, message)
            return []
        except MessageRejected as rejected:
            if inline or api_client or message.message_id is None:  # the HTTP status tells the client why
                raise
            # A platform (it sends delivery ids) would redeliver a failed webhook forever: record
            # the delivery and tell the customer instead, once.
            logger.info("%s message from %s rejected: %s", message.channel, message.sender_id, rejected)
            if await asyncio.to_thread(self.seen.first_sight, message.channel, message.message_id):
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
