"""Turn locks and live pushes shared by several server processes, on a real Redis of the test's
own: turns of one conversation run one at a time in arrival order whichever process takes them, a
dead holder's lock lapses after its lifetime while a live one keeps it, Redis going away refuses
work rather than running it unlocked, and the store fences a turn whose lock lapsed."""

from __future__ import annotations

import asyncio
import contextlib
import subprocess
import sys
import textwrap
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from crowddesk.bot.cluster.peer_pushes import RedisPeerPushes
from crowddesk.bot.cluster.redis_link import MAX_CONNECTIONS, connect
from crowddesk.bot.cluster.turn_locks import RedisTurnLocks
from crowddesk.bot.conversations.store import ConversationStore, TurnSuperseded
from tests.redis_server import RedisServer

PREFIX = "test"


def with_two_clients(redis_server: RedisServer, check: Callable[[Redis, Redis], Awaitable[None]]) -> None:
    """Run `check` with two clients, as two server processes have."""

    async def run() -> None:
        first, second = connect(redis_server.url), connect(redis_server.url)
        try:
            await check(first, second)
        finally:
            await first.aclose()
            await second.aclose()

    asyncio.run(run())


def test_turns_of_one_conversation_run_one_at_a_time_in_arrival_order_across_processes(
    redis_server: RedisServer,
) -> None:
    with_two_clients(redis_server, _arrival_order)


async def _arrival_order(*clients: Redis) -> None:
    locks = [RedisTurnLocks(client, PREFIX, lifetime_seconds=5) for client in clients]
    running: list[int] = []
    entered: list[int] = []
    overlaps = 0

    async def turn(number: int) -> None:
        nonlocal overlaps
        async with locks[number % 2].hold("customer-1"):
            overlaps += bool(running)
            running.append(number)
            entered.append(number)
            await asyncio.sleep(0.01)
            running.remove(number)

    tasks = []
    for number in range(12):
        tasks.append(asyncio.create_task(turn(number)))
        # The next message arrives once this one holds its ticket: arrival order is known.
        while await clients[0].zcard(f"{PREFIX}:turn:customer-1:queue") + len(entered) < number + 1:  # noqa: ASYNC110
            await asyncio.sleep(0.001)
    await asyncio.gather(*tasks)
    assert overlaps == 0
    assert entered == list(range(12))
    # Nothing is left behind for an idle conversation.
    assert await clients[0].zcard(f"{PREFIX}:turn:customer-1:queue") == 0


def test_different_conversations_do_not_wait_for_each_other(redis_server: RedisServer) -> None:
    async def check(*clients: Redis) -> None:
        first, second = (RedisTurnLocks(client, PREFIX, lifetime_seconds=5) for client in clients)
        async with first.hold("customer-a"):
            async with asyncio.timeout(5):
                async with second.hold("customer-b"):
                    pass

    with_two_clients(redis_server, check)


def test_a_burst_of_more_turns_than_redis_connections_waits_rather_than_failing(redis_server: RedisServer) -> None:
    async def check(client: Redis, _: Redis) -> None:
        locks = RedisTurnLocks(client, PREFIX, lifetime_seconds=5)
        held: list[int] = []

        async def turn(number: int) -> None:
            async with locks.hold(f"burst-{number}"):
                await asyncio.sleep(0.01)
                held.append(number)

        await asyncio.gather(*(turn(number) for number in range(3 * MAX_CONNECTIONS)))
        assert sorted(held) == list(range(3 * MAX_CONNECTIONS))

    with_two_clients(redis_server, check)


HOLDER = textwrap.dedent(
    """
    import asyncio, sys
    from crowddesk.bot.cluster.redis_link import MAX_CONNECTIONS, connect
    from crowddesk.bot.cluster.turn_locks import RedisTurnLocks

    async def main():
        locks = RedisTurnLocks(connect(sys.argv[1]), "test", lifetime_seconds=1)
        async with locks.hold("customer-2"):
            print("holding", flush=True)
            await asyncio.sleep(3600)

    asyncio.run(main())
    """
)


def test_a_live_holder_keeps_the_lock_past_its_lifetime_and_a_killed_one_releases_it(
    redis_server: RedisServer,
) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, redis_server.url], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
        with_two_clients(redis_server, lambda client, _: _outlive(holder, client))
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


