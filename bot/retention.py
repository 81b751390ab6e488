"""Deleting delivery bookkeeping once it is old enough to be of no use.

Delivered outbox rows and the keys that recognise platform redeliveries (`inbound_messages`)
only grow otherwise. Platforms stop redelivering within a day, so a key older than the
retention period can't stop anything; failed and pending outbox rows are never deleted.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, delete
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.outbox import DELIVERED
from crowddesk.bot.store import InboundMessageRow, OutboxRow

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Purged:
    """How many rows one purge deleted."""

    outbox: int
    inbound: int


class Retention:
    """Deletes delivered outbox rows and inbound delivery keys older than `keep`."""

    def __init__(self, engine: Engine, keep: timedelta, *, every: timedelta = timedelta(hours=1)) -> None:
        if keep <= timedelta(0):
            raise ValueError(f"retention must be positive, got {keep}")
        self._sessions = sessionmaker(engine)
        self.keep = keep
        self.every = every
        """How often the outbox worker purges."""

    def purge(self, now: datetime) -> Purged:
        """Delete what is older than `now - keep`, in one transaction."""
        before = now - self.keep
        with self._sessions.begin() as session:
            outbox = session.execute(
                delete(OutboxRow).where(OutboxRow.status == DELIVERED, OutboxRow.delivered_at < before)
            )
            inbound = session.execute(
                delete(InboundMessageRow).where(InboundMessageRow.received_at < before)
            )
            purged = Purged(_count(outbox), _count(inbound))
        if purged.outbox or purged.inbound:
            logger.info("purged %d delivered outbox rows and %d inbound delivery keys older than %s",
                        purged.outbox, purged.inbound, before.isoformat())
        return purged


def _count(result: Any) -> int:
    return cast(CursorResult[Any], result).rowcount
