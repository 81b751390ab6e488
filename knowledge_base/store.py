"""Knowledge-base entries with their question variants, and a cache of encoded text vectors."""

from __future__ import annotations

import builtins  # KnowledgeBaseStore.list shadows `list` inside the class body
import dataclasses
import hashlib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
from sqlalchemy import (
    JSON,
    Boolean,
    CursorResult,
    Engine,
    ForeignKey,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
    delete,
    exists,
    func,
    or_,
    select,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker
from sqlalchemy.sql.elements import ColumnElement

from crowddesk.errors import Conflict, Invalid, NotFound
from crowddesk.knowledge_base.entry_fields import entry_id_problem, source_url_problem
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.storage.columns import UtcDateTime
from crowddesk.storage.upserts import insert_missing

MAX_ID_LENGTH = 255
MAX_LANGUAGE_LENGTH = 16
# Keeps each IN (...) / multi-row INSERT well under both backends' bound-parameter limits.
_BATCH = 500
# Vectors are stored as little-endian float32 so a cache file moves between machines intact.
_VECTOR_DTYPE = np.dtype("<f4")

_Item = TypeVar("_Item")

# Once served, an entry never goes back to draft ("not reviewed yet"): it is edited in place
# (every edit is a new version) and retired to stop serving it.
ALLOWED_TRANSITIONS: dict[EntryStatus, frozenset[EntryStatus]] = {
    EntryStatus.DRAFT: frozenset({EntryStatus.PUBLISHED, EntryStatus.RETIRED}),
    EntryStatus.PUBLISHED: frozenset({EntryStatus.RETIRED}),
    EntryStatus.RETIRED: frozenset({EntryStatus.PUBLISHED}),
}
SYSTEM_ACTOR = "system"
# Not content: kept on the row (status, timestamps) or the key itself.
_NOT_VERSIONED = frozenset({"id", "status", "created_at", "updated_at"})


class UnknownEntry(NotFound):
    """No knowledge-base entry with that id, or no such version of it."""


class InvalidEntry(Invalid):
    """An entry (or a listing's bounds) the store's rules refuse: no question, an unsafe id or link."""


class InvalidTransition(Conflict):
    """A status change the lifecycle does not allow (see ALLOWED_TRANSITIONS)."""


class KnowledgeBaseTables(DeclarativeBase):
    __table__: ClassVar[Table]  # every class here declares a Core Table (SQLAlchemy types it FromClause)


class KBEntryRow(KnowledgeBaseTables):
    __tablename__ = "kb_entries"

    id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), primary_key=True)
    answer: Mapped[str] = mapped_column(Text)
    source_url: Mapped[str] = mapped_column(String(2048))
    tags: Mapped[list[str]] = mapped_column(JSON)
    language: Mapped[str] = mapped_column(String(MAX_LANGUAGE_LENGTH))
    status: Mapped[str] = mapped_column(String(16), index=True)
    intent: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime)
    # Provenance; nullable so that init_schema can add them to an older database.
    source: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH), nullable=True, index=True)
    author: Mapped[str | None] = mapped_column(String(255), nullable=True)
    accepted: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    votes: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_activity_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    context: Mapped[str | None] = mapped_column(Text, nullable=True)


