"""Incremental index updates: applying one published entry vs rebuilding the index, at 100k entries.

    python -m benchmarks.kb_incremental [--size 100000] [--changes 21] [--workdir DIR]

The knowledge base is benchmarks/kb_scale.py's synthetic one (real questions, perturbed real
MiniLM vectors; `--workdir` reuses its encoded seeds), loaded into a fresh SQLite store with its
vectors in the store's embedding cache, so nothing is encoded while timing. Measured, in this
order, wall time and the process's CPU time (FAISS's threads included):
- *full build*: `KnowledgeBase(...)` on an empty index folder (what every publish cost before);
- *apply one change*: a publish, an edit or a retire through the store, then
  `KnowledgeBase.apply_changes()` until the entry is served (or gone), `--changes` times;
- *query*: one search's own thread CPU time with an empty delta and with a delta of
  `compact_after` (1,000) entries, the most it holds before a compaction;
- *compaction*: `KnowledgeBase.compact()` (a full rebuild off to the side, then the swap), and
  how often the full delta's results (top answer; whole top 5 in order) equal the rebuilt index's;
- *restart*: `KnowledgeBase(...)` again on the saved index folder after changes made while
  "down": the saved FAISS index is read back and only those changes are applied.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, insert

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.datasets import default_data_dir
from benchmarks.kb_scale import LEXICAL_WEIGHT, TOP_K, Seeds, encode_seeds, memory_mb, synthetic_kb, variant_vectors
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.server.database import init_schema
from crowddesk.knowledge_base.dense import IndexSettings
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.store import KBEntryRow, KBEntryVersionRow, KBQuestionRow, KnowledgeBaseStore
from crowddesk.knowledge_base.types import Candidate, EntryStatus, KBEntry
from crowddesk.storage.engines import create_engine_for

ENCODER_NAME = "kb-scale-synthetic"
QUERIES = 300
LOAD_BATCH = 5_000


class PreEncoded:
    """An `Encoder` for texts whose vectors are already in the store's cache: encodes nothing."""

    name = ENCODER_NAME

    def __init__(self, dimension: int) -> None:
        self.dimension = dimension

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        raise RuntimeError(f"{len(texts)} texts were not pre-encoded, e.g. {texts[0]!r}")


def load_store(engine: Engine, entries: Sequence[KBEntry], vectors: np.ndarray) -> KnowledgeBaseStore:
    """The entries as published, one version each, with their vectors cached: the rows that
    `KnowledgeBaseStore.upsert` writes, inserted in bulk (upsert one by one takes ~5 ms each)."""
    now = datetime.now(UTC)
    with engine.begin() as connection:
        for start in range(0, len(entries), LOAD_BATCH):
            batch = entries[start : start + LOAD_BATCH]
            connection.execute(
                insert(KBEntryRow.__table__),
                [
                    {
                        "id": e.id,
                        "answer": e.answer,
                        "source_url": "",
                        "tags": [],
                        "language": "en",
                        "status": "published",
                        "intent": None,
                        "created_at": now,
                        "updated_at": now,
                    }
                    for e in batch
                ],
            )
            connection.execute(
                insert(KBQuestionRow.__table__),
                [{"entry_id": e.id, "position": p, "text": q} for e in batch for p, q in enumerate(e.questions)],
            )
            connection.execute(
                insert(KBEntryVersionRow.__table__),
                [
                    {
                        "entry_id": e.id,
                        "version": 1,
                        "status": "published",
                        "content": {"questions": e.questions, "answer": e.answer},
                        "actor": "benchmark",
                        "action": "create",
                        "comment": "",
                        "created_at": now,
                    }
                    for e in batch
                ],
            )
    store = KnowledgeBaseStore(engine)
    texts = [q for entry in entries for q in entry.questions]
    store.store_vectors(ENCODER_NAME, dict(zip(texts, vectors)))
    return store


def timed(action: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, wall seconds, process CPU seconds) of one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = action()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def query_cpu_ms(kb: KnowledgeBase, texts: Sequence[str], vectors: np.ndarray) -> dict[str, float]:
    """p50 / p99 of one search's own thread CPU time (other processes' load does not count)."""
    costs = []
    for text, vector in zip(texts, vectors):
        start = time.thread_time()
        kb.search(text, vector)
        costs.append((time.thread_time() - start) * 1000)
    return {"p50": float(np.percentile(costs, 50)), "p99": float(np.percentile(costs, 99))}


