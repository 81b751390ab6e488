"""`crowddesk evaluate kb`: how well the knowledge base retrieves the right entry for a question.

The knowledge base is the project's as the bot serves it: its retrieval intents mirrored into
the database plus every other published entry there. With a trained model, confidences are the
model's calibrated "probability the top entry is right" and its answer threshold gives the
operating point; without one, the curve is over raw retriever scores and has no chosen point.

Open-set mode (`unseen`, from `--unseen-entries`): some entries the test queries point at are
left out of every query's ranking, as if nobody had written them, and their queries become
"should be handed off" examples (see bot/evaluation/open_set.py, which does the same with intents). It
needs a trained model: without an answer threshold nothing is ever handed off.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine as SqlEngine

from crowddesk.bot.dialogue.policy import RetrieverCalibration
from crowddesk.bot.evaluation.data import KBQuery
from crowddesk.bot.evaluation.metrics import answer_curve, answered_point, percent, rounded
from crowddesk.bot.evaluation.open_set import OpenSetScores, summary_rows
from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.yaml_files import ProjectFileError, split_source
from crowddesk.bot.server.assemble import STATE_DIR, index_dir_for, knowledge_base_for, sync_project_faq
from crowddesk.bot.training.model import TrainedModel
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.segments import SegmentedRetriever
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.nlu.encoders import Encoder

RECALL_DEPTHS = (1, 3, 5)
MRR_DEPTH = 10
SHOWN_MISSES = 50

DEFINITIONS = {
    "recall@k": "share of queries whose right entry is among the k entries ranked first",
    "mrr": "mean over queries of 1 / rank of the right entry (0 when it is not in the top mrr_depth)",
    "confidence": "the model's calibrated probability that the top entry is right (isotonic fit on "
    "leave-one-out retrieval at training time), or the raw retriever score without a model",
    "answered": "the top entry's confidence is >= the model's answer threshold",
    "operating_point.answered_share": "answered queries / all queries",
    "operating_point.answer_precision": "answered queries whose top entry is right / answered queries",
    "curve": "answered share and precision at every distinct confidence",
    "entries": "published entries ranked (in open-set mode, without the unseen ones)",
}
OPEN_SET_DEFINITIONS = {
    "open_set.unseen_entries": "entries treated as absent (chosen with the seed among those the test "
    "queries point at): left out of every query's ranking; their queries "
    "should be handed off",
    "open_set.claimed_precision": "answer precision the trained model promised at its answer threshold "
    "(expected_precision of its training report: held-out folds, intents "
    "and FAQ entries together)",
    "open_set.realised_precision": "answered queries whose top entry is right / answered queries, "
    "unseen-entry queries included (always wrong if answered)",
    "open_set.unseen_handed_off": "queries of unseen entries that were handed off / all of them",
    "open_set.in_scope_answered_correctly": "queries of the other entries answered with their entry / all of them",
    "open_set.curve_without_unseen": "the automation/precision curve on the queries of the other entries "
    "only: what the bot would look like if every question had its entry",
}


@dataclass(frozen=True)
class Calibration:
    """The trained model's view of retrieval scores: confidence map, answer threshold, and the
    answer precision training promised at that threshold."""

    confidence: RetrieverCalibration
    answer_threshold: float
    expected_precision: float

    @classmethod
    def of(cls, model: TrainedModel) -> Calibration:
        metadata = model.metadata
        return cls(metadata.retriever_calibration, metadata.thresholds.answer, metadata.report.expected_precision)


def project_knowledge_base(project: Project, database: SqlEngine, encoder: Encoder) -> KnowledgeBase:
    """The knowledge base as `crowddesk run` serves it (retrieval intents synced in first)."""
    store = KnowledgeBaseStore(database)
    sync_project_faq(project, store)
    return knowledge_base_for(project, store, encoder, index_dir_for(project.root / STATE_DIR, database))


def evaluate_kb(
    retriever: FaissRetriever | SegmentedRetriever,
    encoder: Encoder,
    queries: Sequence[KBQuery],
    calibration: Calibration | None,
    *,
    unseen: frozenset[str] = frozenset(),
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    """The report; `unseen` entries are left out of every ranking (open-set mode, needs `calibration`)."""
    if unseen and calibration is None:
        raise ValueError(
            "unseen entries need a trained model: without its answer threshold no query is ever handed off"
        )
    for query in queries:
        try:
            retriever.entry(query.entry_id)
        except KeyError:
            path, line = split_source(query.source)
            raise ProjectFileError(
                Path(path),
                line,
                "entry_id",
                f"{query.entry_id!r} is not a published entry of the knowledge base ({len(retriever)} entries)",
            ) from None
    entries = len(retriever) - len(unseen)
    progress(f"Retrieving the top {MRR_DEPTH} entries for {len(queries)} queries from {entries} entries")
    texts = [query.query for query in queries]
    found = retriever.search_many(texts, encoder.encode(texts), top_k=MRR_DEPTH, absent_entries=unseen)
    ranks = [_rank(query.entry_id, [c.entry_id for c in candidates]) for query, candidates in zip(queries, found)]
    scores = np.array([candidates[0].score if candidates else 0.0 for candidates in found])
    confidences = np.array([calibration.confidence(s) for s in scores]) if calibration else scores
    top_right = np.array([rank == 1 for rank in ranks], dtype=bool)
    operating_point, open_set = None, None
    answered: list[bool | None] = [None] * len(queries)
    if calibration is not None:
        is_answered = confidences >= calibration.answer_threshold
        operating_point = {"threshold": rounded(calibration.answer_threshold), **answered_point(is_answered, top_right)}
        answered = is_answered.tolist()
        if unseen:
            is_unseen = np.array([query.entry_id in unseen for query in queries], dtype=bool)
            open_set = _open_set(unseen, is_unseen, calibration.expected_precision, confidences, is_answered, top_right)
    results = [
        {
            "source": query.source,
            "query": query.query,
            "entry_id": query.entry_id,
            "rank": rank,
            "confidence": rounded(confidence),
            "answered": answer,
            "top": [c.entry_id for c in candidates[:5]],
        }
        for query, rank, confidence, answer, candidates in zip(queries, ranks, confidences, answered, found)
    ]
    report: dict[str, Any] = {
        "queries": len(queries),
        "entries": entries,
        **{f"recall@{k}": rounded(float(np.mean([r is not None and r <= k for r in ranks]))) for k in RECALL_DEPTHS},
        "recall_depths": list(RECALL_DEPTHS),
        "mrr": rounded(float(np.mean([1 / r if r is not None else 0.0 for r in ranks]))),
        "mrr_depth": MRR_DEPTH,
        "confidence": "calibrated (trained model)" if calibration else "raw retriever score (no trained model)",
        "operating_point": operating_point,
        "curve": answer_curve(confidences, top_right, len(queries)),
        "misses": [result for result in results if result["rank"] != 1][:SHOWN_MISSES],
        "results": results,
        "definitions": DEFINITIONS,
    }
    if open_set is not None:
        report["open_set"] = open_set
        report["definitions"] = {**DEFINITIONS, **OPEN_SET_DEFINITIONS}
    return report


def _open_set(
    unseen: frozenset[str],
    is_unseen: np.ndarray,
    claimed_precision: float,
    confidences: np.ndarray,
    answered: np.ndarray,
    top_right: np.ndarray,
) -> dict[str, Any]:
    """The open-set block; per query: label is an unseen entry, confidence, answered, top entry right."""
    return {
        "unseen_entries": sorted(unseen),
        "unseen_support": int(is_unseen.sum()),
        **OpenSetScores.of(
            correct=top_right,
            answered=answered,
            unseen=is_unseen,
            in_scope=~is_unseen,
            claimed_precision=claimed_precision,
        ).as_dict(),
        "curve_without_unseen": answer_curve(confidences[~is_unseen], top_right[~is_unseen], int((~is_unseen).sum())),
    }


def _rank(entry_id: str, ranked: list[str]) -> int | None:
    return ranked.index(entry_id) + 1 if entry_id in ranked else None


def summary_lines(report: dict[str, Any]) -> list[str]:
    rows = [(f"recall@{k}", percent(report[f"recall@{k}"])) for k in report["recall_depths"]]
    rows.append((f"MRR (top {report['mrr_depth']})", f"{report['mrr']:.3f}"))
    point = report["operating_point"]
    if point is not None:
        rows += [
            ("answer threshold", f"{point['threshold']:.3f} (from the trained model)"),
            ("answered automatically", percent(point["answered_share"])),
            ("answer precision", percent(point["answer_precision"])),
        ]
    if report.get("open_set") is not None:
        rows += summary_rows(report["open_set"], "entries")
    width = max(len(name) for name, _ in rows)
    title = (
        f"KB evaluation: {report['queries']} queries, {report['entries']} entries, confidence: {report['confidence']}"
    )
    return [title, *(f"  {n:<{width}}  {v}" for n, v in rows)]
