"""Knowledge-base records and the candidates a retriever returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class EntryStatus(StrEnum):
    DRAFT = "draft"
    PUBLISHED = "published"
    RETIRED = "retired"


@dataclass
class KBEntry:
    """A community answer: one or more ways of asking, one answer, and where it came from.

    `intent` links the entry to a retrieval intent (`faq/<key>`) when it came from one, so the
    intent classifier and the retriever can vote for the same answer. The provenance fields say
    where a community answer came from: `source` is "<importer>:<id in the source>" (stable
    across re-imports), `author` the answerer's handle, `accepted` whether the asker accepted the
    answer, `votes` its score, `last_activity_at` when the thread last changed at the source;
    `context` is the asker's full question, shown to agents and editors but not indexed.
    """

    id: str
    questions: list[str]
    answer: str
    source_url: str = ""
    tags: list[str] = field(default_factory=list)
    language: str = "en"
    status: EntryStatus = EntryStatus.PUBLISHED
    intent: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    source: str = ""
    author: str = ""
    accepted: bool = False
    votes: int = 0
    last_activity_at: datetime | None = None
    context: str = ""

    @property
    def title(self) -> str:
        return self.questions[0] if self.questions else self.id

    def is_stale(self, now: datetime, stale_after: timedelta) -> bool:
        """True when the entry's last change (at its source if known, else in the store) is
        older than `stale_after`."""
        changed = self.last_activity_at or self.updated_at
        return changed is not None and now - changed > stale_after

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "questions": list(self.questions),
            "answer": self.answer,
            "source_url": self.source_url,
            "tags": list(self.tags),
            "language": self.language,
            "status": self.status.value,
            "intent": self.intent,
            "created_at": self.created_at.isoformat() if self.created_at else None,
            "updated_at": self.updated_at.isoformat() if self.updated_at else None,
            "source": self.source,
            "author": self.author,
            "accepted": self.accepted,
            "votes": self.votes,
            "last_activity_at": self.last_activity_at.isoformat() if self.last_activity_at else None,
            "context": self.context,
        }


@dataclass(frozen=True)
class Candidate:
    """A KB entry ranked for one query.

    `score` is the retriever's raw similarity (dense and lexical blended); `dense` and `lexical`
    are its parts, kept for explanations and for calibration.
    """

    entry_id: str
    title: str
    score: float
    dense: float
    lexical: float
    matched_question: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.entry_id,
            "title": self.title,
            "score": round(self.score, 4),
            "dense": round(self.dense, 4),
            "lexical": round(self.lexical, 4),
            "matched_question": self.matched_question,
        }