class KBQuestionRow(KnowledgeBaseTables):
    __tablename__ = "kb_questions"
    __table_args__ = (UniqueConstraint("entry_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(ForeignKey("kb_entries.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text)


class EmbeddingRow(KnowledgeBaseTables):
    __tablename__ = "embedding_cache"

    encoder: Mapped[str] = mapped_column(String(255), primary_key=True)
    text_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    vector: Mapped[bytes] = mapped_column(LargeBinary)
    dim: Mapped[int] = mapped_column(Integer)


class KBEntryVersionRow(KnowledgeBaseTables):
    """The audit log: one row per change of an entry, holding its whole content after it."""

    __tablename__ = "kb_entry_versions"
    __table_args__ = (UniqueConstraint("entry_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    entry_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), index=True)
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    content: Mapped[dict[str, Any]] = mapped_column(JSON)
    actor: Mapped[str] = mapped_column(String(255))
    action: Mapped[str] = mapped_column(String(32))
    comment: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class KBSuggestionRow(KnowledgeBaseTables):
    """An entry proposed from a resolved handoff, waiting for an editor (see suggestions.py)."""

    __tablename__ = "kb_suggestions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    ticket_id: Mapped[str] = mapped_column(String(32), index=True)
    questions: Mapped[list[str]] = mapped_column(JSON)
    answer: Mapped[str] = mapped_column(Text)
    agent: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16), index=True)
    entry_id: Mapped[str | None] = mapped_column(String(MAX_ID_LENGTH), nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    reviewed_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)
    # The customer whose conversation it came from, so erasing them finds it even once the
    # ticket is gone; NULL on rows an older CrowdDesk wrote (found through the ticket id then).
    sender_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)


class KBUsageRow(KnowledgeBaseTables):
    """How often an entry was served and voted on; one row per entry served (usage.py).

    No foreign key to kb_entries: checking it would lock the entry row on every answer, and
    an editor's edit holds that lock. Entries are never deleted, only retired.
    """

    __tablename__ = "kb_usage"

    entry_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), primary_key=True)
    served: Mapped[int] = mapped_column(Integer, default=0)
    helpful: Mapped[int] = mapped_column(Integer, default=0)
    unhelpful: Mapped[int] = mapped_column(Integer, default=0)
    last_served_at: Mapped[datetime | None] = mapped_column(UtcDateTime, nullable=True)


class KBFeedbackRow(KnowledgeBaseTables):
    """A Helpful / Not helpful press on one served answer; its key makes a second press a no-op.
    `rating` (1 to 5) is the customer's answer to the rating question asked after Helpful."""

    __tablename__ = "kb_feedback"

    answer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    entry_id: Mapped[str] = mapped_column(String(MAX_ID_LENGTH), index=True)
    # Indexed for the scorecard: a conversation's presses, and the presses of a period.
    sender_id: Mapped[str] = mapped_column(String(128), index=True)
    helpful: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    rating: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


@dataclasses.dataclass(frozen=True)
class EntryVersion:
    """One audited change: who did what to an entry, when, and its content afterwards."""

    entry_id: str
    version: int
    status: EntryStatus
    content: dict[str, Any]
    actor: str
    action: str
    comment: str
    created_at: datetime

    def entry(self) -> KBEntry:
        """The entry as this version left it."""
        return entry_from_content(self.entry_id, self.status, self.content)

    def as_dict(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "version": self.version,
            "status": self.status.value,
            "content": self.content,
            "actor": self.actor,
            "action": self.action,
            "comment": self.comment,
            "created_at": self.created_at.isoformat(),
        }


