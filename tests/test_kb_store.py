from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine

from crowddesk.knowledge_base.store import InvalidEntry, KnowledgeBaseStore, UnknownEntry
from crowddesk.knowledge_base.types import EntryStatus, KBEntry

ENCODER = "all-MiniLM-L6-v2"


@pytest.fixture
def kb(db_engine: Engine) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(db_engine)


def card_arrival() -> KBEntry:
    return KBEntry(
        id="faq/card_arrival",
        questions=["When will my card arrive?", "Wann kommt meine Karte an?", "カードはいつ届きますか？"],
        answer="Cards arrive within 5–7 working days 📬.",
        source_url="https://community.example/t/card-arrival/12",
        tags=["cards", "délai"],
        language="en",
        status=EntryStatus.PUBLISHED,
        intent="faq/card_arrival",
    )


def entry(entry_id: str, **fields: Any) -> KBEntry:
    defaults: dict[str, Any] = {"questions": [f"question of {entry_id}"], "answer": "an answer"}
    return KBEntry(id=entry_id, **(defaults | fields))


def content(kb_entry: KBEntry | None) -> dict[str, object]:
    assert kb_entry is not None
    return {k: v for k, v in kb_entry.as_dict().items() if k not in ("created_at", "updated_at")}


def test_entry_roundtrips_with_questions_tags_and_unicode(kb: KnowledgeBaseStore) -> None:
    assert kb.upsert(card_arrival()) is True

    stored = kb.get("faq/card_arrival")

    assert content(stored) == content(card_arrival())
    assert stored is not None
    assert stored.created_at is not None
    assert stored.created_at.utcoffset() == timedelta(0)
    assert stored.updated_at == stored.created_at
    assert kb.get("faq/unknown") is None


def test_upserting_the_same_content_again_changes_nothing(kb: KnowledgeBaseStore) -> None:
    kb.upsert(card_arrival())
    before = kb.get("faq/card_arrival")

    assert kb.upsert(card_arrival()) is False

    assert kb.get("faq/card_arrival") == before
    assert kb.count() == 1


def test_changed_content_replaces_questions_and_bumps_updated_at(kb: KnowledgeBaseStore) -> None:
    kb.upsert(card_arrival())
    before = kb.get("faq/card_arrival")
    assert before is not None and before.updated_at is not None
    changed = replace(card_arrival(), questions=["Where is my card?"], tags=["cards"])

    assert kb.upsert(changed) is False

    after = kb.get("faq/card_arrival")
    assert content(after) == content(changed)
    assert after is not None and after.updated_at is not None
    assert after.created_at == before.created_at
    assert after.updated_at > before.updated_at


def test_question_order_is_part_of_the_content(kb: KnowledgeBaseStore) -> None:
    kb.upsert(entry("faq/a", questions=["first", "second"]))

    assert kb.upsert(entry("faq/a", questions=["second", "first"])) is False

    stored = kb.get("faq/a")
    assert stored is not None
    assert stored.questions == ["second", "first"]


def test_status_changes_decide_what_is_published(kb: KnowledgeBaseStore) -> None:
    kb.upsert(entry("faq/b", questions=["b1", "b2", "b3"]))
    kb.upsert(entry("faq/a"))
    kb.upsert(entry("csv:billing-12", status=EntryStatus.DRAFT))

    retired = kb.set_status("faq/a", EntryStatus.RETIRED)
    published = kb.set_status("csv:billing-12", EntryStatus.PUBLISHED)

    assert retired.status is EntryStatus.RETIRED
    assert published.status is EntryStatus.PUBLISHED
    assert [(e.id, e.questions) for e in kb.published()] == [
        ("csv:billing-12", ["question of csv:billing-12"]),
        ("faq/b", ["b1", "b2", "b3"]),
    ]
    assert kb.count() == 3
    assert kb.count(EntryStatus.PUBLISHED) == 2
    assert kb.count(EntryStatus.RETIRED) == 1
    assert kb.count(EntryStatus.DRAFT) == 0


def test_setting_the_same_status_keeps_updated_at(kb: KnowledgeBaseStore) -> None:
    kb.upsert(entry("faq/a"))
    before = kb.get("faq/a")

    assert kb.set_status("faq/a", EntryStatus.PUBLISHED) == before


def test_setting_status_of_an_unknown_entry_names_it(kb: KnowledgeBaseStore) -> None:
    with pytest.raises(UnknownEntry, match="faq/missing"):
        kb.set_status("faq/missing", EntryStatus.RETIRED)


