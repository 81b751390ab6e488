"""`crowddesk evaluate kb` on a four-topic fixture knowledge base plus one entry added by hand, in
closed-set and open-set mode (entries treated as absent)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.dialogue.policy import RetrieverCalibration
from crowddesk.bot.evaluation.data import KBQuery
from crowddesk.bot.evaluation.kb import MRR_DEPTH, Calibration, evaluate_kb, project_knowledge_base
from crowddesk.bot.evaluation.open_set import held_out
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.assemble import open_database
from crowddesk.bot.training.model import TrainedModel, latest_model_dir
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.nlu.encoders import Encoder

FIXTURE_PROJECT = Path(__file__).parent / "fixtures" / "evaluate" / "kb_project"
CARD_FEES = KBEntry(
    id="manual:card-fees",
    questions=["Is there a monthly fee for the debit card?"],
    answer="No, the debit card is free.",
)
# Each query is an entry's own question, so that entry ranks first. Labelled with that entry it
# is found at rank 1; labelled with the other topic of its pair, at rank 2.
QUERIES_CSV = """query,entry_id
How do I reset my PIN?,faq/reset_pin
What are your branch opening hours?,faq/opening_hours
Is there a monthly fee for the debit card?,manual:card-fees
How do I reset my PIN?,faq/unblock_pin
What are your branch opening hours?,faq/branch_locations
"""


def queries() -> list[KBQuery]:
    rows = [line.rsplit(",", 1) for line in QUERIES_CSV.splitlines()[1:]]
    return [KBQuery(query, entry_id, f"queries.csv:{n}") for n, (query, entry_id) in enumerate(rows, start=2)]


@pytest.fixture()
def project_dir(tmp_path: Path) -> Path:
    target = tmp_path / "bot"
    shutil.copytree(FIXTURE_PROJECT, target)
    return target


@pytest.fixture()
def retriever(project_dir: Path, minilm_encoder: Encoder) -> FaissRetriever:
    project = load_project(project_dir)
    database = open_database(project, f"sqlite:///{project_dir / 'kb.db'}")
    KnowledgeBaseStore(database).upsert(CARD_FEES)
    try:
        return project_knowledge_base(project, database, minilm_encoder).retriever
    finally:
        database.dispose()


def test_recall_at_k_and_mrr_match_hand_computed_ranks(retriever: FaissRetriever, minilm_encoder: Encoder) -> None:
    report = evaluate_kb(retriever, minilm_encoder, queries(), None)
    assert [r["rank"] for r in report["results"]] == [1, 1, 1, 2, 2]
    assert report["entries"] == 5
    assert report["recall@1"] == pytest.approx(3 / 5)
    assert report["recall@3"] == report["recall@5"] == 1.0
    assert report["mrr"] == pytest.approx((1 + 1 + 1 + 0.5 + 0.5) / 5)
    assert [m["source"] for m in report["misses"]] == ["queries.csv:5", "queries.csv:6"]
    assert report["operating_point"] is None and report["confidence"].startswith("raw")


def test_calibrated_confidences_give_the_answered_share_and_precision(
    retriever: FaissRetriever, minilm_encoder: Encoder
) -> None:
    identity = RetrieverCalibration((0.0, 1.0), (0.0, 1.0))
    everything = evaluate_kb(retriever, minilm_encoder, queries(), Calibration(identity, 0.0, 0.9))
    # Every query answered with its top entry, which is right for 3 of the 5.
    assert everything["operating_point"] == {
        "threshold": 0.0,
        "answered": 5,
        "total": 5,
        "answered_share": 1.0,
        "answer_precision": 0.6,
    }
    nothing = evaluate_kb(retriever, minilm_encoder, queries(), Calibration(identity, 1.01, 0.9))
    assert nothing["operating_point"]["answered_share"] == 0.0
    assert nothing["operating_point"]["answer_precision"] == 1.0
    lowest = min(r["confidence"] for r in everything["results"])
    assert everything["curve"][-1] == {
        "threshold": pytest.approx(lowest, abs=1e-4),
        "answered_share": 1.0,
        "answer_precision": 0.6,
    }


def test_unknown_entry_ids_point_at_the_query_line(retriever: FaissRetriever, minilm_encoder: Encoder) -> None:
    typo = [KBQuery("How do I reset my PIN?", "faq/reset_pn", "queries.csv:7")]
    with pytest.raises(ProjectFileError, match=r"queries\.csv:7: entry_id: 'faq/reset_pn' is not a published entry"):
        evaluate_kb(retriever, minilm_encoder, typo, None)


def test_cli_uses_the_trained_models_calibration_and_threshold(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--project", str(project_dir)]) == 0
    model = TrainedModel.load(latest_model_dir(project_dir / "models"))
    queries_file = tmp_path / "queries.csv"
    queries_file.write_text(
        QUERIES_CSV.replace("Is there a monthly fee for the debit card?,manual:card-fees\n", ""), encoding="utf-8"
    )
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "kb",
                "--project",
                str(project_dir),
                "--test",
                str(queries_file),
                "--out",
                str(out),
                "--database-url",
                f"sqlite:///{tmp_path / 'kb.db'}",
            ]
        )
        == 0
    )
    assert "recall@1" in capsys.readouterr().out
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert report["model"] == model.path.name and report["confidence"].startswith("calibrated")
    assert report["operating_point"]["threshold"] == pytest.approx(model.metadata.thresholds.answer, abs=1e-4)
    assert all(0.0 <= r["confidence"] <= 1.0 for r in report["results"])
    assert report["recall@1"] == 0.5 and report["mrr"] == 0.75
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<polyline id="curve"' in html and '<circle id="operating-point"' in html


# --- open set: entries treated as absent -------------------------------------------------------

PARAPHRASES_CSV = """query,entry_id
how can I change my PIN,faq/reset_pin
I'd like a new PIN for my card,faq/reset_pin
my PIN is blocked,faq/unblock_pin
I entered the wrong PIN too many times,faq/unblock_pin
what time do you open,faq/opening_hours
are branches open on Sunday,faq/opening_hours
where is the nearest branch,faq/branch_locations
is there a branch close to me,faq/branch_locations
"""


def paraphrases() -> list[KBQuery]:
    rows = [line.rsplit(",", 1) for line in PARAPHRASES_CSV.splitlines()[1:]]
    return [KBQuery(query, entry_id, f"queries.csv:{n}") for n, (query, entry_id) in enumerate(rows, start=2)]


def test_unseen_entries_are_absent_from_every_ranking_and_their_queries_scored_as_hand_offs(
    retriever: FaissRetriever, minilm_encoder: Encoder
) -> None:
    identity = RetrieverCalibration((0.0, 1.0), (0.0, 1.0))
    closed = evaluate_kb(retriever, minilm_encoder, paraphrases(), Calibration(identity, 0.0, 0.9))
    confidences = sorted(r["confidence"] for r in closed["results"])
    threshold = (confidences[3] + confidences[4]) / 2  # about half answered
    report = evaluate_kb(
        retriever,
        minilm_encoder,
        paraphrases(),
        Calibration(identity, threshold, 0.9),
        unseen=frozenset({"faq/unblock_pin"}),
    )

    open_set, results = report["open_set"], report["results"]
    assert report["entries"] == 4 and open_set["unseen_entries"] == ["faq/unblock_pin"]
    assert not any("faq/unblock_pin" in r["top"] for r in results)
    unseen = [r for r in results if r["entry_id"] == "faq/unblock_pin"]
    others = [r for r in results if r["entry_id"] != "faq/unblock_pin"]
    assert open_set["unseen_support"] == len(unseen) == 2
    assert all(r["rank"] is None for r in unseen)  # never counted right
    assert all(r["answered"] == (r["confidence"] >= threshold) for r in results)
    assert open_set["unseen_handed_off"] == pytest.approx(sum(not r["answered"] for r in unseen) / 2, abs=1e-4)
    assert open_set["in_scope_answered_correctly"] == pytest.approx(
        sum(r["answered"] and r["rank"] == 1 for r in others) / len(others), abs=1e-4
    )
    answered = [r for r in results if r["answered"]]
    assert open_set["answered_share"] == report["operating_point"]["answered_share"] == len(answered) / 8
    assert open_set["realised_precision"] == pytest.approx(
        sum(r["rank"] == 1 for r in answered) / len(answered), abs=1e-4
    )
    assert open_set["claimed_precision"] == 0.9
    assert open_set["curve_without_unseen"][-1]["answered_share"] == 1.0  # over the other queries only
    # Taking an entry away can only lift the others' right entries.
    closed_ranks = {r["query"]: r["rank"] or MRR_DEPTH + 1 for r in closed["results"]}
    assert all((r["rank"] or MRR_DEPTH + 1) <= closed_ranks[r["query"]] for r in others)
    assert set(report["definitions"]) >= {"open_set.unseen_entries", "open_set.unseen_handed_off"}


def test_unseen_entries_need_a_calibration(retriever: FaissRetriever, minilm_encoder: Encoder) -> None:
    with pytest.raises(ValueError, match="need a trained model"):
        evaluate_kb(retriever, minilm_encoder, paraphrases(), None, unseen=frozenset({"faq/unblock_pin"}))


def test_cli_reports_unseen_entries_with_the_models_claim_and_both_curves(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", "--project", str(project_dir)]) == 0
    model = TrainedModel.load(latest_model_dir(project_dir / "models"))
    queries_file = tmp_path / "queries.csv"
    queries_file.write_text(PARAPHRASES_CSV, encoding="utf-8")
    out = tmp_path / "out"
    assert (
        main(
            [
                "evaluate",
                "kb",
                "--project",
                str(project_dir),
                "--test",
                str(queries_file),
                "--out",
                str(out),
                "--database-url",
                f"sqlite:///{tmp_path / 'kb.db'}",
                "--unseen-entries",
                "1",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    report: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    open_set = report["open_set"]
    assert open_set["seed"] == 3
    assert open_set["unseen_entries"] == sorted(held_out([q.entry_id for q in paraphrases()], 1, 3, kind="entries"))
    assert open_set["claimed_precision"] == pytest.approx(model.metadata.report.expected_precision, abs=1e-4)
    assert report["entries"] == 3 and open_set["unseen_support"] == 2
    assert "unseen-entry messages handed off (2)" in printed and "answer precision claimed / realised" in printed
    html = (out / "report.html").read_text(encoding="utf-8")
    assert '<polyline id="curve-without-unseen"' in html and '<polyline id="curve"' in html
    assert "Unseen-entry messages handed off (2)" in html


@pytest.mark.parametrize("count", ["3", "-1"])
def test_cli_refuses_too_many_unseen_entries(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], count: str
) -> None:
    queries_file = tmp_path / "queries.csv"
    queries_file.write_text(PARAPHRASES_CSV, encoding="utf-8")
    code = main(
        [
            "evaluate",
            "kb",
            "--project",
            str(project_dir),
            "--test",
            str(queries_file),
            "--out",
            str(tmp_path / "out"),
            "--unseen-entries",
            count,
        ]
    )
    assert code == 1
    assert (
        f"unseen entries must be between 1 and 2 (the 4 candidate entries less two that stay), got {count}"
        in capsys.readouterr().err
    )
    assert not (tmp_path / "out").exists()


def test_cli_refuses_unseen_entries_without_a_trained_model(
    project_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    queries_file = tmp_path / "queries.csv"
    queries_file.write_text(PARAPHRASES_CSV, encoding="utf-8")
    code = main(
        [
            "evaluate",
            "kb",
            "--project",
            str(project_dir),
            "--test",
            str(queries_file),
            "--out",
            str(tmp_path / "out"),
            "--unseen-entries",
            "1",
        ]
    )
    assert code == 1
    assert "--unseen-entries needs a trained model (run `crowddesk train`)" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
