"""`crowddesk evaluate kb`: how well the knowledge base retrieves the right entry for a question.

The knowledge base is the project's as the bot serves it: its retrieval intents mirrored into
the database plus every other published entry there. With a trained model, confidences are the
model's calibrated "probability the top entry is right" and its answer threshold gives the
operating point; without one, the curve is over raw retriever scores and has no chosen point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sqlalchemy import Engine as SqlEngine

from crowddesk.bot.assemble import sync_project_faq
from crowddesk.bot.eval_data import KBQuery
from crowddesk.bot.evaluation import answer_curve, answered_point, percent, rounded
from crowddesk.bot.model import TrainedModel
from crowddesk.bot.policy import RetrieverCalibration
from crowddesk.bot.project import Project
from crowddesk.bot.yaml_files import ProjectFileError, split_source
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
}


@dataclass(frozen=True)
class Calibration:
    """The trained model's view of retrieval scores: confidence map and answer threshold."""

    confidence: RetrieverCalibration
    answer_threshold: float

    @classmethod
    def of(cls, model: TrainedModel) -> Calibration:
        return cls(model.metadata.retriever_calibration, model.metadata.thresholds.answer)


def project_knowledge_base(project: Project, database: SqlEngine, encoder: Encoder) -> KnowledgeBase:
    """The knowledge base as `crowddesk run` serves it (retrieval intents synced in first)."""
    store = KnowledgeBaseStore(database)
    sync_project_faq(project, store)
    settings = project.config.retriever
    return KnowledgeBase(
        store, encoder, lexical_weight=settings.lexical_weight, top_k=settings.top_k,
        index=settings.index_settings(), index_dir=project.root / ".crowddesk" / "index",
    )


def evaluate_kb(
    retriever: FaissRetriever | SegmentedRetriever,
    encoder: Encoder,
    queries: Sequence[KBQuery],
    calibration: Calibration | None,
    *,
    progress: Callable[[str], None] = lambda _: None,
) -> dict[str, Any]:
    for query in queries:
        try:
            retriever.entry(query.entry_id)
        except KeyError:
            path, line = split_source(query.source)
            raise ProjectFileError(
                Path(path), line, "entry_id",
                f"{query.entry_id!r} is not a published entry of the knowledge base ({len(retriever)} entries)",
            ) from None
    progress(f"Retrieving the top {MRR_DEPTH} entries for {len(queries)} queries from {len(retriever)} entries")
    texts = [query.query for query in queries]
    found = retriever.search_many(texts, encoder.encode(texts), top_k=MRR_DEPTH)
    ranks = [_rank(query.entry_id, [c.entry_id for c in candidates]) for query, candidates in zip(queries, found)]
    scores = np.array([candidates[0].score if candidates else 0.0 for candidates in found])
    confidences = np.array([calibration.confidence(s) for s in scores]) if calibration else scores
    top_right = np.array([rank == 1 for rank in ranks], dtype=bool)
    operating_point = None
    if calibration is not None:
        operating_point = {"threshold": rounded(calibration.answer_threshold),
                           **answered_point(confidences >= calibration.answer_threshold, top_right)}
    results = [
        {"source": query.source, "query": query.query, "entry_id": query.entry_id, "rank": rank,
         "confidence": rounded(confidence), "top": [c.entry_id for c in candidates[:5]]}
        for query, rank, confidence, candidates in zip(queries, ranks, confidences, found)
    ]
    return {
        "queries": len(queries),
        "entries": len(retriever),
        **{f"recall@{k}": rounded(np.mean([r is not None and r <= k for r in ranks])) for k in RECALL_DEPTHS},
        "recall_depths": list(RECALL_DEPTHS),
        "mrr": rounded(np.mean([1 / r if r is not None else 0.0 for r in ranks])),
        "mrr_depth": MRR_DEPTH,
        "confidence": "calibrated (trained model)" if calibration else "raw retriever score (no trained model)",
        "operating_point": operating_point,
        "curve": answer_curve(confidences, top_right, len(queries)),
        "misses": [result for result in results if result["rank"] != 1][:SHOWN_MISSES],
        "results": results,
        "definitions": DEFINITIONS,
    }


def _rank(entry_id: str, ranked: list[str]) -> int | None:
    return ranked.index(entry_id) + 1 if entry_id in ranked else None


def summary_lines(report: dict[str, Any]) -> list[str]:
    rows = [(f"recall@{k}", percent(report[f"recall@{k}"])) for k in report["recall_depths"]]
    rows.append((f"MRR (top {report['mrr_depth']})", f"{report['mrr']:.3f}"))
    point = report["operating_point"]
    if point is not None:
        rows += [("answer threshold", f"{point['threshold']:.3f} (from the trained model)"),
                 ("answered automatically", percent(point["answered_share"])),
                 ("answer precision", percent(point["answer_precision"]))]
    width = max(len(name) for name, _ in rows)
    return [f"KB evaluation: {report['queries']} queries, {report['entries']} entries, "
            f"confidence: {report['confidence']}", *(f"  {n:<{width}}  {v}" for n, v in rows)]
