"""Conversations as a Rasa-style event log, plus their state and handoff tickets."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, cast

from sqlalchemy import (
    JSON,
    CursorResult,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES, ConversationOwner, TicketStatus
from crowddesk.errors import Conflict, Unavailable
from crowddesk.storage.columns import UtcDateTime
from crowddesk.storage.engines import reader
from crowddesk.storage.upserts import insert_missing

MAX_SENDER_ID_LENGTH = 128
HANDOFF_PRIORITIES = ("normal", "high")


class ChannelConflict(Conflict):
    """A turn came through a channel other than the conversation's own; nothing was stored."""

    def __init__(self, sender_id: str, owner: str) -> None:
        super().__init__(f"conversation {sender_id!r} belongs to the {owner} channel")
        self.owner = owner


class TurnSuperseded(Unavailable):
    """Another turn of the conversation was stored after this one read it; nothing was stored."""

    def __init__(self, sender_id: str) -> None:
        super().__init__(
            f"another turn of conversation {sender_id!r} was stored while this message was processed; send it again"
        )


class ConversationTables(DeclarativeBase):
    __table__: ClassVar[Table]  # every class here declares a Core Table (SQLAlchemy types it FromClause)


class ConversationRow(ConversationTables):
    __tablename__ = "conversations"
    # A channel's conversations, read from the index alone: the scorecard's channel filter.
    __table_args__ = (Index("ix_conversations_channel_id", "channel", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    sender_id: Mapped[str] = mapped_column(String(MAX_SENDER_ID_LENGTH), unique=True)
    channel: Mapped[str] = mapped_column(String(64))
    owner: Mapped[str] = mapped_column(String(32))
    slots: Mapped[dict[str, Any]] = mapped_column(JSON)
    failed_turns: Mapped[int] = mapped_column(Integer)
    latest_message: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # the scorecard's periods
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # What became of the conversation, kept in the turns' transactions so the scorecard reads its
    # outcomes off the row: when the bot first answered, a ticket was first opened, and the
    # customer first marked an answer Not helpful.
    answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    handed_off_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    unhelpful_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # How many turns were stored: a turn stores only if the count is still the one it read, which
    # fences a turn whose cross-process lock lapsed (migration 0006).
    turns: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class EventRow(ConversationTables):
    __tablename__ = "events"
    # The scorecard's queries: messages of a type in a period, actions by name in a period, with
    # their conversation for one channel's (bot/conversations/migrations 0003).
    __table_args__ = (
        UniqueConstraint("conversation_id", "seq"),
        Index("ix_events_type_timestamp_conversation", "type", "timestamp", "conversation_id"),
        Index("ix_events_type_name_timestamp_conversation", "type", "name", "timestamp", "conversation_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    type: Mapped[str] = mapped_column(String(64))
    timestamp: Mapped[float] = mapped_column(Float)
    # The event's `name` (an action's, a slot's...) copied out of `data`, so that it can be indexed.
    name: Mapped[str | None] = mapped_column(Text, nullable=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON)


class HandoffRow(ConversationTables):
    __tablename__ = "handoffs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversations.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(Text)
    priority: Mapped[str] = mapped_column(String(16))
    packet: Mapped[dict[str, Any]] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)  # the scorecard's periods
    due_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    assigned_to: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # Indexed, as is first_response_at: the scorecard's queue finds the tickets leaving it in a period.
    resolved_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    assigned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    first_response_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True, index=True)
    rating: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # Set once, by whichever SLA monitor gets there first (see bot/desk/sla_monitor.py).
    sla_warned_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    sla_breached_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class TicketNoteRow(ConversationTables):
    """Internal notes agents leave on a ticket; never shown to the customer."""

    __tablename__ = "ticket_notes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    handoff_id: Mapped[str] = mapped_column(ForeignKey("handoffs.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class InboundMessageRow(ConversationTables):
    """A platform delivery already handed to the engine; its key makes redeliveries no-ops."""

    __tablename__ = "inbound_messages"
    __table_args__ = (PrimaryKeyConstraint("channel", "message_id"),)

    channel: Mapped[str] = mapped_column(String(64))
    message_id: Mapped[str] = mapped_column(String(256))
    received_at: Mapped[datetime] = mapped_column(UtcDateTime)


class ChannelMemoryRow(ConversationTables):
    """A fact a channel connector keeps about a customer between messages (connectors/memory.py)."""

    __tablename__ = "channel_memory"
    __table_args__ = (PrimaryKeyConstraint("channel", "sender_id", "key"),)

    channel: Mapped[str] = mapped_column(String(64))
    sender_id: Mapped[str] = mapped_column(String(MAX_SENDER_ID_LENGTH))
    key: Mapped[str] = mapped_column(String(64))
    value: Mapped[Any] = mapped_column(JSON)
    # Indexed: retention purges the facts nobody wrote for its period.
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class OutboxRow(ConversationTables):
    """One outbound message waiting for, or done with, delivery through its channel."""

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_due", "status", "next_attempt_at"),
        Index("ix_outbox_recipient", "channel", "recipient_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    channel: Mapped[str] = mapped_column(String(64))
    recipient_id: Mapped[str] = mapped_column(String(MAX_SENDER_ID_LENGTH))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON)
    status: Mapped[str] = mapped_column(String(16))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


@dataclass(frozen=True)
class ConversationRecord:
    sender_id: str
    channel: str
    owner: str
    slots: dict[str, Any]
    failed_turns: int
    latest_message: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime
    turns: int = 0  # turns stored so far


@dataclass(frozen=True)
class HandoffRecord:
    id: str
    sender_id: str
    status: str
    reason: str
    priority: str
    packet: dict[str, Any]
    created_at: datetime
    due_at: datetime
    assigned_to: str | None
    resolved_at: datetime | None
    assigned_at: datetime | None = None
    first_response_at: datetime | None = None
    rating: int | None = None
    sla_warned_at: datetime | None = None
    sla_breached_at: datetime | None = None

    def breached(self, now: datetime) -> bool:
        """The first human reply came, or is still missing, after the SLA due time."""
        return (self.first_response_at or now) > self.due_at


@dataclass(frozen=True)
class NewHandoff:
    """A handoff ticket to open in the same transaction as the turn that asked for it."""

    reason: str
    priority: str
    packet: dict[str, Any]
    due_at: datetime

    def __post_init__(self) -> None:
        if self.priority not in HANDOFF_PRIORITIES:
            raise ValueError(f"handoff priority {self.priority!r} is not one of {', '.join(HANDOFF_PRIORITIES)}")
        if self.due_at.tzinfo is None:
            raise ValueError("handoff due_at must be timezone-aware")


class ConversationStore:
    """Reads and writes conversations; each turn is stored atomically with its events.

    Events are kept as the Rasa event dicts they arrive as, numbered by a per-conversation
    `seq` that is gapless even when turns of one conversation run concurrently.
    """

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._read_engine = reader(engine)
        self._reads = sessionmaker(self._read_engine, expire_on_commit=False)

    def get(self, sender_id: str) -> ConversationRecord | None:
        conversations = ConversationRow.__table__
        with self._reads() as session:
            row = session.execute(select(conversations).where(conversations.c.sender_id == sender_id)).one_or_none()
            return None if row is None else _conversation_record(row)

    def for_turn(self, sender_id: str) -> tuple[ConversationRecord | None, list[dict[str, Any]]]:
        """The conversation and, while the bot owns it, its stored events oldest first (a person's
        turn reads none): what a turn starts from, in one connection."""
        conversations, events = ConversationRow.__table__, EventRow.__table__
        with self._read_engine.connect() as connection:
            row = connection.execute(select(conversations).where(conversations.c.sender_id == sender_id)).one_or_none()
            if row is None:
                return None, []
            record = _conversation_record(row)
            if record.owner != ConversationOwner.BOT:
                return record, []
            data = connection.scalars(
                select(events.c.data).where(events.c.conversation_id == row.id).order_by(events.c.seq)
            )
            return record, list(data)

    def events(self, sender_id: str, after_seq: int = 0) -> list[dict[str, Any]]:
        """The stored event dicts with seq greater than `after_seq`, oldest first."""
        with self._reads() as session:
            data = session.scalars(
                select(EventRow.data)
                .join(ConversationRow, EventRow.conversation_id == ConversationRow.id)
                .where(ConversationRow.sender_id == sender_id, EventRow.seq > after_seq)
                .order_by(EventRow.seq)
            )
            return list(data)

    def record_turn(
        self,
        sender_id: str,
        channel: str,
        events: Sequence[Mapping[str, Any]],
        slots: Mapping[str, Any],
        failed_turns: int,
        owner: str,
        latest_message: Mapping[str, Any] | None,
        new_handoff: NewHandoff | None = None,
        also: Callable[[Session], None] | None = None,
        answered_at: datetime | None = None,
        expected_turns: int | None = None,
    ) -> tuple[ConversationRecord, HandoffRecord | None]:
        """Append a turn's events and replace the conversation state, in one transaction.

        Creates the conversation on its first turn, which fixes its channel for good: a turn
        through another channel raises `ChannelConflict` and stores nothing. `slots`,
        `failed_turns`, `owner` and `latest_message` replace the stored values; `new_handoff`, if
        given, opens a queued ticket.
        `also` writes what must commit or roll back with the turn (its replies' outbox rows); it
        runs with the conversation row locked, so those rows follow the conversation's order.
        `answered_at`: when the bot answered the customer in this turn, if it did (kept if an
        earlier turn had). `expected_turns`: the turns stored when this turn read the
        conversation (0 when there was none); if another turn was stored since, `TurnSuperseded`
        is raised and nothing is stored.
        """
        _check_turn(sender_id, events)
        now = datetime.now(UTC)
        state = {
            "owner": owner,
            "slots": dict(slots),
            "failed_turns": failed_turns,
            "latest_message": None if latest_message is None else dict(latest_message),
            "updated_at": now,
        }
        firsts = {"answered_at": answered_at, "handed_off_at": now if new_handoff is not None else None}
        # Outcomes keep their first moment; a turn without one leaves the column as it is.
        marks = {name: func.coalesce(getattr(ConversationRow, name), at) for name, at in firsts.items() if at}
        changes = {**state, **marks, "turns": ConversationRow.turns + 1}
        with self._sessions.begin() as session:
            conversation = _update_conversation(session, sender_id, changes, expected_turns)
            if conversation is None:
                # Insert-if-missing, not insert-or-fail: two first turns racing to create the
                # row then both find it, and wait for each other on the row lock of the UPDATE.
                insert_missing(
                    session, ConversationRow, [{**state, "sender_id": sender_id, "channel": channel, "created_at": now}]
                )
                conversation = _update_conversation(session, sender_id, changes, expected_turns)
                if conversation is None:
                    if expected_turns is not None:
                        raise TurnSuperseded(sender_id)
                    raise RuntimeError(f"conversation {sender_id!r} vanished while being created")
            if conversation.channel != channel:  # rolls the transaction back
                raise ChannelConflict(sender_id, conversation.channel)
            append_events(session, conversation.id, events)
            handoff = None
            if new_handoff is not None:
                handoff = HandoffRecord(
                    id=uuid.uuid4().hex,
                    sender_id=sender_id,
                    status=TicketStatus.QUEUED,
                    reason=new_handoff.reason,
                    priority=new_handoff.priority,
                    packet=dict(new_handoff.packet),
                    created_at=now,
                    due_at=new_handoff.due_at.astimezone(UTC),
                    assigned_to=None,
                    resolved_at=None,
                )
                session.execute(insert(HandoffRow.__table__), [_handoff_row(handoff, conversation.id)])
            if also is not None:
                also(session)
                session.flush()
            return _conversation_record(conversation), handoff

    def active_handoff(self, sender_id: str) -> HandoffRecord | None:
        """The conversation's queued or assigned ticket, if any (the newest, were there two)."""
        handoffs = self._handoffs(
            ConversationRow.sender_id == sender_id,
            HandoffRow.status.in_(OPEN_TICKET_STATUSES),
            newest_first=True,
        )
        return handoffs[0] if handoffs else None

    def get_handoff(self, handoff_id: str) -> HandoffRecord | None:
        handoffs = self._handoffs(HandoffRow.id == handoff_id)
        return handoffs[0] if handoffs else None

    def list_handoffs(self, status: str | None = None) -> list[HandoffRecord]:
        """Tickets, soonest due first, optionally only those in `status`."""
        conditions = [] if status is None else [HandoffRow.status == status]
        return self._handoffs(*conditions)

    def delete(self, sender_id: str) -> bool:
        """Erase a conversation with its events and handoffs; False if there was none."""
        with self._sessions.begin() as session:
            deleted = session.execute(delete(ConversationRow).where(ConversationRow.sender_id == sender_id))
            return bool(cast(CursorResult[Any], deleted).rowcount)

    def _handoffs(self, *conditions: Any, newest_first: bool = False) -> list[HandoffRecord]:
        order = (HandoffRow.created_at.desc(),) if newest_first else (HandoffRow.due_at,)
        with self._reads() as session:
            rows = session.execute(
                select(HandoffRow, ConversationRow.sender_id)
                .join(ConversationRow, HandoffRow.conversation_id == ConversationRow.id)
                .where(*conditions)
                .order_by(*order, HandoffRow.id)
            )
            return [handoff_record(handoff, sender_id) for handoff, sender_id in rows]


def append_events(session: Session, conversation_id: int, events: Sequence[Mapping[str, Any]]) -> None:
    """Number and insert events after the conversation's last one; the caller holds its row lock.

    One multi-row INSERT through the Core table: ORM objects cost more than the write.
    """
    if not events:
        return
    events_table = EventRow.__table__
    last_seq = session.execute(
        select(func.coalesce(func.max(events_table.c.seq), 0)).where(events_table.c.conversation_id == conversation_id)
    ).scalar_one()
    session.execute(
        insert(events_table),
        [event_row(conversation_id, last_seq + position, event) for position, event in enumerate(events, start=1)],
    )


def event_row(conversation_id: int, seq: int, event: Mapping[str, Any]) -> dict[str, Any]:
    """The `events` row storing `event` as the `seq`th of its conversation."""
    name = event.get("name")
    return {
        "conversation_id": conversation_id,
        "seq": seq,
        "type": event["event"],
        "timestamp": float(event["timestamp"]),
        "name": name if isinstance(name, str) else None,
        "data": dict(event),
    }


def mark_unhelpful(session: Session, sender_id: str, at: datetime) -> None:
    """In the turn's transaction: the customer marked an answer Not helpful at `at` (the first
    such moment is kept)."""
    session.execute(
        update(ConversationRow)
        .where(ConversationRow.sender_id == sender_id)
        .values(unhelpful_at=func.coalesce(ConversationRow.unhelpful_at, at))
    )


def _update_conversation(
    session: Session, sender_id: str, state: Mapping[str, Any], expected_turns: int | None = None
) -> Row[Any] | None:
    """Replace the conversation's state and return its row, locked for the rest of the
    transaction (PostgreSQL row lock; SQLite's write lock is held from BEGIN); None if missing,
    or if `expected_turns` is given and another count was stored."""
    conversations = ConversationRow.__table__
    matches = conversations.c.sender_id == sender_id
    if expected_turns is not None:
        matches = matches & (conversations.c.turns == expected_turns)
    statement = update(conversations).where(matches).values(**state).returning(*conversations.c)
    return session.execute(statement).one_or_none()


def _handoff_row(handoff: HandoffRecord, conversation_id: int) -> dict[str, Any]:
    return {
        "id": handoff.id,
        "conversation_id": conversation_id,
        "status": handoff.status,
        "reason": handoff.reason,
        "priority": handoff.priority,
        "packet": handoff.packet,
        "created_at": handoff.created_at,
        "due_at": handoff.due_at,
    }


def _check_turn(sender_id: str, events: Sequence[Mapping[str, Any]]) -> None:
    if not sender_id or len(sender_id) > MAX_SENDER_ID_LENGTH:
        raise ValueError(f"sender_id must be 1 to {MAX_SENDER_ID_LENGTH} characters, got {sender_id!r}")
    for position, event in enumerate(events):
        where = f"event #{position} of the turn for {sender_id!r}"
        if not isinstance(event, Mapping):
            raise ValueError(f"{where} is a {type(event).__name__}, not a dict")
        if not isinstance(event.get("event"), str) or not event["event"]:
            raise ValueError(f"{where} has no 'event' name: {dict(event)!r}")
        timestamp = event.get("timestamp")
        if isinstance(timestamp, bool) or not isinstance(timestamp, int | float):
            raise ValueError(f"{where} has no numeric 'timestamp': {dict(event)!r}")


def _conversation_record(row: ConversationRow | Row[Any]) -> ConversationRecord:
    return ConversationRecord(
        sender_id=row.sender_id,
        channel=row.channel,
        owner=row.owner,
        slots=dict(row.slots),
        failed_turns=row.failed_turns,
        latest_message=None if row.latest_message is None else dict(row.latest_message),
        created_at=row.created_at,
        updated_at=row.updated_at,
        turns=row.turns,
    )


def handoff_record(row: HandoffRow, sender_id: str) -> HandoffRecord:
    return HandoffRecord(
        id=row.id,
        sender_id=sender_id,
        status=row.status,
        reason=row.reason,
        priority=row.priority,
        packet=dict(row.packet),
        created_at=row.created_at,
        due_at=row.due_at,
        assigned_to=row.assigned_to,
        resolved_at=row.resolved_at,
        assigned_at=row.assigned_at,
        first_response_at=row.first_response_at,
        rating=row.rating,
        sla_warned_at=row.sla_warned_at,
        sla_breached_at=row.sla_breached_at,
    )
