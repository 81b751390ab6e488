"""Publishing, editing and retiring reach the live index incrementally, survive a restart, and
rank as a full rebuild would."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine, event

from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.database import init_schema
from crowddesk.knowledge_base.changelog import PENDING_SECONDS, Position
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.dense import IndexSettings
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.lexical import LexicalIndex, LexicalStatistics
from crowddesk.knowledge_base.segments import ANSWER_WEIGHT, lexical_document
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.nlu.encoders import Encoder
from crowddesk.storage.engines import create_engine_for

SUPPORT = [
    KBEntry("login", ["I can't log in to my account", "sign in not working"], "Reset your password."),
    KBEntry("e2210", ["Getting error E-2210 on login", "What does E-2210 mean?"], "Your account is locked."),
    KBEntry("e1043", ["What does code E-1043 mean?"], "Your session expired; sign in again."),
    KBEntry("pin", ["How do I reset my PIN?", "I forgot my PIN"], "Settings > Security > Reset PIN."),
    KBEntry("refund", ["How can I get a refund for a cancelled order?"], "Refunds take 5 days."),
    KBEntry("address", ["How do I change my delivery address?"], "Profile > Address > Edit."),
    KBEntry("card", ["When will my card arrive?", "card delivery time"], "Within 5 working days."),
    KBEntry("close", ["How do I close my account?", "delete my account"], "Write to support."),
    KBEntry("crash", ["The app keeps crashing", "app closes on startup"], "Reinstall the app."),
    KBEntry("fees", ["What are the fees for transfers abroad?"], "1% of the amount, at least 2 EUR."),
]
QUERIES = [
    "getting E-1043 on login",
    "I want my money back for an order I cancelled",
    "forgot pin",
    "my new card hasn't come yet",
    "app crashed after the update",
    "error E-7001 when paying",
    "how much does an international transfer cost",
    "freeze my card",
    "locked out E-2210",
    "can I pay with my phone",
    "close account",
    "change where my parcel goes",
]


def knowledge_base(store: KnowledgeBaseStore, encoder: Encoder, **options: object) -> KnowledgeBase:
    return KnowledgeBase(store, encoder, lexical_weight=0.35, top_k=5, **options)  # type: ignore[arg-type]


def found(kb: KnowledgeBase, encoder: Encoder, query: str) -> list[str]:
    return [c.entry_id for c in kb.search(query, encoder.encode([query])[0])]


@pytest.fixture
def store(db_engine: Engine) -> KnowledgeBaseStore:
    store = KnowledgeBaseStore(db_engine)
    for entry in SUPPORT:
        store.upsert(entry)
    return store


def test_publish_edit_and_retire_apply_without_a_rebuild(store: KnowledgeBaseStore, minilm_encoder: Encoder) -> None:
    kb = knowledge_base(store, minilm_encoder)
    store.upsert(
        KBEntry(
            "wallet",
            ["Can I pay with my phone?", "Apple Pay"],
            "Yes, add the card to your wallet.",
            status=EntryStatus.DRAFT,
        )
    )
    assert kb.apply_changes() is True  # a change, but not one to serve
    assert "wallet" not in found(kb, minilm_encoder, "can I pay with my phone")

    store.set_status("wallet", EntryStatus.PUBLISHED, actor="ed")
    store.upsert(KBEntry("pin", ["How do I change my PIN code?"], "Cards > PIN in the app."), actor="ed")
    store.set_status("crash", EntryStatus.RETIRED, actor="ed")
    assert kb.apply_changes() is True
    assert kb.apply_changes() is False  # nothing new since

    assert found(kb, minilm_encoder, "can I pay with my phone")[0] == "wallet"
    assert "crash" not in found(kb, minilm_encoder, "the app keeps crashing")
    [best] = kb.search("change my PIN code", minilm_encoder.encode(["change my PIN code"])[0])[:1]
    assert (best.entry_id, best.matched_question) == ("pin", "How do I change my PIN code?")
    assert kb.retriever.entry("pin").answer == "Cards > PIN in the app."
    with pytest.raises(KeyError):
        kb.retriever.entry("crash")
    assert len(kb.retriever) == len(SUPPORT)  # one published, one retired
    assert kb.changed_since_compaction == 3  # applied to the delta; the base was not rebuilt


def test_incremental_results_equal_a_full_rebuild(store: KnowledgeBaseStore, minilm_encoder: Encoder) -> None:
    kb = knowledge_base(store, minilm_encoder)
    store.upsert(KBEntry("wallet", ["Can I pay with my phone?"], "Yes, add the card to your wallet."))
    store.upsert(KBEntry("e7001", ["Payment fails with error E-7001"], "The merchant declined; try again."))
    store.upsert(
        KBEntry(
            "card", ["When will my card arrive?", "my card has not come"], "In 5 working days.", votes=40, accepted=True
        )
    )
    store.set_status("address", EntryStatus.RETIRED)
    kb.apply_changes()

    rebuilt = knowledge_base(store, minilm_encoder)

    assert kb.changed_since_compaction == 4 and rebuilt.changed_since_compaction == 0
    vectors = minilm_encoder.encode(QUERIES)
    incremental = kb.retriever.search_many(QUERIES, vectors, top_k=5)
    full = rebuilt.retriever.search_many(QUERIES, vectors, top_k=5)
    assert [[c.entry_id for c in r] for r in incremental] == [[c.entry_id for c in r] for r in full]
    for mine, theirs in zip(incremental, full):  # BM25 statistics differ by the changed entries only
        assert np.allclose([c.score for c in mine], [c.score for c in theirs], atol=0.02)


def test_excluded_entries_are_left_out_of_both_segments(store: KnowledgeBaseStore, minilm_encoder: Encoder) -> None:
    kb = knowledge_base(store, minilm_encoder)
    store.upsert(KBEntry("wallet", ["Can I pay with my phone?"], "Yes, add the card to your wallet."))
    store.upsert(KBEntry("pin", ["How do I change my PIN code?"], "Cards > PIN in the app."))
    assert kb.apply_changes() is True
    retriever, vectors = kb.retriever, minilm_encoder.encode(QUERIES)
    everything = retriever.search_many(QUERIES, vectors, top_k=len(retriever))

    # New (delta only), edited (delta, and a stale copy in the base), untouched (base only).
    for gone in ("wallet", "pin", "refund"):
        for found in (
            retriever.search_many(QUERIES, vectors, top_k=len(retriever), absent_entries={gone}),
            retriever.search_many(QUERIES, vectors, top_k=len(retriever), exclude_entries=[gone] * len(QUERIES)),
        ):
            expected = [[c for c in candidates if c.entry_id != gone] for candidates in everything]
            assert [[c.entry_id for c in candidates] for candidates in found] == [
                [c.entry_id for c in candidates] for candidates in expected
            ]
            assert [c.score for candidates in found for c in candidates] == pytest.approx(
                [c.score for candidates in expected for c in candidates], abs=1e-6
            )
    pay = "can I pay with my phone"
    assert retriever.search(pay, minilm_encoder.encode([pay])[0])[0].entry_id == "wallet"
    assert "wallet" not in [
        c.entry_id for c in retriever.search(pay, minilm_encoder.encode([pay])[0], exclude_entry="wallet")
    ]
    with pytest.raises(KeyError, match="'crash-report'"):
        retriever.search_many(QUERIES, vectors, absent_entries={"crash-report"})


def test_a_restart_reads_the_saved_index_and_applies_what_changed_while_down(
    store: KnowledgeBaseStore,
    minilm_encoder: Encoder,
    tmp_path: Path,
) -> None:
    approximate = IndexSettings(exact_below=10)  # ivf: a FAISS index worth saving
    first = knowledge_base(store, minilm_encoder, index=approximate, index_dir=tmp_path / "index")
    assert first.retriever.index_kind == "ivf"
    store.upsert(KBEntry("wallet", ["Can I pay with my phone?"], "Yes, add the card to your wallet."))
    first.apply_changes()  # applied by the running server: not saved, the change log keeps it
    saved = {path: path.stat().st_mtime_ns for path in (tmp_path / "index").iterdir()}
    # While the server is down:
    store.set_status("crash", EntryStatus.RETIRED)
    store.upsert(KBEntry("fees", ["What are the fees for transfers abroad?"], "Free within the EU."))

    restarted = knowledge_base(store, minilm_encoder, index=approximate, index_dir=tmp_path / "index")

    assert {path: path.stat().st_mtime_ns for path in (tmp_path / "index").iterdir()} == saved  # read, not rebuilt
    assert restarted.changed_since_compaction == 3
    assert found(restarted, minilm_encoder, "pay with my phone")[0] == "wallet"
    assert "crash" not in found(restarted, minilm_encoder, "the app keeps crashing")
    assert restarted.retriever.entry("fees").answer == "Free within the EU."


def test_the_delta_is_compacted_past_the_threshold_while_queries_go_on(
    store: KnowledgeBaseStore,
    minilm_encoder: Encoder,
    tmp_path: Path,
) -> None:
    kb = knowledge_base(store, minilm_encoder, index=IndexSettings(compact_after=2), index_dir=tmp_path / "index")
    live = LiveIndex(kb, check_seconds=0.05)
    store.upsert(KBEntry("wallet", ["Can I pay with my phone?"], "Yes, add the card to your wallet."))
    assert live.refresh_if_changed() and not kb.needs_compaction()
    store.set_status("crash", EntryStatus.RETIRED)
    assert live.refresh_if_changed() and kb.needs_compaction()

    async def serve_until_compacted() -> None:
        async with live.running():
            deadline = time.monotonic() + 120
            while kb.changed_since_compaction and time.monotonic() < deadline:
                assert found(kb, minilm_encoder, "can I pay with my phone")[0] == "wallet"
                await asyncio.sleep(0.05)

    asyncio.run(serve_until_compacted())

    assert kb.changed_since_compaction == 0
    assert found(kb, minilm_encoder, "can I pay with my phone")[0] == "wallet"
    assert "crash" not in found(kb, minilm_encoder, "the app keeps crashing")
    # The compacted base is where a restart starts from: nothing left to apply.
    assert knowledge_base(store, minilm_encoder, index_dir=tmp_path / "index").changed_since_compaction == 0


def products_and_problems() -> list[KBEntry]:
    """A few hundred distinct entries: enough rows for an inverted-file FAISS index."""
    products = [
        "card",
        "app",
        "account",
        "transfer",
        "loan",
        "savings",
        "PIN",
        "statement",
        "cheque",
        "mortgage",
        "insurance",
        "overdraft",
        "wallet",
        "ATM",
        "standing order",
    ]
    problems = [
        "is blocked",
        "shows an error",
        "was charged twice",
        "cannot be found",
        "is too slow",
        "needs a new address",
        "was declined abroad",
        "has a wrong fee",
        "must be cancelled",
        "is missing a payment",
        "stopped working today",
        "needs my passport",
        "was closed by mistake",
        "gives code E-4{:03d}",
        "has a limit that is too low",
        "sends no notifications",
        "wants a new password",
        "was opened by someone else",
        "has the wrong name",
        "is not in the list",
    ]
    return [
        KBEntry(
            f"{p}-{q}".replace(" ", "-"),
            [f"My {product} {problem.format(i)}"],
            f"For a {product} that {problem.format(i)}, see the help centre.",
        )
        for p, product in enumerate(products)
        for q, problem in enumerate(problems)
        for i in [p * 20 + q]
    ]


def test_an_approximate_base_takes_changes_too(db_engine: Engine, minilm_encoder: Encoder) -> None:
    store = KnowledgeBaseStore(db_engine)
    entries = products_and_problems()
    for entry in entries:
        store.upsert(entry)
    kb = knowledge_base(store, minilm_encoder, index=IndexSettings(exact_below=100))
    assert kb.retriever.index_kind == "ivf" and len(kb.retriever) == len(entries) == 300

    store.upsert(KBEntry("crypto", ["Can I buy bitcoin in the app?"], "Not yet."))
    store.set_status(entries[0].id, EntryStatus.RETIRED)
    kb.apply_changes()

    assert found(kb, minilm_encoder, "buy bitcoin")[0] == "crypto"
    assert entries[0].id not in found(kb, minilm_encoder, entries[0].questions[0])
    assert found(kb, minilm_encoder, entries[1].questions[0])[0] == entries[1].id
    coded = next(e for e in reversed(entries) if "E-4" in e.questions[0])
    assert found(kb, minilm_encoder, f"what does {coded.questions[0].split()[-1]} mean")[0] == coded.id


def test_a_skipped_change_id_is_asked_for_again_until_it_shows_up_or_times_out() -> None:
    position = Position().after([1, 2, 4], now=1000.0)  # 3 committed later, or rolled back
    assert (position.change_id, position.pending_ids) == (4, [3])
    assert Position.from_json(position.to_json()) == position

    assert position.after([3, 5], now=1001.0) == Position(5)
    assert position.after([5], now=1001.0).pending_ids == [3]
    assert position.after([], now=1000.0 + PENDING_SECONDS) == Position(4)
    with pytest.raises(ValueError, match="change_id"):
        Position.from_json('{"change_id": -1, "pending": []}')


def test_the_compaction_threshold_is_read_from_config_and_checked(tmp_path: Path) -> None:
    block = """pipeline:
  - name: SentenceEncoder
  - name: CalibratedIntentClassifier
  - name: KnowledgeBaseRetriever
    compact_after: {value}
