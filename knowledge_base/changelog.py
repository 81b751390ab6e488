"""Reading the knowledge base's change log: how far an index has applied it, and what the
published entries were at that point.

Every change to an entry writes a version row (store.py); its id is the change's place in the
log. An index remembers the last change it applied (`Position`) and asks the store for the
changes after it, so edits made by any process (`crowddesk kb publish`, the API, another server)
reach it, and a restarted server applies only what changed while it was down.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus, KBEntry

# A skipped change id is asked for again until it shows up or this long has passed: on
# PostgreSQL a transaction can commit after a later one (its id shows up late) or roll back (its
# id never shows up). No entry is written by a transaction that stays open for minutes.
PENDING_SECONDS = 600.0


@dataclass(frozen=True)
class Position:
    """The last change applied, and the lower change ids not seen yet with when they were missed."""

    change_id: int = 0
    pending: tuple[tuple[int, float], ...] = ()

    @property
    def pending_ids(self) -> list[int]:
        return [change_id for change_id, _ in self.pending]

    def after(self, seen: Iterable[int], now: float | None = None) -> Position:
        """The position once the changes with ids `seen` (all after this one) are applied."""
        now = time.time() if now is None else now
        seen = set(seen)
        top = max(seen | {self.change_id})
        pending = [(i, missed) for i, missed in self.pending if i not in seen and now - missed < PENDING_SECONDS]
        pending += [(i, now) for i in range(self.change_id + 1, top) if i not in seen]
        return Position(top, tuple(pending))

    def to_json(self) -> str:
        return json.dumps({"change_id": self.change_id, "pending": [list(p) for p in self.pending]})

    @classmethod
    def from_json(cls, text: str) -> Position:
        """A position written by `to_json`; ValueError naming the problem otherwise."""
        try:
            data: Any = json.loads(text)
            change_id = data["change_id"]
            pending = tuple((int(i), float(missed)) for i, missed in data["pending"])
        except (ValueError, KeyError, TypeError) as error:
            raise ValueError(f"not a saved index position: {error}") from error
        if not isinstance(change_id, int) or change_id < 0:
            raise ValueError(f"change_id must be a non-negative integer, got {change_id!r}")
        return cls(change_id, pending)


def current_position(store: KnowledgeBaseStore) -> Position:
    """The position after every change committed so far (reads every change id: a full build's cost)."""
    return Position().after(change_id for change_id, _ in store.changes_after(0))


def published_as_of(store: KnowledgeBaseStore, position: Position) -> list[KBEntry]:
    """The entries that were published at `position`, as they were then, ordered by id.

    Entries changed after it are read back from their versions, so the same position always
    gives the same entries: the base index built from them matches the FAISS index saved for it.
    """
    changed = {entry_id for _, entry_id in store.changes_after(position.change_id, position.pending_ids)}
    entries = {entry.id: entry for entry in store.published() if entry.id not in changed}
    not_applied = set(position.pending_ids)
    then: dict[str, KBEntry] = {}
    for change_id, version in store.versions_with_change_ids(sorted(changed)):
        if change_id <= position.change_id and change_id not in not_applied:
            then[version.entry_id] = version.entry()  # in change id order: the last one wins
    entries.update((entry_id, entry) for entry_id, entry in then.items() if entry.status is EntryStatus.PUBLISHED)
    return [entries[entry_id] for entry_id in sorted(entries)]
