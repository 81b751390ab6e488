"""The SLA clock in the background: warn before a ticket's first-reply deadline, flag the breach.

Each pass finds open tickets without a human reply whose warning time or due time has come and
appends `sla_warning` / `sla_breached` to their conversation. Exactly once each, however many
server processes run a monitor: the event is written in the same transaction as a conditional
UPDATE that sets the ticket's flag only while it is still unset, so the process that loses the
race updates no row and writes nothing.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import InstrumentedAttribute, sessionmaker

from crowddesk.bot.conversations.clock import Clock, utc_now
from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES
from crowddesk.bot.conversations.store import ConversationRow, HandoffRow, append_events
from crowddesk.bot.project.config import SlaSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlaEvent:
    """A warning or breach written to a ticket's conversation."""

    ticket_id: str
    sender_id: str
    event: dict[str, Any]


class SlaMonitor:
    """Checks the open tickets every `check_seconds`; `clock` is injectable for tests."""

    def __init__(self, database: Engine, settings: SlaSettings, *, clock: Clock = utc_now) -> None:
        self._sessions = sessionmaker(database, expire_on_commit=False)
        self.settings = settings
        self.clock = clock

    def check(self) -> list[SlaEvent]:
        """One pass: the events this call wrote (none for tickets another process flagged)."""
        now = self.clock()
        lead = timedelta(minutes=self.settings.warning_minutes)
        return [
            *self._flag(HandoffRow.sla_breached_at, HandoffRow.due_at <= now, now, "sla_breached"),
            # A ticket already past due gets the breach, not a belated warning.
            *self._flag(HandoffRow.sla_warned_at, HandoffRow.due_at <= now + lead, now, "sla_warning", still_due=True),
        ]

    def _flag(
        self,
        flag: InstrumentedAttribute[datetime | None],
        condition: Any,
        now: datetime,
        name: str,
        *,
        still_due: bool = False,
    ) -> list[SlaEvent]:
        pending = [
            flag.is_(None),
            condition,
            HandoffRow.status.in_(OPEN_TICKET_STATUSES),
            HandoffRow.first_response_at.is_(None),
            *([HandoffRow.due_at > now, HandoffRow.sla_breached_at.is_(None)] if still_due else []),
        ]
        with self._sessions() as session:
            candidates = list(session.scalars(select(HandoffRow.id).where(*pending)))
        written = []
        for ticket_id in candidates:
            with self._sessions.begin() as session:
                claimed = session.execute(
                    update(HandoffRow)
                    .where(HandoffRow.id == ticket_id, *pending)
                    .values({flag.key: now})
                    .execution_options(synchronize_session=False)
                )
                if cast(CursorResult[Any], claimed).rowcount != 1:
                    continue  # another monitor flagged it, or an agent replied meanwhile
                ticket = session.get_one(HandoffRow, ticket_id)
                conversation = session.scalars(
                    select(ConversationRow).where(ConversationRow.id == ticket.conversation_id).with_for_update()
                ).one()
                event = {
                    "event": name,
                    "timestamp": time.time(),
                    "ticket_id": ticket_id,
                    "due_at": ticket.due_at.isoformat(),
                    "minutes_left": round((ticket.due_at - now).total_seconds() / 60, 1),
                }
                append_events(session, conversation.id, [event])
                written.append(SlaEvent(ticket_id, conversation.sender_id, event))
        for sla_event in written:
            logger.warning("ticket %s: %s (due %s)", sla_event.ticket_id, name, sla_event.event["due_at"])
        return written

    @asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Run `check` every `check_seconds` in the background for the duration of the block."""
        stopped = asyncio.Event()

        async def loop() -> None:
            # Check first, then wait: a server that starts after a deadline flags it at once.
            while True:
                try:
                    await asyncio.to_thread(self.check)
                except Exception:
                    # A database hiccup must not stop the clock for good; the next pass retries.
                    logger.exception("SLA check failed")
                with suppress(TimeoutError):
                    await asyncio.wait_for(stopped.wait(), self.settings.check_seconds)
                if stopped.is_set():
                    return

        task = asyncio.create_task(loop(), name="sla-monitor")
        try:
            yield
        finally:
            stopped.set()
            await task
