"""What the community importers (Stack Exchange, Discourse) share: threads, answer choice, skips."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from crowddesk.knowledge_base.sources.html_text import html_to_text
from crowddesk.knowledge_base.types import KBEntry

NO_GOOD_ANSWER = "no accepted or good answer"
ANSWER_TOO_SHORT = "answer too short"


@dataclass
class ImportBatch:
    """Entries read from a source, and how many threads were skipped for which reason."""

    entries: list[KBEntry] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)


@dataclass(frozen=True)
class AnswerRules:
    """Which answer of a thread becomes the entry's answer."""

    min_score: int = 1
    min_chars: int = 20


@dataclass(frozen=True)
class Post:
    """One answer in a community thread, its body still HTML."""

    id: int
    html: str
    score: int
    author: str
    accepted: bool
    activity_at: datetime | None


@dataclass(frozen=True)
class Thread:
    """A question with its candidate answers, as read from any community source."""

    entry_id: str
    source: str
    url: str
    title: str
    question_html: str
    tags: list[str]
    activity_at: datetime | None
    answers: Sequence[Post]


class CommunitySource(ABC):
    """An importer of a community's question threads; also reports the threads it skipped."""

    format: str

    def __init__(self, site_url: str = "", rules: AnswerRules = AnswerRules()) -> None:
        """`site_url` (https://superuser.com) makes the source links and names the site in ids."""
        self.site_url = site_url.rstrip("/")
        self.rules = rules

    def load(self, path: Path) -> list[KBEntry]:
        return self.read(path).entries

    def read(self, path: Path) -> ImportBatch:
        """Every thread as an entry, or counted as skipped with its reason."""
        batch = ImportBatch()
        for thread in self.threads(path):
            _thread_entry(thread, self.rules, batch)
        return batch

    @abstractmethod
    def threads(self, path: Path) -> Iterator[Thread]:
        """The source's threads, in source order; bad input raises KBImportError."""

    def site(self, fallback: str) -> str:
        """The host of `site_url` (the part of an entry id that tells sites apart), else `fallback`."""
        return urlsplit(self.site_url).netloc or fallback


def _thread_entry(thread: Thread, rules: AnswerRules, batch: ImportBatch) -> None:
    """Add the thread's entry to `batch`: the accepted answer, else the best-scored one that
    reaches `rules.min_score`; or count why it was skipped."""
    ranked = sorted(thread.answers, key=lambda post: (not post.accepted, -post.score, post.id))
    best = next((post for post in ranked if post.accepted or post.score >= rules.min_score), None)
    if best is None:
        batch.skipped[NO_GOOD_ANSWER] += 1
        return
    answer = html_to_text(best.html)
    if len(answer) < rules.min_chars:
        batch.skipped[ANSWER_TOO_SHORT] += 1
        return
    activity = [t for t in (thread.activity_at, best.activity_at) if t is not None]
    batch.entries.append(
        KBEntry(
            id=thread.entry_id,
            questions=[" ".join(thread.title.split())],
            answer=answer,
            source_url=thread.url,
            tags=[tag for tag in thread.tags if tag],
            source=thread.source,
            author=best.author,
            accepted=best.accepted,
            votes=best.score,
            last_activity_at=max(activity, default=None),
            context=html_to_text(thread.question_html),
        )
    )


def parse_time(text: str) -> datetime:
    """An ISO 8601 time from a dump or API; times without a zone are UTC (as in Stack Exchange dumps)."""
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