def new_entry(number: int, seeds: Seeds, rng: np.random.Generator) -> tuple[KBEntry, np.ndarray]:
    seed = int(rng.integers(len(seeds.texts)))
    entry = KBEntry(f"new-{number}", [f"{seeds.texts[seed]} (ticket N-{number})"], "Answered by the team.")
    return entry, seeds.vectors[seed]


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    seeds = Seeds.load(workdir)
    if seeds is None or len(seeds.query_texts) < QUERIES:
        seeds = encode_seeds(args.banking77, args.clinc150, QUERIES)
        seeds.save(workdir)
    rng = np.random.default_rng(6)
    kb_data = synthetic_kb(seeds, args.size, rng)
    vectors = variant_vectors(seeds, kb_data.seed_of_variant, seed=7)
    with tempfile.TemporaryDirectory(prefix="crowddesk-kb-incremental-") as scratch:
        engine = create_engine_for(f"sqlite:///{scratch}/kb.db")
        init_schema(engine)
        print(f"loading {args.size:,} entries into the store ...", flush=True)
        store = load_store(engine, kb_data.entries, vectors)
        del vectors
        encoder = PreEncoded(seeds.vectors.shape[1])
        settings = IndexSettings()
        index_dir = Path(scratch) / "index"

        def open_index() -> KnowledgeBase:
            return KnowledgeBase(
                store, encoder, lexical_weight=LEXICAL_WEIGHT, top_k=TOP_K, index=settings, index_dir=index_dir
            )

        print("full build ...", flush=True)
        kb, build_wall, build_cpu = timed(open_index)
        texts, query_vectors = seeds.query_texts[:QUERIES], seeds.query_vectors[:QUERIES]
        query_base = query_cpu_ms(kb, texts, query_vectors)

        print(f"applying {args.changes} changes one at a time ...", flush=True)
        applies = []
        for number in range(args.changes):
            kind = ("publish", "edit", "retire")[number % 3]
            if kind == "publish":
                entry, vector = new_entry(number, seeds, rng)
                store.store_vectors(ENCODER_NAME, {entry.questions[0]: vector})
                store.upsert(entry, actor="benchmark")
            elif kind == "edit":
                target = kb_data.entries[number]
                store.upsert(KBEntry(target.id, target.questions, f"{target.answer} Updated."), actor="benchmark")
            else:
                store.set_status(kb_data.entries[number].id, EntryStatus.RETIRED, actor="benchmark")
            _, wall, cpu = timed(kb.apply_changes)
            applies.append({"change": kind, "wall_ms": wall * 1000, "cpu_ms": cpu * 1000})

        print(f"filling the delta to {settings.compact_after:,} entries ...", flush=True)
        for number in range(args.changes, settings.compact_after):
            entry, vector = new_entry(number, seeds, rng)
            store.store_vectors(ENCODER_NAME, {entry.questions[0]: vector})
            store.upsert(entry, actor="benchmark")
        _, fill_wall, _ = timed(kb.apply_changes)
        _, full_delta_apply_wall, full_delta_apply_cpu = timed(
            lambda: (store.set_status("new-0", EntryStatus.RETIRED), kb.apply_changes())
        )
        query_delta = query_cpu_ms(kb, texts, query_vectors)
        delta_size = kb.changed_since_compaction
        incremental = kb.retriever.search_many(texts, query_vectors, TOP_K)

        print("compaction ...", flush=True)
        _, compact_wall, compact_cpu = timed(kb.compact)
        rebuilt = kb.retriever.search_many(texts, query_vectors, TOP_K)
        for number in range(args.changes):  # made while the server is down
            store.set_status(kb_data.entries[1000 + number].id, EntryStatus.RETIRED, actor="benchmark")
        print("restart ...", flush=True)
        restarted, restart_wall, restart_cpu = timed(open_index)
        assert restarted.changed_since_compaction == args.changes
        engine.dispose()

    return {
        "entries": args.size,
        "question_variants": len(kb_data.seed_of_variant),
        "index_kind": kb.retriever.index_kind,
        "full_build": {"wall_s": build_wall, "cpu_s": build_cpu},
        "apply_one_change": {
            "wall_ms_p50": statistics.median(a["wall_ms"] for a in applies),
            "wall_ms_max": max(a["wall_ms"] for a in applies),
            "cpu_ms_p50": statistics.median(a["cpu_ms"] for a in applies),
            "runs": applies,
        },
        "apply_one_change_with_full_delta": {
            "delta_entries": delta_size,
            "wall_ms": full_delta_apply_wall * 1000,
            "cpu_ms": full_delta_apply_cpu * 1000,
        },
        "fill_delta_wall_s": fill_wall,
        "query_cpu_ms": {"empty_delta": query_base, f"delta_{delta_size}": query_delta},
        "same_as_rebuild": same_results(incremental, rebuilt),
        "compaction": {"wall_s": compact_wall, "cpu_s": compact_cpu},
        "restart_after_changes": {"changes": args.changes, "wall_s": restart_wall, "cpu_s": restart_cpu},
        "memory_mb": memory_mb(),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def same_results(
    incremental: Sequence[Sequence[Candidate]], rebuilt: Sequence[Sequence[Candidate]]
) -> dict[str, float]:
    """Share of queries whose top answer, and whose whole top-k list, the incremental index
    (a full delta) and the rebuilt one agree on."""
    pairs = [([c.entry_id for c in a], [c.entry_id for c in b]) for a, b in zip(incremental, rebuilt)]
    return {
        "top_1": sum(a[:1] == b[:1] for a, b in pairs) / len(pairs),
        f"top_{TOP_K}_in_order": sum(a == b for a, b in pairs) / len(pairs),
    }


def print_table(result: dict[str, Any]) -> None:
    apply = result["apply_one_change"]
    full = result["apply_one_change_with_full_delta"]
    queries = result["query_cpu_ms"]
    rows = [
        [
            "full build (before: every publish)",
            f"{result['full_build']['wall_s']:.1f} s",
            f"{result['full_build']['cpu_s']:.1f} s",
        ],
        [
            "apply one change (p50 of publish/edit/retire)",
            f"{apply['wall_ms_p50']:.0f} ms",
            f"{apply['cpu_ms_p50']:.0f} ms",
        ],
        [
            f"apply one change, delta of {full['delta_entries']:,}",
            f"{full['wall_ms']:.0f} ms",
            f"{full['cpu_ms']:.0f} ms",
        ],
        [
            "compaction (full rebuild off to the side)",
            f"{result['compaction']['wall_s']:.1f} s",
            f"{result['compaction']['cpu_s']:.1f} s",
        ],
        [
            f"restart, {result['restart_after_changes']['changes']} changes while down",
            f"{result['restart_after_changes']['wall_s']:.1f} s",
            f"{result['restart_after_changes']['cpu_s']:.1f} s",
        ],
    ]
    rows += [
        [f"query CPU p50 / p99, {name.replace('_', ' ')}", "", f"{q['p50']:.2f} / {q['p99']:.2f} ms"]
        for name, q in queries.items()
    ]
    rows += [
        [f"same {name.replace('_', ' ')} as the rebuilt index", "", f"{share:.1%} of queries"]
        for name, share in result["same_as_rebuild"].items()
    ]
    print(format_table(["step", "wall", "CPU"], rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=100_000, help="entries (default 100000)")
    parser.add_argument("--changes", type=int, default=21, help="changes applied one at a time (default 21)")
    parser.add_argument("--banking77", type=Path, default=default_data_dir("banking77"))
    parser.add_argument("--clinc150", type=Path, default=default_data_dir("clinc150"))
    parser.add_argument("--workdir", type=Path, help="encoded seeds, shared with benchmarks.kb_scale")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "kb_incremental.json")
    args = parser.parse_args(argv)
    machine = accuracy_machine_info()
    with contextlib.ExitStack() as cleanup:
        workdir = args.workdir or Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="crowddesk-seeds-")))
        workdir.mkdir(parents=True, exist_ok=True)
        result = run(args, workdir)
    print_table(result)
    write_results("kb_incremental", {"benchmark": "kb_incremental", "machine": machine, **result}, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