class KnowledgeBaseStore:
    """Persists KB entries (questions kept in order) and caches text embeddings per encoder.

    Timestamps are the store's: `created_at` is set once, `updated_at` only when content changes.
    """

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def upsert(self, entry: KBEntry, *, actor: str = SYSTEM_ACTOR, comment: str = "") -> bool:
        """Create or replace an entry (questions included); True if it was created.

        A creation or a change is versioned as done by `actor`; the entry must pass the store's
        rules (InvalidEntry otherwise) and a status change must be one ALLOWED_TRANSITIONS lists
        (InvalidTransition otherwise).
        """
        return self._write(entry, actor=actor, comment=comment)

    def _write(self, entry: KBEntry, *, actor: str, comment: str, action: str | None = None) -> bool:
        _check_entry(entry)
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            created = insert_missing(
                session,
                KBEntryRow,
                [{**_content_columns(entry), "id": entry.id, "created_at": now, "updated_at": now}],
            )
            if created:
                _replace_questions(session, entry.id, entry.questions)
                _add_version(session, entry, actor, action or "create", comment, now)
                return True
            row = session.scalars(select(KBEntryRow).where(KBEntryRow.id == entry.id).with_for_update()).one()
            stored = _to_entry(row, _questions_of(session, [entry.id])[entry.id])
            if _content(stored) == _content(entry):
                return False
            _check_transition(entry.id, stored.status, EntryStatus(entry.status))
            for column, value in _content_columns(entry).items():
                setattr(row, column, value)
            row.updated_at = now
            _replace_questions(session, entry.id, entry.questions)
            _add_version(session, entry, actor, action or "edit", comment, now)
            return False

    def get(self, entry_id: str) -> KBEntry | None:
        with self._sessions() as session:
            entries = _load_entries(session, select(KBEntryRow).where(KBEntryRow.id == entry_id))
            return entries[0] if entries else None

    def count(self, status: EntryStatus | None = None) -> int:
        query = select(func.count()).select_from(KBEntryRow)
        if status is not None:
            query = query.where(KBEntryRow.status == EntryStatus(status).value)
        with self._sessions() as session:
            return session.scalar(query) or 0

    def published(self) -> builtins.list[KBEntry]:
        """Every published entry, ordered by id, questions in their stored order."""
        query = select(KBEntryRow).where(KBEntryRow.status == EntryStatus.PUBLISHED.value)
        with self._sessions() as session:
            return _load_entries(session, query.order_by(KBEntryRow.id))

    def set_status(
        self, entry_id: str, status: EntryStatus, *, actor: str = SYSTEM_ACTOR, comment: str = ""
    ) -> KBEntry:
        """Move an entry to `status`, versioned as done by `actor`; UnknownEntry if there is no
        such entry, InvalidTransition if the lifecycle does not allow the move."""
        new_status = EntryStatus(status)
        with self._sessions.begin() as session:
            row = session.scalars(select(KBEntryRow).where(KBEntryRow.id == entry_id).with_for_update()).one_or_none()
            if row is None:
                raise UnknownEntry(f"no knowledge-base entry with id {entry_id!r}")
            changed = row.status != new_status.value
            if changed:
                _check_transition(entry_id, EntryStatus(row.status), new_status)
                row.status = new_status.value
                row.updated_at = datetime.now(UTC)
            entry = _to_entry(row, _questions_of(session, [entry_id])[entry_id])
            if changed:
                _add_version(session, entry, actor, _STATUS_ACTIONS[new_status], comment, row.updated_at)
            return entry

    def history(self, entry_id: str) -> builtins.list[EntryVersion]:
        """Every version of an entry, oldest first (empty for an unknown id)."""
        with self._sessions() as session:
            rows = session.scalars(
                select(KBEntryVersionRow)
                .where(KBEntryVersionRow.entry_id == entry_id)
                .order_by(KBEntryVersionRow.version)
            )
            return [_to_version(row) for row in rows]

    def last_written_by(self, entry: KBEntry, actor: str) -> bool:
        """Whether `actor`'s latest version of `entry.id` has `entry`'s content (status aside)."""
        with self._sessions() as session:
            content = session.scalar(
                select(KBEntryVersionRow.content)
                .where(KBEntryVersionRow.entry_id == entry.id, KBEntryVersionRow.actor == actor)
                .order_by(KBEntryVersionRow.version.desc())
                .limit(1)
            )
        return content == _versioned_content(entry)

    def restore(self, entry_id: str, version: int, *, actor: str, comment: str = "") -> KBEntry:
        """Bring back the content of `version` as a new version; the current status is kept,
        so restoring never publishes or withdraws an entry by itself. UnknownEntry for an unknown
        id or version."""
        current = self.get(entry_id)
        if current is None:
            raise UnknownEntry(f"no knowledge-base entry with id {entry_id!r}")
        chosen = next((v for v in self.history(entry_id) if v.version == version), None)
        if chosen is None:
            raise UnknownEntry(f"knowledge-base entry {entry_id!r} has no version {version}")
        restored = entry_from_content(entry_id, current.status, chosen.content)
        self._write(restored, actor=actor, comment=comment or f"restored version {version}", action="restore")
        return self.get(entry_id) or restored

    def change_count(self) -> int:
        """How many changes were ever made; grows with every committed change, in any process."""
        # A count, not max(id): PostgreSQL hands out ids before commit, so a lower id can
        # become visible after a higher one and a watcher of max(id) would miss it.
        with self._sessions() as session:
            return session.scalar(select(func.count()).select_from(KBEntryVersionRow)) or 0

    def changes_after(self, change_id: int, pending: Sequence[int] = ()) -> builtins.list[tuple[int, str]]:
        """(change id, entry id) of the committed changes with an id above `change_id` or in
        `pending`, by id. A change id is its version row's id: unique and growing, but on
        PostgreSQL a lower id can commit after a higher one, so readers keep the ids they skipped
        (`pending`) and ask for them again."""
        columns = select(KBEntryVersionRow.id, KBEntryVersionRow.entry_id)
        with self._sessions() as session:
            found = {row.id: row.entry_id for row in session.execute(columns.where(KBEntryVersionRow.id > change_id))}
            for ids in _batches(list(pending)):
                found.update(
                    (row.id, row.entry_id) for row in session.execute(columns.where(KBEntryVersionRow.id.in_(ids)))
                )
        return sorted(found.items())

    def entries(self, entry_ids: Sequence[str]) -> builtins.list[KBEntry]:
        """The entries with those ids, whatever their status, ordered by id; unknown ids are left out."""
        with self._sessions() as session:
            return sorted(
                (
                    entry
                    for ids in _batches(list(entry_ids))
                    for entry in _load_entries(session, select(KBEntryRow).where(KBEntryRow.id.in_(ids)))
                ),
                key=lambda entry: entry.id,
            )

    def versions_with_change_ids(self, entry_ids: Sequence[str]) -> builtins.list[tuple[int, EntryVersion]]:
        """Every version of those entries with its change id (see `changes_after`), by change id."""
        with self._sessions() as session:
            return sorted(
                (
                    (row.id, _to_version(row))
                    for ids in _batches(list(entry_ids))
                    for row in session.scalars(select(KBEntryVersionRow).where(KBEntryVersionRow.entry_id.in_(ids)))
                ),
                key=lambda pair: pair[0],
            )

    def cached_vectors(self, encoder: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of those `texts` that `encoder` has encoded before, keyed by text."""
        texts_by_hash = {_text_hash(text): text for text in texts}
        vectors: dict[str, np.ndarray] = {}
        with self._sessions() as session:
            for hashes in _batches(list(texts_by_hash)):
                rows = session.scalars(
                    select(EmbeddingRow).where(EmbeddingRow.encoder == encoder, EmbeddingRow.text_hash.in_(hashes))
                )
                for row in rows:
                    vector = np.frombuffer(row.vector, dtype=_VECTOR_DTYPE)
                    if vector.shape != (row.dim,):
                        raise ValueError(
                            f"embedding_cache row ({encoder!r}, {row.text_hash}) holds "
                            f"{vector.size} floats but says dim={row.dim}"
                        )
                    vectors[texts_by_hash[row.text_hash]] = vector.astype(np.float32)
        return vectors

    def store_vectors(self, encoder: str, vectors: Mapping[str, np.ndarray]) -> None:
        """Cache `encoder`'s vector for each text; texts already cached keep their vector."""
        rows = [_embedding_row(encoder, text, vector) for text, vector in vectors.items()]
        with self._sessions.begin() as session:
            for batch in _batches(rows):
                insert_missing(session, EmbeddingRow, batch)

    def forget_vectors(self, texts: Sequence[str]) -> int:
        """Drop the cached vectors of `texts`, for every encoder (an erasure); how many rows went."""
        hashes = sorted({_text_hash(text) for text in texts})
        removed = 0
        with self._sessions.begin() as session:
            for batch in _batches(hashes):
                deleted = session.execute(delete(EmbeddingRow).where(EmbeddingRow.text_hash.in_(batch)))
                removed += cast(CursorResult[Any], deleted).rowcount
        return removed

    def list(
        self,
        status: EntryStatus | None = None,
        tag: str | None = None,
        text: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> builtins.list[KBEntry]:
        """Entries ordered by id, filtered by status, by tag, and by a case-insensitive
        substring of the id, any question or the answer (non-ASCII letters match case-
        insensitively on PostgreSQL only: SQLite's LIKE folds ASCII alone)."""
        if limit < 0 or offset < 0:
            raise InvalidEntry(f"limit and offset must be >= 0, got limit={limit}, offset={offset}")
        query = select(KBEntryRow)
        if status is not None:
            query = query.where(KBEntryRow.status == EntryStatus(status).value)
        with self._sessions() as session:
            if tag is not None:
                query = query.where(_has_tag(session, tag))
            if text:
                query = query.where(_mentions(text))
            return _load_entries(session, query.order_by(KBEntryRow.id).limit(limit).offset(offset))


def _check_entry(entry: KBEntry) -> None:
    if not entry.id or len(entry.id) > MAX_ID_LENGTH:
        raise InvalidEntry(f"KB entry id must be 1 to {MAX_ID_LENGTH} characters, got {entry.id!r}")
    problem = entry_id_problem(entry.id) or source_url_problem(entry.source_url)
    if problem is not None:
        raise InvalidEntry(problem)
    if not any(question.strip() for question in entry.questions):
        raise InvalidEntry(f"KB entry {entry.id!r} has no question")
    if len(entry.language) > MAX_LANGUAGE_LENGTH:
        raise InvalidEntry(f"KB entry {entry.id!r} has language code {entry.language!r}, too long")
    if entry.status not in {status.value for status in EntryStatus}:
        raise InvalidEntry(f"KB entry {entry.id!r} has unknown status {entry.status!r}")


_STATUS_ACTIONS = {
    EntryStatus.DRAFT: "draft",
    EntryStatus.PUBLISHED: "publish",
    EntryStatus.RETIRED: "retire",
}


def _check_transition(entry_id: str, old: EntryStatus, new: EntryStatus) -> None:
    if old != new and new not in ALLOWED_TRANSITIONS[old]:
        allowed = " or ".join(sorted(s.value for s in ALLOWED_TRANSITIONS[old]))
        raise InvalidTransition(
            f"KB entry {entry_id!r} is {old.value}; it can become {allowed}, not {new.value} "
            "(edit it instead: every edit is a new version)"
        )


def _add_version(session: Session, entry: KBEntry, actor: str, action: str, comment: str, now: datetime) -> None:
    latest = session.scalar(select(func.max(KBEntryVersionRow.version)).where(KBEntryVersionRow.entry_id == entry.id))
    session.add(
        KBEntryVersionRow(
            entry_id=entry.id,
            version=(latest or 0) + 1,
            status=EntryStatus(entry.status).value,
            content=_versioned_content(entry),
            actor=actor or SYSTEM_ACTOR,
            action=action,
            comment=comment,
            created_at=now,
        )
    )


def _to_version(row: KBEntryVersionRow) -> EntryVersion:
    return EntryVersion(
        entry_id=row.entry_id,
        version=row.version,
        status=EntryStatus(row.status),
        content=dict(row.content),
        actor=row.actor,
        action=row.action,
        comment=row.comment,
        created_at=row.created_at,
    )


def _versioned_content(entry: KBEntry) -> dict[str, Any]:
    return {k: v for k, v in entry.as_dict().items() if k not in _NOT_VERSIONED}


def entry_from_content(entry_id: str, status: EntryStatus, content: Mapping[str, Any]) -> KBEntry:
    """A KBEntry from a version's content (KBEntry.as_dict without id, status and timestamps)."""
    known = {field.name: field for field in dataclasses.fields(KBEntry)}
    values: dict[str, Any] = {}
    for name, value in content.items():
        if name not in known or name in _NOT_VERSIONED:
            continue  # a field an older or newer CrowdDesk wrote
        if isinstance(value, str) and "datetime" in str(known[name].type):
            value = datetime.fromisoformat(value)
        values[name] = value
    return KBEntry(id=entry_id, status=status, **values)


def _content_columns(entry: KBEntry) -> dict[str, Any]:
    return {
        "answer": entry.answer,
        "source_url": entry.source_url,
        "tags": list(entry.tags),
        "language": entry.language,
        "status": EntryStatus(entry.status).value,
        "intent": entry.intent,
        "source": entry.source,
        "author": entry.author,
        "accepted": entry.accepted,
        "votes": entry.votes,
        "last_activity_at": entry.last_activity_at,
        "context": entry.context,
    }


def _content(entry: KBEntry) -> tuple[Any, ...]:
    return (list(entry.questions), *_content_columns(entry).values())


def _replace_questions(session: Session, entry_id: str, questions: Sequence[str]) -> None:
    session.execute(delete(KBQuestionRow).where(KBQuestionRow.entry_id == entry_id))
    session.add_all(
        KBQuestionRow(entry_id=entry_id, position=position, text=question)
        for position, question in enumerate(questions)
    )


def _questions_of(session: Session, entry_ids: Sequence[str]) -> dict[str, list[str]]:
    questions: dict[str, list[str]] = {entry_id: [] for entry_id in entry_ids}
    for ids in _batches(entry_ids):
        rows = session.execute(
            select(KBQuestionRow.entry_id, KBQuestionRow.text)
            .where(KBQuestionRow.entry_id.in_(ids))
            .order_by(KBQuestionRow.entry_id, KBQuestionRow.position)
        )
        for entry_id, text in rows:
            questions[entry_id].append(text)
    return questions


def _load_entries(session: Session, query: Any) -> list[KBEntry]:
    rows = session.scalars(query).all()
    questions = _questions_of(session, [row.id for row in rows])
    return [_to_entry(row, questions[row.id]) for row in rows]


def _to_entry(row: KBEntryRow, questions: list[str]) -> KBEntry:
    return KBEntry(
        id=row.id,
        questions=questions,
        answer=row.answer,
        source_url=row.source_url,
        tags=list(row.tags),
        language=row.language,
        status=EntryStatus(row.status),
        intent=row.intent,
        created_at=row.created_at,
        updated_at=row.updated_at,
        source=row.source or "",
        author=row.author or "",
        accepted=bool(row.accepted),
        votes=row.votes or 0,
        last_activity_at=row.last_activity_at,
        context=row.context or "",
    )


def _has_tag(session: Session, tag: str) -> ColumnElement[bool]:
    # Both backends expand a JSON array into rows with a `value` column, under different names.
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    expand = func.json_array_elements_text if on_postgresql else func.json_each
    elements = expand(KBEntryRow.tags).table_valued("value")
    return exists(select(elements.c.value).where(elements.c.value == tag))


def _mentions(text: str) -> ColumnElement[bool]:
    in_questions = exists(
        select(KBQuestionRow.id).where(
            KBQuestionRow.entry_id == KBEntryRow.id,
            KBQuestionRow.text.icontains(text, autoescape=True),
        )
    )
    return or_(
        KBEntryRow.id.icontains(text, autoescape=True),
        KBEntryRow.answer.icontains(text, autoescape=True),
        in_questions,
    )


def _embedding_row(encoder: str, text: str, vector: np.ndarray) -> dict[str, Any]:
    values = np.asarray(vector, dtype=_VECTOR_DTYPE)
    if values.ndim != 1:
        raise ValueError(f"vector for text {text[:60]!r} has shape {values.shape}; expected one dimension")
    return {
        "encoder": encoder,
        "text_hash": _text_hash(text),
        "vector": values.tobytes(),
        "dim": int(values.size),
    }


def _text_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _batches(items: Sequence[_Item]) -> Iterable[Sequence[_Item]]:
    for start in range(0, len(items), _BATCH):
        yield items[start : start + _BATCH]
