"""One conversation's turns, one at a time and in arrival order: within a process (`LocalTurnLocks`)
or across every process that shares a Redis (`RedisTurnLocks`).

The Redis lock works as Rasa's `RedisLockStore` does: each message takes a numbered ticket and
waits until it is the lowest live ticket of its conversation, so turns run in the order their
messages reached Redis. Every ticket carries a lease that its holder (or waiter) renews while its
process lives; a process that dies stops renewing, and the next ticket goes ahead once the lease
has run out (`lock_lifetime`, 10 s by default). Leases are measured on Redis's clock, so the
servers' clocks need not agree. A holder that stalls past its lease is fenced by the conversation
store, which stores a turn only if no other turn was stored since it read the conversation
(`ConversationStore.record_turn`'s `expected_turns`).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from crowddesk.errors import Unavailable

logger = logging.getLogger(__name__)

FIRST_POLL_SECONDS = 0.002  # a waiter asks again soon: most turns take a few milliseconds
LAST_POLL_SECONDS = 0.05
MAX_WAIT_SECONDS = 60.0  # then the message is refused with 503, and its sender sends it again

# KEYS: tickets (counter), queue (sorted set of tickets), leases (ticket -> expiry, ms on Redis's
# clock). ARGV: the ticket ("" takes a new one), the lease in ms. Returns {ticket, state}: 1 holds
# the lock, 0 waits behind a live ticket, -1 lost its place (its lease ran out while it waited).
_ACQUIRE = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local lease = tonumber(ARGV[2])
local ticket = ARGV[1]
if ticket == '' then
  ticket = tostring(redis.call('INCR', KEYS[1]))
  redis.call('ZADD', KEYS[2], tonumber(ticket), ticket)
elseif not redis.call('ZSCORE', KEYS[2], ticket) then
  return {ticket, -1}
end
redis.call('HSET', KEYS[3], ticket, now + lease)
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, lease * 3) end
while true do
  local head = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
  if head == ticket then return {ticket, 1} end
  if tonumber(redis.call('HGET', KEYS[3], head) or '0') > now then return {ticket, 0} end
  redis.call('ZREM', KEYS[2], head)
  redis.call('HDEL', KEYS[3], head)
end
"""
_RENEW = """
if not redis.call('ZSCORE', KEYS[2], ARGV[1]) then return 0 end
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
redis.call('HSET', KEYS[3], ARGV[1], now + tonumber(ARGV[2]))
for _, key in ipairs(KEYS) do redis.call('PEXPIRE', key, tonumber(ARGV[2]) * 3) end
return 1
"""
_RELEASE = """
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
return 1
"""
HOLDING, WAITING, LOST = 1, 0, -1


class TurnLocks(Protocol):
    """Runs one conversation's turns one at a time (the engine holds it for a whole turn)."""

    def hold(self, sender_id: str) -> AbstractAsyncContextManager[None]: ...


class TurnLockLost(Unavailable):
    """A message waited so long that its place in the conversation's queue was given up."""


class TurnLockTimeout(Unavailable):
    """A conversation stayed busy longer than a message may wait."""


class LocalTurnLocks:
    """Turns of one conversation one at a time within this process (one server process)."""

    def __init__(self) -> None:
        # Weak: a conversation's lock lives while a turn holds or waits for it.
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()

    @asynccontextmanager
    async def hold(self, sender_id: str) -> AsyncIterator[None]:
        lock = self._locks.get(sender_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[sender_id] = lock
        async with lock:
            yield


class RedisTurnLocks:
    """Turns of one conversation one at a time across every process on one Redis."""

    def __init__(self, redis: Redis, key_prefix: str, lifetime_seconds: float) -> None:
        self._redis = redis
        self._prefix = key_prefix
        self._lease_ms = int(lifetime_seconds * 1000)
        self._renew_every = lifetime_seconds / 3
        # The process's own turns queue here first, so they don't poll Redis behind each other.
        self._local = LocalTurnLocks()
        self._acquire = redis.register_script(_ACQUIRE)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    @asynccontextmanager
    async def hold(self, sender_id: str) -> AsyncIterator[None]:
        async with self._local.hold(sender_id):
            keys = [f"{self._prefix}:turn:{sender_id}:{part}" for part in ("tickets", "queue", "leases")]
            ticket = await self._wait_for_turn(keys, sender_id)
            try:
                renewing = asyncio.create_task(self._keep_renewing(keys, ticket))
                try:
                    yield
                finally:
                    renewing.cancel()
            finally:
                await self._leave(keys, ticket)

    async def _wait_for_turn(self, keys: list[str], sender_id: str) -> str:
        """Take a ticket and wait until it is the conversation's first live one."""
        ticket, state = await self._ask(keys, "")
        delay, waited = FIRST_POLL_SECONDS, 0.0
        try:
            while state == WAITING:
                if waited >= MAX_WAIT_SECONDS:
                    raise TurnLockTimeout(
                        f"conversation {sender_id!r} stayed busy for {MAX_WAIT_SECONDS:.0f} s; send the message again"
                    )
                await asyncio.sleep(delay)
                waited += delay
                delay = min(delay * 2, LAST_POLL_SECONDS)
                ticket, state = await self._ask(keys, ticket)
        except BaseException:
            await self._leave(keys, ticket)  # a cancelled or refused message gives up its place
            raise
        if state == LOST:
            raise TurnLockLost(
                f"the message waited past the lock lifetime and lost its place in conversation {sender_id!r}; "
                "send it again"
            )
        return ticket

    async def _ask(self, keys: list[str], ticket: str) -> tuple[str, int]:
        answer = await self._acquire(keys=keys, args=[ticket, self._lease_ms])
        raw_ticket, state = answer
        return (raw_ticket.decode() if isinstance(raw_ticket, bytes) else str(raw_ticket)), int(state)

    async def _keep_renewing(self, keys: list[str], ticket: str) -> None:
        """Renew the lease while the turn runs; a turn that loses it is fenced when it stores."""
        while True:
            await asyncio.sleep(self._renew_every)
            try:
                if not await self._renew(keys=keys, args=[ticket, self._lease_ms]):
                    logger.warning("turn lock on %s lapsed while its turn ran; the store fences it", keys[1])
                    return
            except RedisError:
                logger.warning("could not renew the turn lock on %s; trying again", keys[1], exc_info=True)

    async def _leave(self, keys: list[str], ticket: str) -> None:
        try:
            await self._release(keys=keys, args=[ticket])
        except RedisError:
            # The lease runs out by itself: the next message waits at most the lock lifetime.
            logger.warning("could not release the turn lock on %s", keys[1], exc_info=True)