"""
    path = tmp_path / "config.yml"
    path.write_text(block.format(value=250))

    assert load_config(path, root=tmp_path).retriever.index_settings().compact_after == 250
    path.write_text(block.format(value=0))
    with pytest.raises(ProjectFileError, match=r"pipeline\[2\]\.compact_after"):
        load_config(path, root=tmp_path)


@pytest.mark.postgres
def test_a_change_committed_after_a_later_one_is_still_applied(postgres_schema: Any, minilm_encoder: Encoder) -> None:
    server_db, slow_db = create_engine_for(postgres_schema.url), create_engine_for(postgres_schema.url)
    init_schema(server_db)
    gate, committing = threading.Event(), threading.Event()

    def hold_commit(_: Any) -> None:  # the slow editor's transaction has its change id, not yet committed
        committing.set()
        gate.wait(30)

    event.listen(slow_db, "commit", hold_commit)
    store = KnowledgeBaseStore(server_db)
    try:
        for entry in SUPPORT:
            store.upsert(entry)
        kb = knowledge_base(store, minilm_encoder)
        slow = threading.Thread(
            target=KnowledgeBaseStore(slow_db).upsert,
            args=(KBEntry("wallet", ["Can I pay with my phone?"], "Yes, add the card to your wallet."),),
        )
        slow.start()
        assert committing.wait(30)
        store.set_status("crash", EntryStatus.RETIRED)  # a later change id, committed first

        assert kb.apply_changes() is True
        assert "crash" not in found(kb, minilm_encoder, "the app keeps crashing")
        assert "wallet" not in found(kb, minilm_encoder, "can I pay with my phone")
        gate.set()
        slow.join()
        [(wallet_change, _)] = store.versions_with_change_ids(["wallet"])
        assert wallet_change < store.versions_with_change_ids(["crash"])[-1][0]  # ids out of commit order
        assert kb.apply_changes() is True
        assert found(kb, minilm_encoder, "can I pay with my phone")[0] == "wallet"
    finally:
        gate.set()
        server_db.dispose()
        slow_db.dispose()
        postgres_schema.reset()


def test_the_base_index_counts_the_same_bm25_statistics_as_the_delta() -> None:
    # The delta scores on the base's collection statistics, read from the base's own index.
    entries = [
        KBEntry(id="a", questions=["Where is my card?", "card not arrived E-1043"], answer="It takes 5 days"),
        KBEntry(id="b", questions=["reset my PIN"], answer="Go to Settings, then Card, then PIN"),
    ]
    index = LexicalIndex(
        [e.questions for e in entries], answers=[e.answer for e in entries], answer_weight=ANSWER_WEIGHT
    )
    counted = LexicalStatistics.of(lexical_document(entry) for entry in entries)

    from_index = index.statistics()
    assert (from_index.documents, from_index.total_length) == (counted.documents, counted.total_length)
    assert from_index.documents == 2 and from_index.total_length > 0
    assert dict(from_index.document_frequency) == dict(counted.document_frequency)
    assert from_index.document_frequency["card"] == 2 and from_index.document_frequency["1043"] == 1


def test_a_thread_published_after_the_base_is_found_through_its_body_as_in_a_full_rebuild(
    store: KnowledgeBaseStore, minilm_encoder: Encoder
) -> None:
    kb = knowledge_base(store, minilm_encoder)
    store.upsert(
        KBEntry(
            "transfer-pending",
            ["Still waiting, help please"],
            "Up to two working days.",
            context="I sent money to my landlord on Monday and the transfer still shows as pending.",
        )
    )
    kb.apply_changes()
    rebuilt = knowledge_base(store, minilm_encoder)
    query = "money sent to my landlord hasn't arrived"

    assert kb.changed_since_compaction == 1  # the thread is in the delta

    [[incremental]], [[full]] = (
        k.retriever.search_many([query], minilm_encoder.encode([query]), top_k=1) for k in (kb, rebuilt)
    )
    assert incremental.entry_id == full.entry_id == "transfer-pending"
    assert incremental.lexical == pytest.approx(full.lexical, abs=0.02) and incremental.lexical > 0


def test_the_delta_counts_context_words_as_the_base_does() -> None:
    entries = [
        KBEntry(id="a", questions=["Where is my card?"], answer="It takes 5 days", context="Ordered it last week"),
        KBEntry(id="b", questions=["reset my PIN"], answer="Go to Settings", context="I forgot my PIN twice"),
    ]
    for weight in (0.0, 0.5):
        index = LexicalIndex(
            [e.questions for e in entries],
            answers=[e.answer for e in entries],
            answer_weight=ANSWER_WEIGHT,
            contexts=[e.context for e in entries],
            context_weight=weight,
        )
        counted = LexicalStatistics.of(lexical_document(entry, weight) for entry in entries)

        assert index.statistics().total_length == pytest.approx(counted.total_length)
        assert dict(index.statistics().document_frequency) == dict(counted.document_frequency)
        assert ("ordered" in counted.document_frequency) is (weight > 0)
