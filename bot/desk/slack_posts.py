"""Which tickets the Slack desk has posted, where, and how far it has followed each one.

Every step that talks to Slack is claimed here first with an insert-or-skip or a conditional
UPDATE, so two server processes never post a ticket, or mirror a customer message, twice.
The table belongs to the Slack desk alone and is created when the desk starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Integer, String, delete, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from crowddesk.bot.conversations.states import TicketStatus
from crowddesk.bot.conversations.store import HandoffRow
from crowddesk.storage.upserts import insert_missing


class SlackDeskTables(DeclarativeBase):
    pass


class SlackDeskPostRow(SlackDeskTables):
    __tablename__ = "slack_desk_posts"

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    channel: Mapped[str] = mapped_column(String(32))
    ts: Mapped[str | None] = mapped_column(String(32), nullable=True, index=True)
    """The message's Slack timestamp (its id); NULL while it is being posted."""
    status: Mapped[str] = mapped_column(String(32))
    assigned_to: Mapped[str | None] = mapped_column(String(128), nullable=True)
    """`status` and `assigned_to` as the Slack message shows them."""
    followed_events: Mapped[int] = mapped_column(Integer)
    """The conversation's events already looked at for the thread (events are numbered 1, 2, …)."""


@dataclass(frozen=True)
class DeskPost:
    ticket_id: str
    channel: str
    ts: str
    status: str
    assigned_to: str | None
    followed_events: int


class DeskPosts:
    """The posted tickets of one desk channel."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self._engine = engine
        self._sessions = sessionmaker(engine)
        self.channel = channel

    def create_table(self) -> None:
        SlackDeskTables.metadata.create_all(self._engine)

    def reserve(self, ticket_id: str) -> bool:
        """Claim the right to post `ticket_id`; False if it was posted or is being posted."""
        row = {
            "ticket_id": ticket_id,
            "channel": self.channel,
            "ts": None,
            "status": "",
            "assigned_to": None,
            "followed_events": 0,
        }
        with self._sessions.begin() as session:
            return insert_missing(session, SlackDeskPostRow, [row]) == 1

    def release(self, ticket_id: str) -> None:
        """Give up a reservation whose post failed, so the next round tries again."""
        with self._sessions.begin() as session:
            session.execute(
                delete(SlackDeskPostRow).where(SlackDeskPostRow.ticket_id == ticket_id, SlackDeskPostRow.ts.is_(None))
            )

    def posted(self, ticket_id: str, ts: str, status: str, assigned_to: str | None, followed: int) -> None:
        self._set(ticket_id, ts=ts, status=status, assigned_to=assigned_to, followed_events=followed)

    def shown(self, ticket_id: str, status: str, assigned_to: str | None) -> None:
        """Record what the message now shows."""
        self._set(ticket_id, status=status, assigned_to=assigned_to)

    def follow(self, ticket_id: str, seen: int, now: int) -> bool:
        """Move the thread from `seen` to `now` events; False if another process already did."""
        with self._sessions.begin() as session:
            result = session.execute(
                update(SlackDeskPostRow)
                .where(
                    SlackDeskPostRow.ticket_id == ticket_id,
                    SlackDeskPostRow.followed_events == seen,
                )
                .values(followed_events=now)
            )
            return cast(CursorResult[Any], result).rowcount == 1

    def unposted(self) -> list[str]:
        """Queued tickets without a desk message yet, oldest first."""
        with self._sessions() as session:
            return list(
                session.scalars(
                    select(HandoffRow.id)
                    .where(
                        HandoffRow.status == TicketStatus.QUEUED,
                        HandoffRow.id.not_in(select(SlackDeskPostRow.ticket_id)),
                    )
                    .order_by(HandoffRow.created_at, HandoffRow.id)
                )
            )

    def get(self, ticket_id: str) -> DeskPost | None:
        found = self._select(SlackDeskPostRow.ticket_id == ticket_id)
        return found[0] if found else None

    def open(self) -> list[DeskPost]:
        """Posted tickets whose message does not yet show them resolved."""
        return self._select(SlackDeskPostRow.status != TicketStatus.RESOLVED)

    def by_ts(self, ts: str) -> DeskPost | None:
        """The post a thread hangs off."""
        found = self._select(SlackDeskPostRow.ts == ts)
        return found[0] if found else None

    def _set(self, ticket_id: str, **values: Any) -> None:
        with self._sessions.begin() as session:
            session.execute(update(SlackDeskPostRow).where(SlackDeskPostRow.ticket_id == ticket_id).values(**values))

    def _select(self, *conditions: Any) -> list[DeskPost]:
        with self._sessions() as session:
            rows = session.scalars(
                select(SlackDeskPostRow).where(
                    SlackDeskPostRow.channel == self.channel, SlackDeskPostRow.ts.is_not(None), *conditions
                )
            )
            return [
                DeskPost(r.ticket_id, r.channel, cast(str, r.ts), r.status, r.assigned_to, r.followed_events)
                for r in rows
            ]