async def _outlive(holder: subprocess.Popen[str], client: Redis) -> None:
    locks = RedisTurnLocks(client, PREFIX, lifetime_seconds=1)
    waiting = asyncio.create_task(_hold_once(locks, "customer-2"))
    await asyncio.sleep(3.5)  # more than three lifetimes: the holder renewed its lease
    assert not waiting.done()
    holder.kill()  # SIGKILL: no release, no more renewals
    killed_at = time.monotonic()
    async with asyncio.timeout(15):
        await waiting
    assert time.monotonic() - killed_at < 10


async def _hold_once(locks: RedisTurnLocks, sender_id: str) -> None:
    async with locks.hold(sender_id):
        pass


def test_without_redis_a_turn_is_refused_rather_than_run_unlocked_and_resumes_after_a_restart(
    redis_server: RedisServer,
) -> None:
    async def check(client: Redis, _: Redis) -> None:
        locks = RedisTurnLocks(client, PREFIX, lifetime_seconds=5)
        await _hold_once(locks, "customer-3")
        redis_server.stop()
        ran = False
        with pytest.raises(RedisConnectionError):
            async with locks.hold("customer-3"):
                ran = True
        assert not ran
        redis_server.start()  # forgets every key, as the machine's Redis does
        await _hold_once(locks, "customer-3")

    with_two_clients(redis_server, check)


def test_frames_reach_the_process_holding_the_widget_and_survive_a_redis_restart(redis_server: RedisServer) -> None:
    with_two_clients(redis_server, lambda first, second: _frames_across(redis_server, first, second))


async def _frames_across(redis_server: RedisServer, *clients: Redis) -> None:
    holding, sending = (RedisPeerPushes(client, PREFIX) for client in clients)
    received: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()
    echoed: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue()

    async def hold(sender_id: str, frame: dict[str, Any]) -> None:
        await received.put((sender_id, frame))

    async def echo(sender_id: str, frame: dict[str, Any]) -> None:
        await echoed.put((sender_id, frame))

    async with holding.running(hold), sending.running(echo):
        await holding.follow("webchat:abc")
        await _published_until_received(sending, received, {"text": "first"})
        redis_server.stop()
        redis_server.start()
        # The listener subscribes again once Redis is back.
        await _published_until_received(sending, received, {"text": "after the restart"})
        await holding.publish("webchat:abc", {"text": "own"})
        await asyncio.sleep(0.3)
        assert echoed.empty()  # the sender does not follow the widget
        assert received.empty()  # nor does a process hear its own frames back


async def _published_until_received(
    publisher: RedisPeerPushes, received: asyncio.Queue[tuple[str, dict[str, Any]]], frame: dict[str, Any]
) -> None:
    """Publish until the frame arrives: pub/sub delivers only to who is subscribed right then."""
    async with asyncio.timeout(20):
        while True:
            with contextlib.suppress(RedisConnectionError):  # not back yet
                await publisher.publish("webchat:abc", frame)
            try:
                got = await asyncio.wait_for(received.get(), timeout=0.5)
            except TimeoutError:
                continue
            assert got == ("webchat:abc", frame)
            while not received.empty():  # repeats of the same frame
                assert received.get_nowait() == got
            return


def test_the_store_fences_a_turn_whose_lock_lapsed(db_engine: Any) -> None:
    store = ConversationStore(db_engine)
    user = {"event": "user", "text": "hi", "timestamp": 1.0}
    # Two first turns that both read "no conversation yet": the second is superseded.
    store.record_turn("c1", "rest", [user], {}, 0, "bot", None, expected_turns=0)
    with pytest.raises(TurnSuperseded, match="send it again"):
        store.record_turn("c1", "rest", [{**user, "text": "stale"}], {}, 0, "bot", None, expected_turns=0)
    record = store.get("c1")
    assert record is not None and record.turns == 1
    store.record_turn("c1", "rest", [{**user, "text": "next"}], {}, 0, "bot", None, expected_turns=1)
    assert [e["text"] for e in store.events("c1") if e["event"] == "user"] == ["hi", "next"]
