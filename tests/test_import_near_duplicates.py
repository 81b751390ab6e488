"""Imported questions that another source already answered become variants of the stored entry."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from crowddesk.knowledge_base.ingest import IngestOptions, ingest
from crowddesk.knowledge_base.sources.community import ImportBatch
from crowddesk.knowledge_base.sources.stackexchange import StackExchangeImporter
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.nlu.encoders import Encoder

POSTS = Path(__file__).parent / "fixtures" / "kb" / "stackexchange" / "Posts.xml"
SITE = "https://bank.stackexchange.com"
PIN = "stackexchange:bank.stackexchange.com:1"
FORUM_PIN = "discourse:community.example.com:7"
FORUM_LIMITS = "discourse:community.example.com:8"


@pytest.fixture
def kb(db_engine: Engine) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(db_engine)


def forum_topics() -> ImportBatch:
    """A Discourse import: one question the Stack Exchange site already answered, one it did not."""
    return ImportBatch(
        entries=[
            KBEntry(
                id=FORUM_PIN,
                questions=["How do I reset my PIN number?"],
                answer="Settings > Security > Reset PIN, then confirm with the code we text you.",
                source="discourse:7",
                votes=3,
            ),
            KBEntry(
                id=FORUM_LIMITS,
                questions=["What are the daily card limits?"],
                answer="Up to 5,000 a day in shops and 500 at cash machines; change them under Cards > Limits.",
                source="discourse:8",
            ),
        ]
    )


def test_a_new_question_close_to_a_published_entry_from_elsewhere_becomes_its_variant(
    kb: KnowledgeBaseStore, minilm_encoder: Encoder
) -> None:
    ingest(kb, StackExchangeImporter(SITE).read(POSTS), encoder=minilm_encoder)

    summary = ingest(kb, forum_topics(), encoder=minilm_encoder)

    [merge] = summary.merged
    assert (merge.duplicate_id, merge.into_id) == (FORUM_PIN, PIN) and merge.similarity >= 0.92
    assert f"  merged {FORUM_PIN} into {PIN} (similarity {merge.similarity:.2f})" in summary.lines("forum")
    assert (summary.added, summary.updated, summary.unchanged) == (1, 0, 0)
    pin = kb.get(PIN)
    assert pin is not None and pin.questions[-1] == "How do I reset my PIN number?"
    assert pin.answer.startswith("Open `Settings > Security`")  # the stored answer is kept
    assert kb.get(FORUM_PIN) is None and kb.get(FORUM_LIMITS) is not None
    last = kb.history(PIN)[-1]
    assert (last.actor, last.comment) == ("import", f"variants from {FORUM_PIN}")


def test_reimporting_either_source_merges_nothing_into_itself_and_changes_nothing(
    kb: KnowledgeBaseStore, minilm_encoder: Encoder
) -> None:
    def both_sources() -> tuple[list[str], list[str]]:
        site = ingest(kb, StackExchangeImporter(SITE).read(POSTS), encoder=minilm_encoder)
        forum = ingest(kb, forum_topics(), encoder=minilm_encoder)
        return site.lines("Posts.xml"), forum.lines("forum")

    both_sources()
    stored = {entry.id: entry.questions for entry in kb.list()}
    versions = kb.change_count()

    site_again, forum_again = both_sources()

    assert {entry.id: entry.questions for entry in kb.list()} == stored
    assert kb.change_count() == versions
    assert site_again[0].endswith("0 added, 0 updated, 2 unchanged, 1 merged, 2 skipped")
    assert forum_again[0].endswith("0 added, 0 updated, 1 unchanged, 1 merged, 0 skipped")
    assert f"  merged {FORUM_PIN} into {PIN} (similarity 1.00)" in forum_again  # now found verbatim


def test_an_entry_already_stored_is_never_merged_away(kb: KnowledgeBaseStore, minilm_encoder: Encoder) -> None:
    ingest(kb, forum_topics(), encoder=minilm_encoder)  # the forum came first: its entry stays

    site = ingest(kb, StackExchangeImporter(SITE).read(POSTS), encoder=minilm_encoder)
    forum = ingest(kb, forum_topics(), encoder=minilm_encoder)

    assert {(m.duplicate_id, m.into_id) for m in site.merged} == {
        (PIN, FORUM_PIN),
        ("stackexchange:bank.stackexchange.com:11", FORUM_PIN),
    }
    assert not forum.merged and (forum.added, forum.updated, forum.unchanged) == (0, 0, 2)
    forum_pin = kb.get(FORUM_PIN)
    assert forum_pin is not None and forum_pin.questions == [
        "How do I reset my PIN number?",
        "How do I reset my PIN?",
        "How do I reset my PIN code?",
    ]


def test_retired_entries_and_those_mirrored_from_nlu_yml_take_no_variants(
    kb: KnowledgeBaseStore, minilm_encoder: Encoder
) -> None:
    answer = "Open Settings > Security > Reset PIN in the app."
    kb.upsert(KBEntry(id="faq/reset_pin", questions=["How do I reset my PIN?"], answer=answer, intent="faq/reset_pin"))
    kb.upsert(KBEntry(id="manual:pin", questions=["How do I reset my PIN?"], answer=answer, status=EntryStatus.RETIRED))

    summary = ingest(kb, forum_topics(), encoder=minilm_encoder, options=IngestOptions())

    assert not summary.merged and summary.added == 2
    faq = kb.get("faq/reset_pin")
    assert faq is not None and faq.questions == ["How do I reset my PIN?"]
