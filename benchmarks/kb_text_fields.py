"""Indexing an entry's answer and thread body: does it raise retrieval recall@1?

    python -m benchmarks.kb_text_fields [--seeds 3] [--out FILE]

Queries: the BANKING77 test set (Casanueva et al. 2020, CC BY 4.0), each one's right entry the
one whose intent is `faq/<category>`; test texts equal to a knowledge-base question are dropped.
Knowledge bases:
- demo: the entries the demo bot serves (`crowddesk.bot.project.wiring.faq_entries`: 77 topics, 26
  question variants each, a written answer, no context);
- threads, as a community import makes them: per topic one entry whose only question is a
  BANKING77 training question (not a demo variant) and whose context is a body of other text:
  "on-topic" 3 more training questions of the topic, "noisy" 1 of them and 2 in-scope CLINC150
  sentences (Larson et al. 2019, CC BY 3.0) of other domains, "long" 2 and 6; the answer is the
  demo's;
- mixed: half the topics (by seed) as demo entries, the other half as on-topic threads.
Thread knowledge bases are drawn again per seed and their results averaged.

Every variant is scored exhaustively, as FaissRetriever blends them (lexical_weight 0.35, BM25
from LexicalIndex with the answer and context weights given); dense rows for answers or bodies,
which the product does not have, are added here as extra per-entry similarities. The product
retriever's own top 1 is checked against the "today" and "adopted" variants.

Answered-precision trade-off, on the raw top score: "ans@P" is the largest share of queries
answered with precision at least P, over every threshold on the whole test set (so an oracle);
"split 95" picks that threshold for 95 % on a random half of the queries and reports the
realised precision and answered share on the other half (mean of 5 splits).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy_machine_info, write_results
from benchmarks.datasets import default_data_dir, load_banking77, load_clinc150
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.wiring import faq_entries
from crowddesk.knowledge_base.lexical import CONTEXT_WEIGHT, LexicalIndex
from crowddesk.knowledge_base.retriever import FaissRetriever, normalise_question
from crowddesk.knowledge_base.segments import ANSWER_WEIGHT
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.nlu.calibration import OperatingPoint, precision_curve

REPO_ROOT = Path(__file__).resolve().parent.parent
LEXICAL_WEIGHT = 0.35  # the shipped default (config.yml KnowledgeBaseRetriever.lexical_weight)
SPLITS = 5
# Thread bodies: (questions of the topic besides the title, sentences of other domains).
BODIES = {"on-topic": (3, 0), "noisy": (1, 2), "long": (2, 6)}


@dataclass(frozen=True)
class Variant:
    """How an entry is indexed: BM25 weights of its answer and context words, and dense rows for
    them (None: no row; else the scale of that row's similarity in max(question, scale * row))."""

    answer_weight: float = ANSWER_WEIGHT
    context_weight: float = 0.0
    answer_row: float | None = None
    context_row: float | None = None
    # Instead of a row: (1 - answer_mix) * question similarity + answer_mix * answer similarity.
    answer_mix: float = 0.0


TODAY = Variant()
ADOPTED = Variant(context_weight=CONTEXT_WEIGHT)
VARIANTS = {
    "a: today (questions; answer words in BM25 at 0.25)": TODAY,
    "a: answer out of BM25": Variant(answer_weight=0.0),
    "a: answer in BM25 at 1.0": Variant(answer_weight=1.0),
    "b: + answer dense row, max(q, a)": Variant(answer_row=1.0),
    "d: max(q, 0.9 a)": Variant(answer_row=0.9),
    "d: max(q, 0.8 a)": Variant(answer_row=0.8),
    "d: 0.8 q + 0.2 a": Variant(answer_mix=0.2),
    "d: q + 0.01 a (tie-breaker)": Variant(answer_mix=0.01 / 1.01),
    "c: context in BM25 at 0.25": Variant(context_weight=0.25),
    "c: context in BM25 at 0.5 (adopted)": ADOPTED,
    "c: context in BM25 at 1.0": Variant(context_weight=1.0),
    "c: + context dense row, max(q, c)": Variant(context_row=1.0),
    "c: context dense row + BM25 at 0.5": Variant(context_weight=0.5, context_row=1.0),
    "b+c: answer and context rows + BM25 context 0.5": Variant(context_weight=0.5, answer_row=1.0, context_row=1.0),
}


@dataclass(frozen=True)
class Queries:
    texts: list[str]
    vectors: np.ndarray
    topics: list[str]


class Scorer:
    """Exhaustive blended scores of every entry of one knowledge base for every query."""

    def __init__(self, entries: list[KBEntry], encode: Callable[[list[str]], np.ndarray], queries: Queries) -> None:
        self.entries, self.queries = entries, queries
        self.question_vectors = encode([q for e in entries for q in e.questions])
        starts = np.cumsum([0] + [len(e.questions) for e in entries])[:-1]
        self.question = np.maximum.reduceat(queries.vectors @ self.question_vectors.T, starts, axis=1)
        self.answer = queries.vectors @ encode([e.answer for e in entries]).T
        with_context = [i for i, e in enumerate(entries) if e.context]
        context = np.zeros((len(entries), queries.vectors.shape[1]), dtype=np.float32)
        if with_context:
            context[with_context] = encode([entries[i].context for i in with_context])
        self.context = queries.vectors @ context.T  # 0 for an entry without context
        self._lexical: dict[tuple[float, float], np.ndarray] = {}

    def scores(self, variant: Variant) -> np.ndarray:
        dense = (1 - variant.answer_mix) * self.question + variant.answer_mix * self.answer
        if variant.answer_row is not None:
            dense = np.maximum(dense, variant.answer_row * self.answer)
        if variant.context_row is not None:
            dense = np.maximum(dense, variant.context_row * self.context)
        lexical = self.lexical(variant.answer_weight, variant.context_weight)
        return (1 - LEXICAL_WEIGHT) * np.clip(dense, 0, 1) + LEXICAL_WEIGHT * lexical  # no entry has a prior

    def lexical(self, answer_weight: float, context_weight: float) -> np.ndarray:
        key = (answer_weight, context_weight)
        if key not in self._lexical:
            index = LexicalIndex(
                [e.questions for e in self.entries],
                answers=[e.answer for e in self.entries],
                answer_weight=answer_weight,
                contexts=[e.context for e in self.entries],
                context_weight=context_weight,
            )
            every = np.arange(len(self.entries))
            self._lexical[key] = np.stack([index.score_documents(t, every) for t in self.queries.texts])
        return self._lexical[key]

    def product_agrees(self, variant: Variant) -> float:
        """Share of queries whose top entry FaissRetriever (with the variant's BM25 weights) and
        the exhaustive scores agree on."""
        retriever = FaissRetriever(
            self.entries,
            self.question_vectors,
            lexical_weight=LEXICAL_WEIGHT,
            answer_weight=variant.answer_weight,
            context_weight=variant.context_weight,
        )
        found = retriever.search_many(self.queries.texts, self.queries.vectors, top_k=1)
        best = np.argmax(self.scores(variant), axis=1)
        return float(np.mean([c[0].entry_id == self.entries[b].id for c, b in zip(found, best)]))


def loosest_point(top: np.ndarray, right: np.ndarray, target: float) -> OperatingPoint | None:
    """The operating point answering the most queries with precision >= `target` (None: none does)."""
    reaching = [point for point in precision_curve(top, right) if point.precision >= target]
    return reaching[-1] if reaching else None


def metrics(scores: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    order = np.argsort(-scores, axis=1, kind="stable")
    rank = np.argmax(order == truth[:, None], axis=1) + 1
    right = rank == 1
    top = scores[np.arange(len(scores)), order[:, 0]]
    result = {
        "recall@1": float(right.mean()),
        "recall@3": float(np.mean(rank <= 3)),
        "mrr@10": float(np.mean(np.where(rank <= 10, 1 / rank, 0.0))),
    }
    for target in (90, 95):
        point = loosest_point(top, right, target / 100)
        result[f"answered@{target}"] = point.answered_share if point else 0.0
    precisions, shares = [], []
    for split in range(SPLITS):
        order = np.random.default_rng(split).permutation(len(top))
        chosen, held_out = order[: len(top) // 2], order[len(top) // 2 :]
        point = loosest_point(top[chosen], right[chosen], 0.95)
        answered = top[held_out] >= (point.threshold if point else np.inf)
        precisions.append(float(right[held_out][answered].mean()) if answered.any() else 1.0)
        shares.append(float(answered.mean()))
    result["split95_precision"], result["split95_answered"] = float(np.mean(precisions)), float(np.mean(shares))
    return result


def thread(
    entry: KBEntry, rng: np.random.Generator, body: str, training: dict[str, list[str]], chatter: list[str]
) -> KBEntry:
    """`entry`'s topic as a community thread: a training question as title, a body, its answer."""
    on_topic, off_topic = BODIES[body]
    picked = rng.choice(len(training[entry.id]), size=1 + on_topic, replace=False)
    title, *sentences = [training[entry.id][i] for i in picked]
    sentences += [chatter[i] for i in rng.choice(len(chatter), size=off_topic, replace=False)]
    rng.shuffle(sentences)
    return replace(entry, questions=[title], context=" ".join(sentences))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=default_data_dir("banking77"))
    parser.add_argument("--clinc-data", type=Path, default=default_data_dir("clinc150"))
    parser.add_argument("--seeds", type=int, default=3, help="thread knowledge bases drawn per setting (default 3)")
    parser.add_argument(
        "--out", type=Path, default=None, help="result JSON (default benchmarks/results/kb_text_fields.json)"
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from crowddesk.nlu.encoders import load_encoder  # torch only when run

    machine = accuracy_machine_info()
    project = load_project(REPO_ROOT)
    demo = faq_entries(project)
    known = {normalise_question(q) for e in demo for q in e.questions}
    banking, clinc = load_banking77(args.data), load_clinc150(args.clinc_data)
    training: dict[str, list[str]] = {}  # by entry id: a demo entry's id is its intent, faq/<topic>
    for text, label in zip(banking.train.texts, banking.train.labels):
        if normalise_question(text) not in known:
            training.setdefault(f"faq/{label}", []).append(" ".join(text.split()))
    chatter = [" ".join(t.split()) for t, label in zip(clinc.train.texts, clinc.train.labels) if label != "oos"]
    kept = [
        (t, f"faq/{label}")
        for t, label in zip(banking.test.texts, banking.test.labels)
        if normalise_question(t) not in known
    ]
    encoder = load_encoder(project.config.encoder.model)
    print(f"encoding {len(kept):,} test queries ...", flush=True)
    queries = Queries([t for t, _ in kept], encoder.encode([t for t, _ in kept]), [topic for _, topic in kept])

    settings: dict[str, list[list[KBEntry]]] = {"demo": [demo]}
    for body in BODIES:
        settings[f"threads, {body}"] = [
            [thread(e, np.random.default_rng(seed), body, training, chatter) for e in demo]
            for seed in range(args.seeds)
        ]
    settings["mixed"] = []
    for seed in range(args.seeds):
        rng = np.random.default_rng(seed)
        as_threads = set(rng.permutation(len(demo))[: len(demo) // 2].tolist())
        settings["mixed"].append(
            [thread(e, rng, "on-topic", training, chatter) if i in as_threads else e for i, e in enumerate(demo)]
        )

    results: dict[str, Any] = {}
    rows = []
    for setting, knowledge_bases in settings.items():
        print(f"scoring {setting} ({len(knowledge_bases)} knowledge base(s)) ...", flush=True)
        per_kb, agreement = [], []
        for entries in knowledge_bases:
            scorer = Scorer(entries, encoder.encode, queries)
            position = {e.id: i for i, e in enumerate(entries)}
            truth = np.array([position[topic] for topic in queries.topics])
            per_kb.append({name: metrics(scorer.scores(v), truth) for name, v in VARIANTS.items()})
            agreement.append(min(scorer.product_agrees(TODAY), scorer.product_agrees(ADOPTED)))
        mean = {
            name: {key: float(np.mean([kb[name][key] for kb in per_kb])) for key in per_kb[0][name]}
            for name in VARIANTS
        }
        results[setting] = {
            "knowledge_bases": len(knowledge_bases),
            "entries": len(knowledge_bases[0]),
            "product_retriever_top1_agreement": min(agreement),
            "variants": mean,
        }
        for name, m in mean.items():
            rows.append(
                [
                    setting,
                    name,
                    *(f"{100 * m[k]:.1f}" for k in ("recall@1", "recall@3")),
                    f"{m['mrr@10']:.3f}",
                    *(f"{100 * m[k]:.1f}" for k in ("answered@90", "answered@95")),
                    f"{100 * m['split95_precision']:.1f} / {100 * m['split95_answered']:.1f}",
                ]
            )
    payload = {
        "benchmark": "kb_text_fields",
        "machine": machine,
        "queries": len(queries.texts),
        "lexical_weight": LEXICAL_WEIGHT,
        "seeds": args.seeds,
        "bodies": BODIES,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "results": results,
    }
    columns = ["knowledge base", "variant", "R@1", "R@3", "MRR", "ans@90", "ans@95", "split 95: prec / ans"]
    print(format_table(columns, rows))
    print(f"wrote {write_results('kb_text_fields', payload, args.out)}")


if __name__ == "__main__":
    main()
