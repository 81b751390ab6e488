"""Knowledge-base scale: build time, query latency, memory and recall at 10k, 100k and 1M entries.

    python -m benchmarks.kb_scale [--sizes 10000,100000,1000000] [--data ../shared/datasets/banking77]

The entries are synthetic but built from real text and real embeddings. Seeds are the BANKING77
training questions (Casanueva et al. 2020, CC BY 4.0) encoded once with all-MiniLM-L6-v2. Each
entry is a seed question, a third of them tagged with an error code ("... (error E-48213)"), with
a vector perturbed from the seed's (cosine about 0.9 to it, so a million entries are distinct
points in the seeds' real clusters); 30% of entries get a second variant, another question of the
same BANKING77 category. Answers are a sentence about the category. Queries are the BANKING77
test questions with their real embeddings; a third carry the error code of an entry, which is
what the lexical signal is for.

Each size runs in a fresh subprocess, so memory is that size's alone (VmRSS / VmHWM from
/proc/self/status). Measured per size: FaissRetriever build time; single-query search latency
(dense + lexical, top 5, as the bot searches); resident memory once built and the input vectors
dropped, and its peak during the build; the dense recall@10 of the chosen FAISS index against
exact search over the same vectors; the lexical recall@10 of BM25's bounded candidate search
against scoring every document; and the recall@5 of the production search against exhaustive
dense + lexical scoring, i.e. the effect of both shortcuts on what the bot gets.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import RESULTS_DIR, format_table, write_results
from benchmarks.datasets import default_data_dir, load_banking77
from benchmarks.latency import comma_separated_ints, machine_info
from crowddesk.knowledge_base.lexical import LexicalIndex, top_indices
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.types import Candidate, KBEntry

TARGETS_AT_1M = {"query_p99_ms": 5.0, "build_seconds": 600.0, "rss_gb": 3.0}
LEXICAL_WEIGHT = 0.35  # the shipped default (config.yml KnowledgeBaseRetriever.lexical_weight)
TOP_K = 5
SECOND_VARIANT_SHARE = 0.3
CODE_SHARE = 1 / 3
# Perturbation of a seed vector: cosine to the seed is 1 / sqrt(1 + NOISE**2), about 0.9.
NOISE = 0.5
WARMUP_QUERIES = 50


@dataclass(frozen=True)
class Seeds:
    """Real questions with their MiniLM vectors and BANKING77 categories."""

    texts: list[str]
    categories: list[str]
    vectors: np.ndarray
    query_texts: list[str]
    query_vectors: np.ndarray

    def save(self, directory: Path) -> None:
        np.save(directory / "seed_vectors.npy", self.vectors)
        np.save(directory / "query_vectors.npy", self.query_vectors)
        (directory / "seed_texts.json").write_text(json.dumps(
            {"texts": self.texts, "categories": self.categories, "queries": self.query_texts}))

    @classmethod
    def load(cls, directory: Path) -> Seeds:
        texts = json.loads((directory / "seed_texts.json").read_text())
        return cls(texts["texts"], texts["categories"], np.load(directory / "seed_vectors.npy"),
                   texts["queries"], np.load(directory / "query_vectors.npy"))


@dataclass(frozen=True)
class SyntheticKB:
    entries: list[KBEntry]
    seed_of_variant: np.ndarray  # which seed each question variant was made from
    codes: list[str]  # error codes in use, to put into queries


def encode_seeds(data: Path) -> Seeds:
    from crowddesk.nlu.encoders import load_encoder  # torch only in the parent process

    banking = load_banking77(data)
    encoder = load_encoder("all-MiniLM-L6-v2")
    print(f"encoding {len(banking.train)} seed and {len(banking.test)} query questions ...", flush=True)
    return Seeds(
        texts=banking.train.texts,
        categories=banking.train.labels,
        vectors=encoder.encode(banking.train.texts),
        query_texts=banking.test.texts,
        query_vectors=encoder.encode(banking.test.texts),
    )


def synthetic_kb(seeds: Seeds, size: int, rng: np.random.Generator) -> SyntheticKB:
    """`size` entries made from the seeds (see the module docstring); deterministic given `rng`."""
    by_category: dict[str, list[int]] = {}
    for index, category in enumerate(seeds.categories):
        by_category.setdefault(category, []).append(index)
    first = rng.integers(0, len(seeds.texts), size)
    second = rng.random(size) < SECOND_VARIANT_SHARE
    coded = rng.random(size) < CODE_SHARE
    code_numbers = rng.choice(900_000, size=int(coded.sum()), replace=False) + 100_000
    numbers = iter(code_numbers.tolist())

    entries, seed_of_variant, codes = [], [], []
    for i in range(size):
        seed = int(first[i])
        category = seeds.categories[seed]
        question = seeds.texts[seed]
        if coded[i]:
            code = f"E-{next(numbers)}"
            codes.append(code)
            question = f"{question} (error {code})"
        questions, variant_seeds = [question], [seed]
        if second[i]:
            paraphrase = int(rng.choice(by_category[category]))
            questions.append(seeds.texts[paraphrase])
            variant_seeds.append(paraphrase)
        answer = f"{category.replace('_', ' ').capitalize()}: the help centre explains what to do next."
        entries.append(KBEntry(f"kb-{i}", questions, answer))
        seed_of_variant.extend(variant_seeds)
    return SyntheticKB(entries, np.array(seed_of_variant, dtype=np.int64), codes)


def variant_vectors(seeds: Seeds, seed_of_variant: np.ndarray, seed: int) -> np.ndarray:
    """One unit vector per variant near its seed's; the same every time for the same `seed`."""
    rng = np.random.default_rng(seed)
    dimension = seeds.vectors.shape[1]
    vectors = np.empty((len(seed_of_variant), dimension), dtype=np.float32)
    for start in range(0, len(vectors), 100_000):  # chunks keep the float64 noise small
        rows = seed_of_variant[start:start + 100_000]
        noise = rng.standard_normal((len(rows), dimension)) * (NOISE / np.sqrt(dimension))
        chunk = seeds.vectors[rows] + noise
        vectors[start:start + len(rows)] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
    return vectors


