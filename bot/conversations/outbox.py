"""The persisted outbox: every outbound message is a row before any platform sees it.

Rows are written in the transaction that produced the message (an agent's reply, a bot turn),
then a worker claims due rows, sends them through their channel's connector and records the
outcome. Delivery is at least once: a row is marked delivered only after the platform accepted
it, so a crash between the two sends it again. Messages to one recipient go out in the order
they were written, and a failing message holds back the ones after it until it is delivered
or given up on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Engine, event, exists, select
from sqlalchemy.orm import Session, aliased, sessionmaker

from crowddesk.bot.conversations.clock import Clock, utc_now
from crowddesk.bot.conversations.states import OutboxState
from crowddesk.bot.conversations.store import OutboxRow
from crowddesk.connectors.base import ChannelConnector, DeliveryError
from crowddesk.connectors.types import Button, OutboundMessage

logger = logging.getLogger(__name__)


def message_payload(message: OutboundMessage) -> dict[str, Any]:
    """The JSON stored for a message: the Rasa REST reply shape, plus what a channel's reply
    window and a public post's visibility need under `delivery`."""
    payload = message.as_rasa()
    delivery = {
        "customer_wrote_at": message.customer_wrote_at,
        "sent_by_agent": message.sent_by_agent,
        "public_post": message.public_post,
    }
    if any(delivery.values()):
        payload["delivery"] = delivery
    return payload


def payload_message(payload: Mapping[str, Any]) -> OutboundMessage:
    """The message a stored payload describes (inverse of `message_payload`)."""
    delivery = payload.get("delivery") or {}
    return OutboundMessage(
        recipient_id=str(payload["recipient_id"]),
        text=str(payload.get("text") or ""),
        buttons=tuple(Button(b["title"], b["payload"]) for b in payload.get("buttons") or ()),
        image=payload.get("image"),
        custom=dict(payload.get("custom") or {}),
        customer_wrote_at=delivery.get("customer_wrote_at"),
        sent_by_agent=bool(delivery.get("sent_by_agent")),
        public_post=delivery.get("public_post"),
    )


def bot_event_message(
    recipient_id: str, bot_event: Mapping[str, Any], customer_wrote_at: float | None = None
) -> OutboundMessage:
    """What the customer sees of a stored Rasa `bot` event (text plus its `data` extras); an
    agent's message carries the agent's name as `custom.agent_name` for channels that show it.
    `customer_wrote_at` is set for messages that do not answer the customer's latest one."""
    data = bot_event.get("data") or {}
    agent_name = (bot_event.get("metadata") or {}).get("agent_name")
    custom = {**(data.get("custom") or {}), **({"agent_name": agent_name} if agent_name else {})}
    message = payload_message({"recipient_id": recipient_id, "text": bot_event.get("text"), **data, "custom": custom})
    return replace(message, customer_wrote_at=customer_wrote_at, sent_by_agent=agent_name is not None)


@dataclass(frozen=True)
class OutboxRecord:
    """One outbox row as read back."""

    id: int
    channel: str
    message: OutboundMessage
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str | None
    created_at: datetime
    delivered_at: datetime | None


