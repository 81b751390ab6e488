"""Storing imported entries: PII redaction, near-duplicate merging, idempotent upserts, a summary.

Every importer's entries pass through `ingest`: their questions, answers and context are
redacted first (nothing unredacted reaches the store or the embedding cache), questions whose
embeddings are at least `duplicate_threshold` alike become variants of the best-rated entry
(accepted first, then votes), a new entry whose question is that close to a question of an
already published entry from elsewhere becomes a variant of that entry, and each entry is
upserted by its stable id, keeping the variants it gained, so importing the same source again
adds nothing and reports the entries as unchanged.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import numpy as np

from crowddesk.knowledge_base.index import question_vectors
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.sources.community import ImportBatch
from crowddesk.knowledge_base.sources.importers import unique_texts
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.nlu.encoders import Encoder

logger = logging.getLogger(__name__)
# The audit log names imports by what ran them; `comment` carries the source id.
IMPORT_ACTOR = "import"


@dataclass(frozen=True)
class IngestOptions:
    """How imported entries are cleaned and merged (config.yml: KnowledgeBaseRetriever.ingestion)."""

    duplicate_threshold: float = 0.92
    redact_patterns: Sequence[str] = ()
    stale_after: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class Merge:
    """A question that became a variant of another entry instead of an entry of its own."""

    duplicate_id: str
    into_id: str
    similarity: float


@dataclass
class ImportSummary:
    """What one import did, for the command line and the logs (counts, never text)."""

    read: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: list[Merge] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    redactions: Counter[str] = field(default_factory=Counter)
    stale: int = 0
    stale_after: timedelta = timedelta(days=365)

    def lines(self, source: str) -> list[str]:
        """The summary as printed by `crowddesk kb import`."""
        lines = [
            (
                f"{source}: {self.read} entries read; {self.added} added, {self.updated} updated, "
                f"{self.unchanged} unchanged, {len(self.merged)} merged, {sum(self.skipped.values())} skipped"
            )
        ]
        lines += [f"  merged {m.duplicate_id} into {m.into_id} (similarity {m.similarity:.2f})" for m in self.merged]
        if self.skipped:
            lines.append("  skipped: " + _counts(self.skipped))
        lines.append("  redacted: " + (_counts(self.redactions) or "nothing"))
        lines.append(f"  stale (no change for {self.stale_after.days} days): {self.stale}")
        return lines


def ingest(
    store: KnowledgeBaseStore,
    batch: ImportBatch,
    *,
    encoder: Encoder | None,
    options: IngestOptions = IngestOptions(),
    progress: Callable[[list[KBEntry]], Iterable[KBEntry]] = iter,
    now: datetime | None = None,
) -> ImportSummary:
    """Redact, merge (when an `encoder` is given) and upsert `batch`; `progress` wraps the
    upsert loop (a tqdm bar on the command line)."""
    now = now or datetime.now(UTC)
    summary = ImportSummary(
        read=len(batch.entries) + sum(batch.skipped.values()),
        skipped=Counter(batch.skipped),
        stale_after=options.stale_after,
    )
    redactor = Redactor(options.redact_patterns)
    entries = [redactor.redact_entry(entry) for entry in batch.entries]
    summary.redactions = redactor.counts
    if summary.redactions:
        logger.info("redacted %s", _counts(summary.redactions))
    if encoder is not None and entries:
        if len(entries) > 1:
            entries, summary.merged = merge_duplicates(store, encoder, entries, options.duplicate_threshold)
        entries, grown, into_stored = merge_into_stored(store, encoder, entries, options.duplicate_threshold)
        summary.merged = _redirected(summary.merged, into_stored) + into_stored
        for target in grown:
            merged_ids = ", ".join(m.duplicate_id for m in into_stored if m.into_id == target.id)
            store.upsert(target, actor=IMPORT_ACTOR, comment=f"variants from {merged_ids}")
    for entry in progress(entries):
        before = store.get(entry.id)
        if before is not None:
            # A re-import refreshes content; publishing or retiring stays the editors' call, and
            # variants merged in from other sources stay (else each import would undo the other).
            entry = replace(entry, status=before.status, questions=unique_texts([*entry.questions, *before.questions]))
        created = store.upsert(entry, actor=IMPORT_ACTOR, comment=entry.source or "")
        after = store.get(entry.id)
        if created:
            summary.added += 1
        elif before == after:
            summary.unchanged += 1
        else:
            summary.updated += 1
        if after is not None and after.is_stale(now, options.stale_after):
            summary.stale += 1
    return summary


def merge_duplicates(
    store: KnowledgeBaseStore, encoder: Encoder, entries: list[KBEntry], threshold: float
) -> tuple[list[KBEntry], list[Merge]]:
    """Entries whose first question is within `threshold` (cosine) of a better-rated entry's
    first question become that entry's variants. Order of the result: the input's."""
    ranked = sorted(range(len(entries)), key=lambda i: _rank_key(entries[i]))
    firsts = [replace(entries[i], questions=entries[i].questions[:1]) for i in ranked]
    # Through the store's embedding cache: the index encodes the same questions right after.
    vectors = question_vectors(store, encoder, firsts)
    kept_rows: list[int] = []  # positions in `ranked` of the entries that stay entries
    kept_vectors = np.zeros((len(ranked), vectors.shape[1]), dtype=np.float32)
    into: dict[int, tuple[int, float]] = {}
    for position, vector in enumerate(vectors):
        if kept_rows:
            similarities = kept_vectors[: len(kept_rows)] @ vector
            best = int(np.argmax(similarities))
            if similarities[best] >= threshold:
                into[ranked[position]] = (ranked[kept_rows[best]], float(similarities[best]))
                continue
        kept_vectors[len(kept_rows)] = vector
        kept_rows.append(position)
    variants: dict[int, list[str]] = {}
    for duplicate, (survivor, _) in into.items():
        variants.setdefault(survivor, []).extend(entries[duplicate].questions)
    merged = [
        replace(entry, questions=unique_texts([*entry.questions, *variants.get(i, [])]))
        for i, entry in enumerate(entries)
        if i not in into
    ]
    merges = [
        Merge(entries[duplicate].id, entries[survivor].id, similarity)
        for duplicate, (survivor, similarity) in sorted(into.items())
    ]
    return merged, merges


def merge_into_stored(
    store: KnowledgeBaseStore, encoder: Encoder, entries: list[KBEntry], threshold: float
) -> tuple[list[KBEntry], list[KBEntry], list[Merge]]:
    """Entries not stored yet whose first question is within `threshold` (cosine) of a question
    of a published entry outside the batch become that entry's variants.

    Returns (the entries still to store, the stored entries with their new variants, the merges).
    An entry already in the store is never merged away, and a question merged before is found
    verbatim in its entry next time, so re-importing a source changes nothing. Entries mirrored
    from the project's retrieval intents are left alone: data/nlu.yml owns their questions (the
    intent classifier is trained on them), and a change there writes them back.
    """
    batch_ids = {entry.id for entry in entries}
    targets = [e for e in store.published() if e.id not in batch_ids and not _mirrors_project(e)]
    if not targets:
        return entries, [], []
    owner = np.repeat(np.arange(len(targets)), [len(e.questions) for e in targets])
    known = question_vectors(store, encoder, targets)
    firsts = question_vectors(store, encoder, [replace(e, questions=e.questions[:1]) for e in entries])
    grown = {target.id: target for target in targets}
    merges: list[Merge] = []
    kept: list[KBEntry] = []
    for entry, (row, similarity) in zip(entries, _nearest(firsts, known)):
        target = grown[targets[owner[row]].id]
        if similarity < threshold or store.get(entry.id) is not None:
            kept.append(entry)
            continue
        grown[target.id] = replace(target, questions=unique_texts([*target.questions, *entry.questions]))
        merges.append(Merge(entry.id, target.id, similarity))
    into = {merge.into_id for merge in merges}
    return kept, [grown[target.id] for target in targets if target.id in into], merges


def _nearest(queries: np.ndarray, rows: np.ndarray, chunk: int = 1024) -> list[tuple[int, float]]:
    """For each query vector, the row it is most similar to (dot product) and that similarity;
    in chunks, so a large import never holds the whole similarity matrix."""
    nearest: list[tuple[int, float]] = []
    for start in range(0, len(queries), chunk):
        similarities = queries[start : start + chunk] @ rows.T
        best = similarities.argmax(axis=1)
        nearest += [(int(b), float(similarities[i, b])) for i, b in enumerate(best)]
    return nearest


def _mirrors_project(entry: KBEntry) -> bool:
    # Entries synced from a retrieval intent carry that intent as their id (bot/server/assemble.py).
    return bool(entry.intent) and entry.id == entry.intent


def _redirected(merges: list[Merge], into_stored: list[Merge]) -> list[Merge]:
    """Within-batch merges whose survivor itself went into a stored entry now name that entry."""
    final = {m.duplicate_id: m.into_id for m in into_stored}
    return [replace(m, into_id=final.get(m.into_id, m.into_id)) for m in merges]


def _rank_key(entry: KBEntry) -> tuple[bool, int, str]:
    return (not entry.accepted, -entry.votes, entry.id)


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{count} {name}" for name, count in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0])))
