"""Running the configured channels: their background reception and the outbox worker."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

from crowddesk.bot.outbox import OutboxWorker
from crowddesk.connectors.base import ChannelConnector, MessageSink

logger = logging.getLogger(__name__)


@asynccontextmanager
async def running_channels(
    channels: Mapping[str, ChannelConnector], sink: MessageSink, worker: OutboxWorker
) -> AsyncIterator[None]:
    """Start the outbox worker and every connector; on exit stop the worker first (rows it
    was sending are retried later, not lost), then the connectors and their clients."""
    worker.start()
    try:
        for connector in channels.values():
            await connector.start(sink)
        yield
    finally:
        await worker.stop()
        for name, connector in channels.items():
            try:
                await connector.stop()
            except Exception:  # one channel's failed shutdown must not keep the others open
                logger.exception("stopping the %s channel failed", name)