def queries(
    seeds: Seeds, kb: SyntheticKB, count: int, rng: np.random.Generator
) -> tuple[list[str], np.ndarray, list[bool]]:
    """Query texts, their vectors, and whether each carries an entry's error code."""
    picked = rng.choice(len(seeds.query_texts), size=min(count, len(seeds.query_texts)), replace=False)
    texts, coded = [], []
    for index in picked.tolist():
        text = seeds.query_texts[index]
        coded.append(bool(kb.codes) and rng.random() < CODE_SHARE)
        if coded[-1]:
            text = f"{text} error {kb.codes[int(rng.integers(len(kb.codes)))]}"
        texts.append(text)
    return texts, seeds.query_vectors[picked], coded


def memory_mb() -> dict[str, float]:
    """Resident memory now and at its peak, from /proc/self/status (MB)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0]) / 1024  # kB
    return {"rss_mb": round(fields["VmRSS"], 1), "peak_rss_mb": round(fields["VmHWM"], 1)}


@dataclass
class Truth:
    """Exhaustive scoring of every entry, per query."""

    dense: list[list[int]] = field(default_factory=list)  # top 10 entries by best cosine
    blended: list[list[int]] = field(default_factory=list)  # top `TOP_K` by the retriever's score
    best_score: list[float] = field(default_factory=list)  # the top blended score
    # BM25 search hits scoring at least the exhaustive 10th best, and min(10, documents > 0).
    lexical_found: list[int] = field(default_factory=list)
    lexical_relevant: list[int] = field(default_factory=list)


def exhaustive_truth(
    vectors: np.ndarray, entry_start: np.ndarray, query_vectors: np.ndarray,
    texts: Sequence[str], lexical: LexicalIndex, lexical_found: Sequence[Sequence[int]],
) -> Truth:
    """Scores every entry for every query. BM25 has many exact ties (entries made from the same
    seed question), so a lexical hit counts when it scores as high as the exhaustive 10th best."""
    truth = Truth()
    for start in range(0, len(query_vectors), 32):
        similarities = query_vectors[start:start + 32] @ vectors.T  # (queries, variants)
        per_entry = np.maximum.reduceat(similarities, entry_start[:-1], axis=1)
        for offset, (dense, text) in enumerate(zip(per_entry, texts[start:start + 32])):
            bm25 = lexical.scores(text)
            blended = (1 - LEXICAL_WEIGHT) * np.clip(dense, 0, 1) + LEXICAL_WEIGHT * bm25
            truth.dense.append(top_indices(dense, 10).tolist())
            truth.blended.append(top_indices(blended, TOP_K).tolist())
            truth.best_score.append(float(blended[truth.blended[-1][0]]))
            best = [float(bm25[d]) for d in top_indices(bm25, 10) if bm25[d] > 0]
            found = lexical_found[start + offset]
            truth.lexical_found.append(sum(1 for d in found if best and bm25[d] >= best[-1] - 1e-9))
            truth.lexical_relevant.append(len(best))
    return truth


def share(hits: Sequence[int], relevant: Sequence[int]) -> float | None:
    return round(sum(hits) / sum(relevant), 4) if sum(relevant) else None


def recall(found: Sequence[Sequence[Any]], exact: Sequence[Sequence[Any]]) -> float:
    hits = sum(len(set(f) & set(e)) for f, e in zip(found, exact))
    return round(hits / sum(len(e) for e in exact), 4)


def measure_size(size: int, seeds: Seeds, query_count: int) -> dict[str, Any]:
    """Everything for one size; meant to run alone in its own process."""
    rng = np.random.default_rng(size)
    kb = synthetic_kb(seeds, size, rng)
    vectors = variant_vectors(seeds, kb.seed_of_variant, seed=size)
    before = memory_mb()
    start = time.perf_counter()
    retriever = FaissRetriever(kb.entries, vectors, lexical_weight=LEXICAL_WEIGHT)
    build_seconds = time.perf_counter() - start
    built = memory_mb()
    vector_mb = vectors.nbytes / 2**20
    del vectors  # the caller's copy; the retriever keeps what it needs
    serving = memory_mb()

    texts, query_vectors, coded = queries(seeds, kb, query_count, rng)
    for text, vector in zip(texts[:WARMUP_QUERIES], query_vectors):
        retriever.search(text, vector, top_k=TOP_K)
    latencies, found = [], []
    for text, vector in zip(texts, query_vectors):
        started = time.perf_counter()
        candidates = retriever.search(text, vector, top_k=TOP_K)
        latencies.append((time.perf_counter() - started) * 1000)
        found.append(candidates)

    # Ground truth: exhaustive scoring over the same data (not timed).
    vectors = variant_vectors(seeds, kb.seed_of_variant, seed=size)
    counts = np.array([len(entry.questions) for entry in kb.entries])
    entry_start = np.concatenate(([0], np.cumsum(counts)))
    lexical = LexicalIndex([e.questions for e in kb.entries], answers=[e.answer for e in kb.entries])
    lexical_found = [[doc for doc, _ in lexical.search(text, 10)] for text in texts]
    truth = exhaustive_truth(vectors, entry_start, query_vectors, texts, lexical, lexical_found)
    # Dense alone through the retriever: an empty text has no lexical signal.
    dense_found = [
        [entry_number(c) for c in hits]
        for hits in retriever.search_many([""] * len(texts), query_vectors, top_k=10)
    ]
    found_ids = [[entry_number(c) for c in hits] for hits in found]
    gaps = [best - hits[0].score for best, hits in zip(truth.best_score, found)]
    with_code = [i for i, flag in enumerate(coded) if flag]
    without_code = [i for i, flag in enumerate(coded) if not flag]
    return {
        "entries": size,
        "question_variants": int(counts.sum()),
        "index_kind": retriever.index_kind,
        "build_seconds": round(build_seconds, 2),
        "query_p50_ms": round(float(np.percentile(latencies, 50)), 3),
        "query_p99_ms": round(float(np.percentile(latencies, 99)), 3),
        "queries": len(texts),
        "queries_with_code": len(with_code),
        "rss_before_build_mb": before["rss_mb"],
        "input_vectors_mb": round(vector_mb, 1),
        "rss_built_mb": built["rss_mb"],
        "rss_serving_mb": serving["rss_mb"],
        "peak_rss_mb": serving["peak_rss_mb"],
        "dense_recall_at_10": recall(dense_found, truth.dense),
        "lexical_recall_at_10": share(truth.lexical_found, truth.lexical_relevant),
        "lexical_recall_at_10_with_code": share(
            [truth.lexical_found[i] for i in with_code], [truth.lexical_relevant[i] for i in with_code]),
        "lexical_recall_at_10_without_code": share(
            [truth.lexical_found[i] for i in without_code],
            [truth.lexical_relevant[i] for i in without_code]),
        "search_recall_at_5": recall(found_ids, truth.blended),
        # The retriever's best candidate against the best of all entries, by the blended score.
        "search_top1_agreement": round(float(np.mean([gap <= 1e-4 for gap in gaps])), 4),
        "search_top1_score_gap_mean": round(float(np.mean(gaps)), 5),
    }


def entry_number(candidate: Candidate) -> int:
    return int(candidate.entry_id.removeprefix("kb-"))


def run_sizes(args: argparse.Namespace, workdir: Path) -> list[dict[str, Any]]:
    encode_seeds(args.data).save(workdir)
    results = []
    for size in args.sizes:
        print(f"{size:,} entries ...", flush=True)
        child = subprocess.run(
            [sys.executable, "-m", "benchmarks.kb_scale", "--child", str(size),
             "--workdir", str(workdir), "--queries", str(args.queries)],
            stdout=subprocess.PIPE, text=True,
        )
        if child.returncode != 0:
            raise RuntimeError(f"the {size:,}-entry run failed (exit {child.returncode})")
        results.append(json.loads(child.stdout.strip().splitlines()[-1]))
    return results


def print_table(rows: Sequence[dict[str, Any]]) -> None:
    print(format_table(
        ["entries", "variants", "index", "build s", "p50 ms", "p99 ms", "RSS MB", "peak MB",
         "dense R@10", "BM25 R@10", "search R@5"],
        [[f"{r['entries']:,}", f"{r['question_variants']:,}", r["index_kind"],
          f"{r['build_seconds']:.1f}", f"{r['query_p50_ms']:.2f}", f"{r['query_p99_ms']:.2f}",
          f"{r['rss_serving_mb']:.0f}", f"{r['peak_rss_mb']:.0f}", f"{r['dense_recall_at_10']:.3f}",
          f"{r['lexical_recall_at_10']:.3f}", f"{r['search_recall_at_5']:.3f}"] for r in rows],
    ))


def targets_met(rows: Sequence[dict[str, Any]]) -> dict[str, bool] | None:
    at = next((r for r in rows if r["entries"] == 1_000_000), None)
    if at is None:
        return None
    return {
        "query_p99_ms": at["query_p99_ms"] <= TARGETS_AT_1M["query_p99_ms"],
        "build_seconds": at["build_seconds"] <= TARGETS_AT_1M["build_seconds"],
        "rss_gb": at["rss_serving_mb"] / 1024 <= TARGETS_AT_1M["rss_gb"],
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=comma_separated_ints, default=[10_000, 100_000, 1_000_000],
                        help="numbers of entries (default 10000,100000,1000000)")
    parser.add_argument("--data", type=Path, default=default_data_dir("banking77"),
                        help="BANKING77 folder; default ../shared/datasets/banking77")
    parser.add_argument("--queries", type=int, default=1000, help="timed queries per size (default 1000)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "kb_scale.json",
                        help="JSON results file")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)  # one size, in a subprocess
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.child is not None:
        print(json.dumps(measure_size(args.child, Seeds.load(args.workdir), args.queries)))
        return 0
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="crowddesk-kb-scale-") as workdir:
        rows = run_sizes(args, Path(workdir))
    print_table(rows)
    met = targets_met(rows)
    if met is not None:
        print(f"targets at 1M (query p99 <= 5 ms, build <= 10 min, RSS <= 3 GB): {met}")
    results = {
        "benchmark": "kb_scale",
        "machine": machine_info(),
        "settings": {
            "seeds": "BANKING77 train questions, all-MiniLM-L6-v2 vectors perturbed to cosine ~0.9",
            "queries": "BANKING77 test questions (real vectors), a third with an entry's error code",
            "lexical_weight": LEXICAL_WEIGHT,
            "top_k": TOP_K,
        },
        "targets_at_1m": TARGETS_AT_1M,
        "sizes": rows,
        "targets_met": met,
        "total_seconds": round(time.perf_counter() - started, 1),
    }
    print(f"wrote {write_results('kb_scale', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
