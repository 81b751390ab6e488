"""Everything CrowdDesk holds about one customer: gathered for an export, deleted for an erasure.

A person is their sender id. What hangs from it: the conversation with its events, tickets
(ratings included), notes and Slack desk bookkeeping; outbox rows addressed to them; the
platform delivery keys of their messages; their Helpful / Not helpful presses; suggestions made
from their tickets; and the knowledge-base entries approved from those suggestions. Each export
and erasure is written to the audit log (audit.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, Table, Text, delete, inspect, or_, select, tuple_, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from crowddesk.bot.conversations.audit import ERASE, EXPORT, AuditRow, add_entry, hashed_sender, pseudonymise
from crowddesk.bot.conversations.store import (
    ChannelMemoryRow,
    ConversationRow,
    EventRow,
    HandoffRow,
    InboundMessageRow,
    OutboxRow,
    TicketNoteRow,
)
from crowddesk.bot.desk.slack_posts import SlackDeskPostRow
from crowddesk.bot.dialogue.kb_feedback import served_answer
from crowddesk.knowledge_base.store import (
    KBEntryRow,
    KBEntryVersionRow,
    KBFeedbackRow,
    KBSuggestionRow,
    KnowledgeBaseStore,
)
from crowddesk.knowledge_base.types import EntryStatus, KBEntry

ERASED_TEXT = "(erased)"


@dataclass(frozen=True)
class Footprint:
    """Where one person's data is: the keys an export reads and an erasure deletes by."""

    sender_id: str
    conversation_id: int | None
    ticket_ids: tuple[str, ...]
    deliveries: tuple[tuple[str, str], ...]  # (channel, message id) of their messages
    texts: tuple[str, ...]  # what they wrote, and the questions of entries derived from it
    derived_entry_ids: tuple[str, ...]

    def tickets(self, column: Any) -> ColumnElement[bool]:
        return cast(ColumnElement[bool], column.in_(self.ticket_ids))

    def suggestions(self) -> ColumnElement[bool]:
        """Their suggestions: linked by sender id, or (rows from before that column) by ticket."""
        return or_(KBSuggestionRow.sender_id == self.sender_id, self.tickets(KBSuggestionRow.ticket_id))


@dataclass(frozen=True)
class Erased:
    """How many rows of each table an erasure deleted (or scrubbed, for KB entries)."""

    sender_id: str
    removed: dict[str, int]
    texts: tuple[str, ...] = ()
    """What the person wrote and the erased entries' questions: caches in memory drop them."""

    @property
    def anything(self) -> bool:
        return any(self.removed.values())


class Privacy:
    """Exports and erases a person's data; `actor` names who asked, for the audit log."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._entries = KnowledgeBaseStore(engine)

    def export(self, sender_id: str, actor: str) -> dict[str, Any] | None:
        """Every row held about the person, as JSON-ready data; None when nothing is held."""
        with self._sessions.begin() as session:
            found = _footprint(session, sender_id)
            events = _rows(session, EventRow, EventRow.conversation_id == found.conversation_id)
            document: dict[str, Any] = {
                "sender_id": sender_id,
                "exported_at": datetime.now(UTC).isoformat(),
                "conversation": next(
                    iter(_rows(session, ConversationRow, ConversationRow.sender_id == sender_id)), None
                ),
                "events": events,
                "tickets": _rows(session, HandoffRow, found.tickets(HandoffRow.id)),
                "notes": _rows(session, TicketNoteRow, found.tickets(TicketNoteRow.handoff_id)),
                "outbox": _rows(session, OutboxRow, OutboxRow.recipient_id == sender_id),
                "channel_memory": _rows(session, ChannelMemoryRow, _channel_facts(sender_id)),
                "inbound_deliveries": _rows(session, InboundMessageRow, _delivered(found)),
                "kb_feedback": _rows(session, KBFeedbackRow, KBFeedbackRow.sender_id == sender_id),
                "kb_answers_served": [
                    {"answer_id": served[0], "entry_id": served[1]}
                    for served in map(served_answer, (e["data"] for e in events))
                    if served
                ],
                "kb_suggestions": _rows(session, KBSuggestionRow, found.suggestions()),
                "kb_entries": [
                    {
                        "entry": entry,
                        "versions": _rows(session, KBEntryVersionRow, KBEntryVersionRow.entry_id == entry["id"]),
                    }
                    for entry in _rows(session, KBEntryRow, KBEntryRow.id.in_(found.derived_entry_ids))
                ],
            }
            if not any(value for key, value in document.items() if key not in ("sender_id", "exported_at")):
                return None
            document["audit"] = _rows(session, AuditRow, AuditRow.sender.in_((sender_id, hashed_sender(sender_id))))
            add_entry(session, actor, EXPORT, sender_id)
        return document

    def erase(self, sender_id: str, actor: str, *, derived_entries: bool = True) -> Erased:
        """Delete everything held about the person; with `derived_entries`, also the text of KB
        entries approved from their tickets (retired, every version scrubbed).

        Each step can be run again: the KB entries and cached vectors go first, and the rows that
        lead to them (suggestions, events) in one last transaction, so an interrupted erasure
        finds them again when repeated.
        """
        with self._sessions() as session:
            found = _footprint(session, sender_id)
        removed: dict[str, int] = {}
        if derived_entries:
            for entry_id in found.derived_entry_ids:
                self._retire_erased(entry_id, actor)
            removed["embedding_cache"] = self._entries.forget_vectors(found.texts)
        with self._sessions.begin() as session:
            if derived_entries:
                removed["kb_entries"] = _scrub_versions(session, found.derived_entry_ids)
            removed.update(_delete_rows(session, found))
            pseudonymise(session, sender_id)
            if any(removed.values()):
                detail = ", ".join(f"{table} {count}" for table, count in removed.items() if count)
                add_entry(session, actor, ERASE, hashed_sender(sender_id), detail)
        return Erased(sender_id, removed, found.texts)

    def _retire_erased(self, entry_id: str, actor: str) -> None:
        """A new version that retires the entry with its text replaced: the change log tells
        every running server's live index to stop serving it."""
        self._entries.upsert(
            KBEntry(id=entry_id, questions=[ERASED_TEXT], answer=ERASED_TEXT, status=EntryStatus.RETIRED),
            actor=actor,
            comment="personal data erased",
        )


