"""Suggested entries from handoffs: what the customer asked and what the agent answered,
waiting for an editor to approve (a published, versioned entry) or reject (with a reason).

Filing them from tickets is the desk's part (bot/desk/suggestions.py); this is the review queue."""

from __future__ import annotations

import builtins  # Suggestions.list shadows `list` inside the class body
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, cast

from sqlalchemy import CursorResult, Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.errors import Conflict, NotFound, Rejected
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import InvalidEntry, InvalidTransition, KBSuggestionRow, KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus, KBEntry

FROM_HANDOFF_TAG = "from-handoff"


class SuggestionStatus(StrEnum):
    """Where a suggestion (`kb_suggestions.status`) stands: waiting for an editor, or decided."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class SuggestionNotFound(NotFound):
    """No suggestion with the given id."""


class SuggestionConflict(Conflict):
    """The suggestion was already approved or rejected."""


@dataclass(frozen=True)
class Suggestion:
    """A proposed entry linked to the ticket it came from."""

    id: int
    ticket_id: str
    questions: list[str]
    answer: str
    agent: str
    status: str
    entry_id: str | None
    reviewer: str | None
    reason: str | None
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ticket_id": self.ticket_id,
            "questions": list(self.questions),
            "answer": self.answer,
            "agent": self.agent,
            "status": self.status,
            "entry_id": self.entry_id,
            "reviewer": self.reviewer,
            "reason": self.reason,
            "created_at": self.created_at.isoformat(),
        }


def add_suggestion(
    session: Session,
    ticket_id: str,
    questions: list[str],
    answer: str,
    agent: str,
    redactor: Redactor,
    sender_id: str | None,
) -> int:
    """In `session`: a pending suggestion from the ticket `ticket_id` of the customer `sender_id`
    (kept so an erasure finds it), PII redacted by `redactor`. Returns its id."""
    # Redacted before it is stored: an editor may approve it unedited for every customer to see.
    questions, answer = [redactor.redact(q) for q in questions], redactor.redact(answer)
    row = KBSuggestionRow(
        ticket_id=ticket_id,
        questions=questions,
        answer=answer,
        agent=agent,
        status=SuggestionStatus.PENDING,
        created_at=datetime.now(UTC),
        sender_id=sender_id,
    )
    session.add(row)
    session.flush()
    return row.id


class Suggestions:
    """Listing and reviewing suggestions; approval publishes through the versioned store."""

    def __init__(self, engine: Engine, redactor: Redactor | None = None) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._entries = KnowledgeBaseStore(engine)
        self._redactor = redactor or Redactor()

    def get(self, suggestion_id: int) -> Suggestion:
        with self._sessions() as session:
            row = session.get(KBSuggestionRow, suggestion_id)
            if row is None:
                raise SuggestionNotFound(f"no suggestion {suggestion_id} (see `crowddesk kb suggestions`)")
            return _to_suggestion(row)

    def list(self, status: str | None = SuggestionStatus.PENDING) -> builtins.list[Suggestion]:
        """Suggestions with `status` (all when None), oldest first."""
        if status is not None and status not in tuple(SuggestionStatus):
            raise Rejected(f"unknown suggestion status {status!r}; use one of {', '.join(SuggestionStatus)}")
        query = select(KBSuggestionRow).order_by(KBSuggestionRow.id)
        if status is not None:
            query = query.where(KBSuggestionRow.status == status)
        with self._sessions() as session:
            return [_to_suggestion(row) for row in session.scalars(query)]

    def approve(
        self,
        suggestion_id: int,
        editor: str,
        *,
        questions: builtins.list[str] | None = None,
        answer: str | None = None,
    ) -> KBEntry:
        """Publish the suggestion (as edited by `editor`) as entry `handoff:<ticket>`."""
        suggestion = self.get(suggestion_id)
        # An editor's changes are redacted too; the suggestion itself already was.
        entry = self._redactor.redact_entry(
            KBEntry(
                id=f"handoff:{suggestion.ticket_id}",
                questions=[q.strip() for q in (questions or suggestion.questions) if q.strip()],
                answer=(answer if answer is not None else suggestion.answer).strip(),
                tags=[FROM_HANDOFF_TAG],
                status=EntryStatus.PUBLISHED,
                source=f"handoff:{suggestion.ticket_id}",
                author=suggestion.agent,
            )
        )
        if not entry.answer:
            raise Rejected("the answer is empty")
        # Claimed first, so two editors can't both approve; given back if publishing fails.
        self._review(suggestion_id, SuggestionStatus.APPROVED, editor, entry_id=entry.id)
        try:
            self._entries.upsert(entry, actor=editor, comment=f"approved suggestion {suggestion_id}")
        except (InvalidEntry, InvalidTransition) as exc:
            self._reopen(suggestion_id)
            raise Rejected(str(exc)) from exc
        return self._entries.get(entry.id) or entry

    def reject(self, suggestion_id: int, editor: str, reason: str) -> Suggestion:
        """Turn the suggestion down; the reason is kept for the agent who made it."""
        if not reason.strip():
            raise Rejected("say why the suggestion is rejected (a reason is required)")
        self._review(suggestion_id, SuggestionStatus.REJECTED, editor, reason=reason.strip())
        return self.get(suggestion_id)

    def _review(self, suggestion_id: int, status: str, editor: str, **values: Any) -> None:
        with self._sessions.begin() as session:
            done = cast(
                CursorResult[Any],
                session.execute(
                    update(KBSuggestionRow)
                    .where(KBSuggestionRow.id == suggestion_id, KBSuggestionRow.status == SuggestionStatus.PENDING)
                    .values(status=status, reviewer=editor, reviewed_at=datetime.now(UTC), **values)
                    .execution_options(synchronize_session=False)
                ),
            ).rowcount
        if not done:
            current = self.get(suggestion_id)  # raises SuggestionNotFound for an unknown id
            raise SuggestionConflict(f"suggestion {suggestion_id} is already {current.status}")

    def _reopen(self, suggestion_id: int) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(KBSuggestionRow)
                .where(KBSuggestionRow.id == suggestion_id)
                .values(status=SuggestionStatus.PENDING, reviewer=None, reviewed_at=None, entry_id=None)
                .execution_options(synchronize_session=False)
            )


def _to_suggestion(row: KBSuggestionRow) -> Suggestion:
    return Suggestion(
        id=row.id,
        ticket_id=row.ticket_id,
        questions=list(row.questions),
        answer=row.answer,
        agent=row.agent,
        status=row.status,
        entry_id=row.entry_id,
        reviewer=row.reviewer,
        reason=row.reason,
        created_at=row.created_at,
    )