def test_list_filters_by_status_tag_and_text(kb: KnowledgeBaseStore) -> None:
    kb.upsert(card_arrival())
    kb.upsert(entry("faq/refund", answer="Refunds take 100% of the fee back.", tags=["billing"]))
    kb.upsert(entry("faq/invoice", tags=["billing-2"], status=EntryStatus.DRAFT))
    kb.upsert(entry("faq/pin", questions=["I forgot my PIN_CODE"], tags=[]))

    def ids(**filters: Any) -> list[str]:
        return [e.id for e in kb.list(**filters)]

    assert ids() == ["faq/card_arrival", "faq/invoice", "faq/pin", "faq/refund"]
    assert ids(status=EntryStatus.DRAFT) == ["faq/invoice"]
    assert ids(tag="billing") == ["faq/refund"]
    assert ids(tag="délai") == ["faq/card_arrival"]
    assert ids(tag="billing", status=EntryStatus.DRAFT) == []
    assert ids(text="WANN KOMMT") == ["faq/card_arrival"]  # a question
    assert ids(text="refund") == ["faq/refund"]  # the id
    assert ids(text="100%") == ["faq/refund"]  # the answer; % is literal
    assert ids(text="pin_") == ["faq/pin"]  # _ is literal
    assert ids(text="カード") == ["faq/card_arrival"]


def test_list_pages_in_id_order(kb: KnowledgeBaseStore) -> None:
    for number in [3, 1, 4, 0, 2]:
        kb.upsert(entry(f"faq/{number}"))

    assert [e.id for e in kb.list(limit=2)] == ["faq/0", "faq/1"]
    assert [e.id for e in kb.list(limit=2, offset=2)] == ["faq/2", "faq/3"]
    assert [e.id for e in kb.list(limit=2, offset=4)] == ["faq/4"]


def test_invalid_entries_are_rejected_with_their_id(kb: KnowledgeBaseStore) -> None:
    with pytest.raises(InvalidEntry, match="'faq/empty' has no question"):
        kb.upsert(entry("faq/empty", questions=["  "]))
    with pytest.raises(InvalidEntry, match="'faq/lang'"):
        kb.upsert(entry("faq/lang", language="english-as-spoken-in-scotland"))
    with pytest.raises(InvalidEntry, match="'faq/old' has unknown status 'archived'"):
        kb.upsert(entry("faq/old", status="archived"))
    with pytest.raises(InvalidEntry, match="1 to 255 characters"):
        kb.upsert(entry("x" * 256))
    assert kb.count() == 0


def test_vector_cache_roundtrips_float32_exactly(kb: KnowledgeBaseStore) -> None:
    rng = np.random.default_rng(7)
    vectors = {
        "When will my card arrive?": rng.standard_normal(384).astype(np.float32),
        "カードはいつ届きますか？": np.array([np.float32(1) / 3, -0.0, 1e-38, 3.4e38], np.float32),
    }
    kb.store_vectors(ENCODER, vectors)

    cached = kb.cached_vectors(ENCODER, [*vectors, "never encoded"])

    assert cached.keys() == vectors.keys()
    for text, vector in vectors.items():
        assert cached[text].dtype == np.float32
        assert cached[text].tobytes() == vector.tobytes()
    assert kb.cached_vectors("another-encoder", list(vectors)) == {}


def test_storing_a_cached_text_again_keeps_the_first_vector(kb: KnowledgeBaseStore) -> None:
    first = np.array([1.0, 2.0], np.float32)
    kb.store_vectors(ENCODER, {"hello": first})

    kb.store_vectors(ENCODER, {"hello": np.array([9.0, 9.0], np.float32), "new": first})

    cached = kb.cached_vectors(ENCODER, ["hello", "new"])
    assert cached["hello"].tolist() == [1.0, 2.0]
    assert cached["new"].tolist() == [1.0, 2.0]


def test_vector_cache_handles_more_texts_than_one_query_takes(kb: KnowledgeBaseStore) -> None:
    vectors = {f"text {i}": np.full(2, i, np.float32) for i in range(1_200)}
    kb.store_vectors(ENCODER, vectors)

    cached = kb.cached_vectors(ENCODER, list(vectors))

    assert len(cached) == 1_200
    assert cached["text 1199"].tolist() == [1199.0, 1199.0]


def test_vectors_must_be_one_dimensional(kb: KnowledgeBaseStore) -> None:
    with pytest.raises(ValueError, match=r"'batch'.*one dimension"):
        kb.store_vectors(ENCODER, {"batch": np.zeros((2, 3), np.float32)})