class Outbox:
    """Reads and writes outbox rows; tells its listeners when new rows are committed."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._listeners: list[Callable[[], None]] = []

    def listen(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call `callback` (from any thread) after a transaction that added rows commits;
        returns the function that stops it."""
        self._listeners.append(callback)
        return lambda: self._listeners.remove(callback)

    def stage(self, session: Session, channel: str, messages: Iterable[OutboundMessage]) -> None:
        """Add rows for `messages` to the caller's transaction: they exist only if it commits."""
        now = datetime.now(UTC)
        rows = [
            OutboxRow(
                channel=channel,
                recipient_id=m.recipient_id,
                payload=message_payload(m),
                status=OutboxState.PENDING,
                attempts=0,
                next_attempt_at=now,
                created_at=now,
            )
            for m in messages
        ]
        if not rows:
            return
        session.add_all(rows)
        event.listen(session, "after_commit", self._notify, once=True)

    def enqueue(self, channel: str, messages: Iterable[OutboundMessage]) -> None:
        """Add rows for `messages` in a transaction of their own."""
        with self._sessions.begin() as session:
            self.stage(session, channel, messages)

    def claim(self, channels: Collection[str], now: datetime, limit: int, lease: timedelta) -> list[OutboxRecord]:
        """Take up to `limit` due rows for `channels`, at most one per recipient (its oldest
        pending one), and hide them from other workers until `now + lease`."""
        earlier = aliased(OutboxRow)
        waiting_behind_earlier = exists().where(
            earlier.channel == OutboxRow.channel,
            earlier.recipient_id == OutboxRow.recipient_id,
            earlier.status == OutboxState.PENDING,
            earlier.id < OutboxRow.id,
        )
        with self._sessions.begin() as session:
            # PostgreSQL: SKIP LOCKED lets concurrent workers claim disjoint rows. SQLite drops
            # FOR UPDATE, but its transactions begin IMMEDIATE (storage/engines.py), so the read
            # and the lease update below run with the write lock held and cannot interleave.
            rows = session.scalars(
                select(OutboxRow)
                .where(
                    OutboxRow.status == OutboxState.PENDING,
                    OutboxRow.next_attempt_at <= now,
                    OutboxRow.channel.in_(list(channels)),
                    ~waiting_behind_earlier,
                )
                .order_by(OutboxRow.id)
                .limit(limit)
                .with_for_update(skip_locked=True, of=OutboxRow)
            ).all()
            for row in rows:
                row.attempts += 1
                row.next_attempt_at = now + lease
            return [_record(row) for row in rows]

    def next_due(self, channels: Collection[str]) -> datetime | None:
        """When the soonest pending row for `channels` becomes due (None: nothing pending)."""
        with self._sessions() as session:
            return session.scalar(
                select(OutboxRow.next_attempt_at)
                .where(OutboxRow.status == OutboxState.PENDING, OutboxRow.channel.in_(list(channels)))
                .order_by(OutboxRow.next_attempt_at)
                .limit(1)
            )

    def mark_delivered(self, row_id: int) -> None:
        """The platform accepted the message."""
        self._update(row_id, status=OutboxState.DELIVERED, delivered_at=datetime.now(UTC), last_error=None)

    def mark_retry(self, row_id: int, error: str, at: datetime) -> None:
        """The attempt failed; try again from `at`."""
        self._update(row_id, next_attempt_at=at, last_error=error)

    def mark_failed(self, row_id: int, error: str) -> None:
        """The platform refused the message for good."""
        self._update(row_id, status=OutboxState.FAILED, last_error=error)

    def records(self, status: str | None = None) -> list[OutboxRecord]:
        """Rows in the order they were written, optionally only those in `status`."""
        with self._sessions() as session:
            query = select(OutboxRow).order_by(OutboxRow.id)
            if status is not None:
                query = query.where(OutboxRow.status == status)
            return [_record(row) for row in session.scalars(query)]

    def failed_to(self, recipient_id: str) -> list[OutboxRecord]:
        """The messages for `recipient_id` the platform refused for good, oldest first."""
        with self._sessions() as session:
            rows = session.scalars(
                select(OutboxRow)
                .where(OutboxRow.recipient_id == recipient_id, OutboxRow.status == OutboxState.FAILED)
                .order_by(OutboxRow.id)
            )
            return [_record(row) for row in rows]

    def _update(self, row_id: int, **values: Any) -> None:
        with self._sessions.begin() as session:
            row = session.get(OutboxRow, row_id, with_for_update=True)
            # Only a pending row changes: a row another worker already finished stays finished.
            if row is not None and row.status == OutboxState.PENDING:
                for column, value in values.items():
                    setattr(row, column, value)

    def _notify(self, _: Session) -> None:
        for callback in list(self._listeners):
            callback()


