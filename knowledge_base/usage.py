"""Per-entry usage: how often each KB entry was served, and what customers said of it.

Counters, one `kb_usage` row per entry, rather than one row per event aggregated on read: the
bot's hot path adds one UPSERT to the turn's transaction (atomic on SQLite and PostgreSQL,
however many turns serve the entry at once), the table stays as small as the knowledge base,
and the content page reads it without scanning the conversation log. Presses are rare, so
each one is a row (`kb_feedback`) whose key, the answer's id, lets only the first press count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import Engine, Insert, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.knowledge_base.store import KBEntryRow, KBFeedbackRow, KBQuestionRow, KBUsageRow
from crowddesk.storage.upserts import insert_missing

Counter = Literal["served", "helpful", "unhelpful"]
UsageOrder = Literal["served", "unhelpful"]
USAGE_ORDERS: tuple[UsageOrder, ...] = ("served", "unhelpful")


@dataclass(frozen=True)
class EntryUsage:
    """What one entry's customers did with it; zeros and None for an entry never served."""

    entry_id: str
    served: int = 0
    helpful: int = 0
    unhelpful: int = 0
    last_served_at: datetime | None = None

    def counts(self) -> dict[str, Any]:
        """The counters as the API gives them (`usage` of an entry)."""
        return {
            "served": self.served,
            "helpful": self.helpful,
            "unhelpful": self.unhelpful,
            "last_served_at": None if self.last_served_at is None else self.last_served_at.isoformat(),
        }


@dataclass(frozen=True)
class UsageLine:
    """One line of the usage report: the entry, its first question and status, its counters."""

    question: str
    status: str
    usage: EntryUsage

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.usage.entry_id,
            "question": self.question,
            "status": self.status,
            **self.usage.counts(),
        }


def count_served(session: Session, entry_id: str) -> None:
    """In the turn's transaction: one more serving of `entry_id`, in a single statement."""
    _bump(session, entry_id, "served")


def record_feedback(session: Session, *, answer_id: str, entry_id: str, sender_id: str, helpful: bool) -> bool:
    """In the turn's transaction: count a press on answer `answer_id`; False (nothing counted)
    when that answer already had one."""
    first = insert_missing(
        session,
        KBFeedbackRow,
        [
            {
                "answer_id": answer_id,
                "entry_id": entry_id,
                "sender_id": sender_id,
                "helpful": helpful,
                "created_at": datetime.now(UTC),
            }
        ],
    )
    if first:
        _bump(session, entry_id, "helpful" if helpful else "unhelpful")
    return bool(first)


def rate_answer(session: Session, *, answer_id: str, rating: int) -> None:
    """In the turn's transaction: store the customer's rating (1 to 5) on their Helpful press
    on answer `answer_id`; a second rating of the same answer changes nothing."""
    session.execute(
        update(KBFeedbackRow)
        .where(KBFeedbackRow.answer_id == answer_id, KBFeedbackRow.helpful.is_(True), KBFeedbackRow.rating.is_(None))
        .values(rating=rating)
    )


def _bump(session: Session, entry_id: str, counter: Counter) -> None:
    now = datetime.now(UTC)
    session.execute(
        _upsert(session.get_bind().dialect.name, counter),
        {
            "entry_id": entry_id,
            "served": 0,
            "helpful": 0,
            "unhelpful": 0,
            counter: 1,
            "last_served_at": now if counter == "served" else None,
        },
    )


@functools.cache
def _upsert(dialect: str, counter: Counter) -> Insert:
    """INSERT ... ON CONFLICT DO UPDATE adding one to `counter`: no read first, so concurrent
    turns neither lose an increment nor fail on the key, and each holds the row only until its
    commit. Built once per dialect and counter; the hot path only binds values."""
    table = KBUsageRow.__table__
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(table)
    changes: dict[str, Any] = {counter: table.c[counter] + 1}
    if counter == "served":
        changes["last_served_at"] = insert.excluded.last_served_at
    return insert.on_conflict_do_update(index_elements=[table.c.entry_id], set_=changes)


class UsageReport:
    """Reads the counters for the content team (API and CLI)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine)

    def of(self, entry_id: str) -> EntryUsage:
        with self._sessions() as session:
            row = session.get(KBUsageRow, entry_id)
            return EntryUsage(entry_id) if row is None else _usage(row)

    def lines(self, *, order: UsageOrder = "served", limit: int = 50, offset: int = 0) -> list[UsageLine]:
        """Every entry with its usage (never served: zeros), most served or most often
        found unhelpful first, then by id."""
        if order not in USAGE_ORDERS:
            raise ValueError(f"order must be one of {', '.join(USAGE_ORDERS)}, got {order!r}")
        if limit < 0 or offset < 0:
            raise ValueError(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")
        served = func.coalesce(KBUsageRow.served, 0)
        unhelpful = func.coalesce(KBUsageRow.unhelpful, 0)
        ranking = (served.desc(), unhelpful.desc()) if order == "served" else (unhelpful.desc(), served.desc())
        first_question = (
            select(KBQuestionRow.text)
            .where(KBQuestionRow.entry_id == KBEntryRow.id)
            .order_by(KBQuestionRow.position)
            .limit(1)
            .scalar_subquery()
        )
        query = (
            select(KBEntryRow.id, KBEntryRow.status, first_question, KBUsageRow)
            .outerjoin(KBUsageRow, KBUsageRow.entry_id == KBEntryRow.id)
            .order_by(*ranking, KBEntryRow.id)
            .limit(limit)
            .offset(offset)
        )
        with self._sessions() as session:
            return [
                UsageLine(question or "", status, EntryUsage(entry_id) if row is None else _usage(row))
                for entry_id, status, question, row in session.execute(query)
            ]


def _usage(row: KBUsageRow) -> EntryUsage:
    return EntryUsage(row.entry_id, row.served, row.helpful, row.unhelpful, row.last_served_at)
