"""Running the configured channels: their background reception, the outbox worker, the Slack desk
and the web chat frames other server processes publish."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from functools import partial

from crowddesk.bot.conversations.outbox import OutboxWorker
from crowddesk.bot.desk.rating import rating_request
from crowddesk.bot.desk.slack import SlackDesk
from crowddesk.bot.server.assemble import Bot
from crowddesk.connectors.base import ChannelConnector, MessageSink
from crowddesk.connectors.slack import SlackChannel
from crowddesk.connectors.webchat import WebchatChannel

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


@asynccontextmanager
async def running_slack_desk(bot: Bot) -> AsyncIterator[SlackDesk | None]:
    """The Slack desk while the server runs, when the slack channel names a `desk_channel`."""
    slack = bot.channels.get("slack")
    if not isinstance(slack, SlackChannel) or slack.desk_channel is None:
        yield None
        return
    desk = SlackDesk(
        slack,
        slack.desk_channel,
        tickets=bot.tickets,
        agents=bot.agents,
        conversations=bot.conversations,
        closing=partial(rating_request, bot.engine.renderer),
        database=bot.database,
    )
    async with desk.running():
        yield desk


@asynccontextmanager
async def hearing_other_processes(bot: Bot) -> AsyncIterator[None]:
    """Push what other server processes publish to this process's web chat sockets, when
    several processes share a lock store (Redis) and the web chat is served."""
    webchat = next((c for c in bot.channels.values() if isinstance(c, WebchatChannel)), None)
    if bot.peer_pushes is None or webchat is None:
        yield
        return
    async with bot.peer_pushes.running(webchat.push_local):
        yield