def _footprint(session: Session, sender_id: str) -> Footprint:
    conversation_id = session.scalar(select(ConversationRow.id).where(ConversationRow.sender_id == sender_id))
    ticket_ids = tuple(session.scalars(select(HandoffRow.id).where(HandoffRow.conversation_id == conversation_id)))
    user_events = list(
        session.scalars(
            select(EventRow.data).where(EventRow.conversation_id == conversation_id, EventRow.type == "user")
        )
    )
    deliveries = tuple((str(e.get("input_channel")), str(e["message_id"])) for e in user_events if e.get("message_id"))
    suggestions = session.execute(
        select(KBSuggestionRow.questions, KBSuggestionRow.entry_id).where(
            or_(KBSuggestionRow.sender_id == sender_id, KBSuggestionRow.ticket_id.in_(ticket_ids))
        )
    ).all()
    derived = {entry_id for _, entry_id in suggestions if entry_id}
    derived.update(
        session.scalars(
            select(KBEntryRow.id).where(KBEntryRow.source.in_([f"handoff:{ticket_id}" for ticket_id in ticket_ids]))
        )
    )
    # Every text that was ever a question of those entries: each one may have a cached vector.
    versions = session.scalars(select(KBEntryVersionRow.content).where(KBEntryVersionRow.entry_id.in_(derived)))
    texts = {str(e.get("text") or "") for e in user_events}
    texts.update(q for questions, _ in suggestions for q in questions)
    texts.update(q for content in versions for q in content.get("questions", []))
    texts.discard("")
    return Footprint(sender_id, conversation_id, ticket_ids, deliveries, tuple(sorted(texts)), tuple(sorted(derived)))


def _delivered(found: Footprint) -> ColumnElement[bool]:
    if not found.deliveries:
        return cast(ColumnElement[bool], InboundMessageRow.channel.in_(()))
    return cast(
        ColumnElement[bool], tuple_(InboundMessageRow.channel, InboundMessageRow.message_id).in_(found.deliveries)
    )


def _channel_facts(sender_id: str) -> ColumnElement[bool]:
    """The facts channels keep about the person: under their sender id, and the links to it from
    their other identities (a commenter's Messenger id points at the comment's conversation)."""
    return or_(ChannelMemoryRow.sender_id == sender_id, sql_cast(ChannelMemoryRow.value, Text) == json.dumps(sender_id))


def _delete_rows(session: Session, found: Footprint) -> dict[str, int]:
    """Delete the person's rows, children before parents; counts by table."""
    deletions: list[tuple[Any, ColumnElement[bool]]] = [
        (TicketNoteRow, found.tickets(TicketNoteRow.handoff_id)),
        (KBSuggestionRow, found.suggestions()),
        (KBFeedbackRow, KBFeedbackRow.sender_id == found.sender_id),
        (OutboxRow, OutboxRow.recipient_id == found.sender_id),
        (ChannelMemoryRow, _channel_facts(found.sender_id)),
        (InboundMessageRow, _delivered(found)),
        (EventRow, EventRow.conversation_id == found.conversation_id),
        (HandoffRow, found.tickets(HandoffRow.id)),
        (ConversationRow, ConversationRow.sender_id == found.sender_id),
    ]
    if inspect(session.connection()).has_table(SlackDeskPostRow.__tablename__):
        # Created only where the Slack desk runs (slack_desk_posts.py).
        deletions.insert(0, (SlackDeskPostRow, found.tickets(SlackDeskPostRow.ticket_id)))
    removed = {}
    for mapped, condition in deletions:
        result = session.execute(delete(mapped).where(condition).execution_options(synchronize_session=False))
        removed[mapped.__tablename__] = cast(CursorResult[Any], result).rowcount
    return removed


def _scrub_versions(session: Session, entry_ids: Iterable[str]) -> int:
    """Give every version of the entries the content of their erasing version (the last one)."""
    scrubbed = 0
    for entry_id in entry_ids:
        latest = session.scalars(
            select(KBEntryVersionRow)
            .where(KBEntryVersionRow.entry_id == entry_id)
            .order_by(KBEntryVersionRow.version.desc())
            .limit(1)
        ).one()
        session.execute(
            update(KBEntryVersionRow)
            .where(KBEntryVersionRow.entry_id == entry_id)
            .values(content=latest.content, comment="personal data erased")
            .execution_options(synchronize_session=False)
        )
        scrubbed += 1
    return scrubbed


def _rows(session: Session, mapped: Any, condition: ColumnElement[bool]) -> list[dict[str, Any]]:
    """The matching rows of `mapped`'s table as JSON-ready dicts, in primary-key order."""
    table = cast(Table, mapped.__table__)
    rows = session.execute(select(table).where(condition).order_by(*table.primary_key.columns))
    return [{name: _plain(value) for name, value in row._mapping.items()} for row in rows]


def _plain(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return value