def _record(row: OutboxRow) -> OutboxRecord:
    return OutboxRecord(
        id=row.id,
        channel=row.channel,
        message=payload_message(row.payload),
        status=row.status,
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        last_error=row.last_error,
        created_at=row.created_at,
        delivered_at=row.delivered_at,
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait before attempt n+1: exponential from `base` up to `cap` seconds, with
    jitter so recipients refused together don't retry together; a platform's Retry-After wins."""

    base: float = 1.0
    cap: float = 600.0
    send_timeout: float = 30.0
    lease: float = 120.0
    """Longer than `send_timeout`: a claimed row reappears only once its send has surely ended."""

    def delay(self, attempts: int, retry_after: float | None, rng: random.Random) -> float:
        """Seconds to wait after the `attempts`-th failed attempt."""
        if retry_after is not None:
            return retry_after + rng.uniform(0, self.base)
        ceiling = min(self.cap, self.base * 2 ** max(attempts - 1, 0))
        return ceiling / 2 + rng.uniform(0, ceiling / 2)


class Pacer:
    """Spaces sends to one channel at least 1/rate seconds apart (its platform's limit)."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = 0.0

    async def wait(self) -> None:
        """Return when the next send may start."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        slot = max(now, self._next)
        self._next = slot + self._interval
        if slot > now:
            await asyncio.sleep(slot - now)


class PeriodicPurge(Protocol):
    """Housekeeping the worker runs every `every` (the retention policy, bot/privacy/retention.py)."""

    every: timedelta

    def purge(self, now: datetime) -> object: ...


class OutboxWorker:
    """Delivers due outbox rows through the configured connectors until stopped.

    Woken at once when this process commits new rows; otherwise it sleeps until the next row
    falls due, or `idle_seconds` at most, to pick up rows other processes wrote. With
    `retention` it also purges old delivery bookkeeping, on start and every `retention.every`.
    """

    def __init__(
        self,
        outbox: Outbox,
        channels: Mapping[str, ChannelConnector],
        *,
        policy: RetryPolicy = RetryPolicy(),
        batch_size: int = 50,
        idle_seconds: float = 5.0,
        clock: Clock = utc_now,
        rng: random.Random | None = None,
        retention: PeriodicPurge | None = None,
    ) -> None:
        self.outbox = outbox
        self.channels = dict(channels)
        self.policy = policy
        self.retention = retention
        self._next_purge: datetime | None = None
        self.batch_size = batch_size
        self.idle_seconds = idle_seconds
        self._clock = clock
        self._rng = rng or random.Random()
        self._pacers = {name: Pacer(c.max_messages_per_second) for name, c in self.channels.items()}
        # A claimed row may wait in its channel's pacer for a whole batch of slots before its
        # send starts; the lease covers that, or another worker would claim it meanwhile.
        slowest = min(
            (c.max_messages_per_second for c in self.channels.values() if c.max_messages_per_second > 0), default=0.0
        )
        pacing = batch_size / slowest if slowest else 0.0
        self._lease = timedelta(seconds=policy.lease + pacing)
        self._wake = asyncio.Event()
        self._stopping = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._unlisten: Callable[[], None] | None = None

    def start(self) -> None:
        """Run the delivery loop as a task of the running event loop."""
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._unlisten = self.outbox.listen(self.wake)
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    async def stop(self) -> None:
        """Finish the sends in flight and record their outcome, then stop. A send that outlives
        its timeout is cancelled; its row is retried once the lease ends."""
        if self._unlisten is not None:
            self._unlisten()
            self._unlisten = None
        if self._task is None:
            return
        self._stopping = True
        self._wake.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), self.policy.send_timeout + 5)
        except TimeoutError:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self._task = None

    def wake(self) -> None:
        """Look for due rows now; safe to call from any thread."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._wake.set)

    async def _run(self) -> None:
        while not self._stopping:
            self._wake.clear()
            try:
                await self.purge_when_due()
                if await self.deliver_due():
                    continue
                timeout = await self._idle_timeout()
            except Exception:  # e.g. the database restarting: keep the worker alive, retry soon
                logger.exception("outbox: delivery round failed")
                timeout = self.idle_seconds
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def deliver_due(self) -> int:
        """Claim and send one batch of due rows; returns how many were claimed."""
        claimed = await asyncio.to_thread(
            self.outbox.claim, list(self.channels), self._clock(), self.batch_size, self._lease
        )
        # At most one row per recipient is claimed, so sending them concurrently keeps order.
        await asyncio.gather(*(self._deliver(record) for record in claimed))
        return len(claimed)

    async def purge_when_due(self) -> object | None:
        """Purge old delivery bookkeeping if `retention.every` has passed since the last time
        (or this is the first time): what the purge returned, or None when it was not due."""
        if self.retention is None:
            return None
        now = self._clock()
        if self._next_purge is not None and now < self._next_purge:
            return None
        # Scheduled before purging: a failing purge is retried next period, not on every round.
        self._next_purge = now + self.retention.every
        return await asyncio.to_thread(self.retention.purge, now)

    async def _idle_timeout(self) -> float:
        due = await asyncio.to_thread(self.outbox.next_due, list(self.channels))
        if due is None:
            return self.idle_seconds
        return min(self.idle_seconds, max((due - self._clock()).total_seconds(), 0.0))

    async def _deliver(self, record: OutboxRecord) -> None:
        connector = self.channels[record.channel]
        await self._pacers[record.channel].wait()
        # Delivery is at least once (a crash between sending and marking it sends it again): the
        # row's key lets a receiver that supports it drop the repeat.
        message = replace(record.message, delivery_key=f"outbox-{record.id}")
        try:
            await asyncio.wait_for(connector.send(message.recipient_id, message), self.policy.send_timeout)
        except DeliveryError as error:
            await self._refused(record, error)
        except TimeoutError:
            await self._retry(record, f"no answer within {self.policy.send_timeout:g} s", None)
        except Exception as error:  # a connector bug must not lose the message or stop the worker
            logger.exception("outbox: %s connector crashed sending message %d", record.channel, record.id)
            await self._retry(record, f"{type(error).__name__}: {error}", None)
        else:
            await asyncio.to_thread(self.outbox.mark_delivered, record.id)

    async def _refused(self, record: OutboxRecord, error: DeliveryError) -> None:
        if error.permanent:
            logger.warning(
                "outbox: %s refused message %d for %s for good: %s",
                record.channel,
                record.id,
                record.message.recipient_id,
                error,
            )
            await asyncio.to_thread(self.outbox.mark_failed, record.id, str(error))
            return
        await self._retry(record, str(error), error.retry_after)

    async def _retry(self, record: OutboxRecord, reason: str, retry_after: float | None) -> None:
        delay = self.policy.delay(record.attempts, retry_after, self._rng)
        logger.info(
            "outbox: %s message %d attempt %d failed (%s); retrying in %.1f s",
            record.channel,
            record.id,
            record.attempts,
            reason,
            delay,
        )
        at = self._clock() + timedelta(seconds=delay)
        await asyncio.to_thread(self.outbox.mark_retry, record.id, reason, at)
