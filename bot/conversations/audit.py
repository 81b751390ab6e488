"""The privacy audit log: who read, exported or erased whose data, and when.

One row per access: the actor (an agent id, `api-token`, a JWT user, or `cli:<os user>`),
the action, the customer's sender id and a detail that never holds their data (a ticket id,
row counts). When a person is erased their rows stay, but the sender id in them is replaced by
its SHA-256 (`sha256:<hex>`), so the log still answers "was this person's data read, and by
whom?" for someone who knows the id, and shows no one the id itself.
"""

from __future__ import annotations

import getpass
import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, Integer, String, Text, or_, select, update
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, sessionmaker

from crowddesk.bot.conversations.store import MAX_SENDER_ID_LENGTH
from crowddesk.storage.columns import UtcDateTime

READ_TICKET = "read_ticket"
READ_TRACKER = "read_tracker"
EXPORT = "export"
ERASE = "erase"
ACTIONS = (READ_TICKET, READ_TRACKER, EXPORT, ERASE)
_HASHED = "sha256:"


class AuditTables(DeclarativeBase):
    """The audit table, created with the others by `init_schema`."""


class AuditRow(AuditTables):
    """One access to a person's data."""

    __tablename__ = "privacy_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    # Long enough for a raw sender id and for `sha256:` + 64 hex digits.
    sender: Mapped[str] = mapped_column(String(MAX_SENDER_ID_LENGTH), index=True)
    detail: Mapped[str] = mapped_column(Text, default="")


@dataclass(frozen=True)
class AuditEntry:
    """An audit row as the CLI and API show it."""

    at: datetime
    actor: str
    action: str
    sender: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "actor": self.actor,
            "action": self.action,
            "sender": self.sender,
            "detail": self.detail,
        }


def hashed_sender(sender_id: str) -> str:
    """What an erased person's sender id becomes in the log."""
    return _HASHED + hashlib.sha256(sender_id.encode("utf-8")).hexdigest()


def cli_actor() -> str:
    """The actor of a command run on the server's shell: `cli:<os user>`."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for the uid, e.g. in a bare container
        user = "unknown"
    return f"cli:{user}"


def add_entry(session: Session, actor: str, action: str, sender_id: str, detail: str = "") -> None:
    """In the caller's transaction: record one access."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}; use one of {', '.join(ACTIONS)}")
    session.add(AuditRow(at=datetime.now(UTC), actor=actor[:128], action=action, sender=sender_id, detail=detail))


def pseudonymise(session: Session, sender_id: str) -> int:
    """In the erasing transaction: replace the person's sender id in their rows by its hash."""
    result = session.execute(
        update(AuditRow)
        .where(AuditRow.sender == sender_id)
        .values(sender=hashed_sender(sender_id))
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0))


class AuditLog:
    """Writes and reads the privacy audit log."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine)

    def record(self, actor: str, action: str, sender_id: str, detail: str = "") -> None:
        """Record one access in a transaction of its own."""
        with self._sessions.begin() as session:
            add_entry(session, actor, action, sender_id, detail)

    def entries(self, sender_id: str | None = None, *, limit: int = 100) -> list[AuditEntry]:
        """The newest `limit` rows, newest first; with `sender_id`, that person's (hashed once erased)."""
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        query = select(AuditRow).order_by(AuditRow.id.desc()).limit(limit)
        if sender_id is not None:
            query = query.where(or_(AuditRow.sender == sender_id, AuditRow.sender == hashed_sender(sender_id)))
        with self._sessions() as session:
            return [AuditEntry(row.at, row.actor, row.action, row.sender, row.detail) for row in session.scalars(query)]
