"""Live frames for web chat widgets whose socket another server process holds, over Redis pub/sub.

Each process subscribes to the conversations whose widgets it holds open
(`<prefix>:live:<sender id>`), publishes every frame it pushes, and hands what other processes
publish to its own sockets. Pub/sub delivers to whoever listens at that moment: a widget that was
reconnecting misses the frame live and reads it from the conversation's history when it connects,
as it does on one process.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

Deliver = Callable[[str, dict[str, Any]], Awaitable[None]]
"""Pushes a frame to this process's sockets of one conversation."""

RECONNECT_SECONDS = 0.5
POLL_SECONDS = 1.0


class RedisPeerPushes:
    """`connectors.webchat.PeerPushes` on Redis pub/sub."""

    def __init__(self, redis: Redis, key_prefix: str) -> None:
        self._redis = redis
        self._prefix = f"{key_prefix}:live:"
        self._origin = uuid.uuid4().hex  # this process: it skips what it published itself
        self._followed: set[str] = set()
        self._pubsub = redis.pubsub(ignore_subscribe_messages=True)
        self._deliver: Deliver | None = None

    async def publish(self, sender_id: str, frame: dict[str, Any]) -> None:
        await self._redis.publish(self._prefix + sender_id, json.dumps({"origin": self._origin, "frame": frame}))

    async def follow(self, sender_id: str) -> None:
        self._followed.add(sender_id)
        with suppress(RedisError):  # resubscribed when the listener reconnects
            await self._pubsub.subscribe(self._prefix + sender_id)

    async def unfollow(self, sender_id: str) -> None:
        self._followed.discard(sender_id)
        with suppress(RedisError):
            await self._pubsub.unsubscribe(self._prefix + sender_id)

    @asynccontextmanager
    async def running(self, deliver: Deliver) -> AsyncIterator[None]:
        """Hand frames other processes publish to `deliver` while the server runs."""
        self._deliver = deliver
        listener = asyncio.create_task(self._listen())
        try:
            yield
        finally:
            listener.cancel()
            with suppress(asyncio.CancelledError):
                await listener
            with suppress(RedisError):
                await self._pubsub.aclose()

    async def _listen(self) -> None:
        # A channel of the process's own keeps the subscription open while it follows nobody.
        own_channel = f"{self._prefix}process:{self._origin}"
        subscribed = False
        while True:
            try:
                if not subscribed:
                    # After a Redis restart the server has forgotten every subscription.
                    await self._pubsub.subscribe(own_channel, *(self._prefix + s for s in self._followed))
                    subscribed = True
                message = await self._pubsub.get_message(timeout=POLL_SECONDS)
                if message is not None:
                    await self._received(message)
            except (RedisError, OSError):
                logger.warning("live pushes from other processes paused: Redis is unreachable; retrying")
                subscribed = False
                with suppress(RedisError, OSError):
                    await self._pubsub.reset()
                await asyncio.sleep(RECONNECT_SECONDS)

    async def _received(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message" or self._deliver is None:
            return
        channel = message["channel"].decode() if isinstance(message["channel"], bytes) else message["channel"]
        published = json.loads(message["data"])
        if published.get("origin") == self._origin:
            return
        try:
            await self._deliver(channel.removeprefix(self._prefix), published["frame"])
        except Exception:
            logger.exception("a live frame from another process could not be pushed")
