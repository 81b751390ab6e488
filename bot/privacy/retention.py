"""Deleting delivery bookkeeping once it is old enough to be of no use, and conversations
once the retention policy says so.

Delivered outbox rows and the keys that recognise platform redeliveries (`inbound_messages`)
only grow otherwise. Platforms stop redelivering within a day, so a key older than the
retention period can't stop anything; failed and pending outbox rows are never deleted. Facts
channels remember about customers (`channel_memory`: the buttons last offered as a numbered list)
go once nobody rewrote them for the period: a customer answering a week-old list is rare.

With `retention: conversations_days` (endpoints.yml), a conversation with no activity for that
long is erased as `crowddesk privacy erase` would (privacy.py), except that knowledge-base
entries an editor approved from it stay: they are reviewed content now. A conversation with a
queued or assigned ticket is kept whatever its age.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES, OutboxState
from crowddesk.bot.conversations.store import (
    ChannelMemoryRow,
    ConversationRow,
    HandoffRow,
    InboundMessageRow,
    OutboxRow,
)
from crowddesk.bot.privacy.customer_data import Privacy

logger = logging.getLogger(__name__)

RETENTION_ACTOR = "retention"  # the audit log's actor for conversations erased by age
# The rest wait for the next purge, so one purge never keeps the outbox worker busy for long.
_CONVERSATIONS_PER_PURGE = 500


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted."""

    outbox: int
    inbound: int
    conversations: int = 0
    channel_memory: int = 0


class Retention:
    """Deletes delivered outbox rows and inbound delivery keys older than `keep`, and with
    `conversations`, conversations idle for longer than that."""

    def __init__(
        self,
        engine: Engine,
        keep: timedelta,
        *,
        every: timedelta = timedelta(hours=1),
        conversations: timedelta | None = None,
    ) -> None:
        for name, period in (("retention", keep), ("conversation retention", conversations)):
            if period is not None and period <= timedelta(0):
                raise ValueError(f"{name} must be positive, got {period}")
        self._sessions = sessionmaker(engine)
        self._privacy = Privacy(engine)
        self.keep = keep
        self.conversations = conversations
        self.every = every
        """How often the outbox worker purges."""

    def purge(self, now: datetime) -> Purged:
        """Delete the bookkeeping older than `now - keep` in one transaction, then erase the
        conversations idle for longer than `conversations`."""
        before = now - self.keep
        with self._sessions.begin() as session:
            outbox = session.execute(
                delete(OutboxRow).where(OutboxRow.status == OutboxState.DELIVERED, OutboxRow.delivered_at < before)
            )
            inbound = session.execute(delete(InboundMessageRow).where(InboundMessageRow.received_at < before))
            memory = session.execute(delete(ChannelMemoryRow).where(ChannelMemoryRow.updated_at < before))
            outbox_count, inbound_count, memory_count = _count(outbox), _count(inbound), _count(memory)
        # After that transaction: each erasure takes the write lock in a transaction of its own.
        purged = Purged(outbox_count, inbound_count, self._purge_conversations(now), memory_count)
        if purged.outbox or purged.inbound or purged.channel_memory:
            logger.info(
                "purged %d delivered outbox rows, %d inbound delivery keys and %d channel facts older than %s",
                purged.outbox,
                purged.inbound,
                purged.channel_memory,
                before.isoformat(),
            )
        return purged

    def _purge_conversations(self, now: datetime) -> int:
        """Erase the conversations idle since before `now - conversations`, one transaction each
        (a customer writing meanwhile only delays theirs); how many were erased."""
        if self.conversations is None:
            return 0
        before = now - self.conversations
        open_ticket = select(HandoffRow.id).where(
            HandoffRow.conversation_id == ConversationRow.id, HandoffRow.status.in_(OPEN_TICKET_STATUSES)
        )
        with self._sessions() as session:
            idle = list(
                session.scalars(
                    select(ConversationRow.sender_id)
                    .where(ConversationRow.updated_at < before, ~open_ticket.exists())
                    .order_by(ConversationRow.updated_at)
                    .limit(_CONVERSATIONS_PER_PURGE)
                )
            )
        for sender_id in idle:
            self._privacy.erase(sender_id, RETENTION_ACTOR, derived_entries=False)
        if idle:
            logger.info("erased %d conversations with no activity since %s", len(idle), before.isoformat())
        return len(idle)


def _count(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount
