"""Community imports: Stack Exchange dumps and Discourse topics, through redaction, merging and the store."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import Engine

from crowddesk.bot.cli.main import main
from crowddesk.knowledge_base.ingest import IngestOptions, ingest
from crowddesk.knowledge_base.retriever import FaissRetriever
from crowddesk.knowledge_base.sources.community import ANSWER_TOO_SHORT, NO_GOOD_ANSWER, AnswerRules
from crowddesk.knowledge_base.sources.discourse import DiscourseImporter
from crowddesk.knowledge_base.sources.html_text import html_to_text
from crowddesk.knowledge_base.sources.importers import KBImportError, importer_for
from crowddesk.knowledge_base.sources.stackexchange import StackExchangeImporter
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.nlu.encoders import Encoder

FIXTURES = Path(__file__).parent / "fixtures" / "kb"
POSTS = FIXTURES / "stackexchange" / "Posts.xml"
TOPICS = FIXTURES / "discourse"
SITE = "https://bank.stackexchange.com"
PIN, E1043, PIN_CODE = (f"stackexchange:bank.stackexchange.com:{n}" for n in (1, 4, 11))


@pytest.fixture
def kb(db_engine: Engine) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(db_engine)


def test_stack_exchange_prefers_the_accepted_answer_and_keeps_its_provenance() -> None:
    batch = StackExchangeImporter(SITE).read(POSTS)
    pin = next(e for e in batch.entries if e.id == PIN)

    # Answer 2 has more votes, but the asker accepted answer 3.
    assert pin.answer.startswith("Open `Settings > Security` and run:")
    assert (pin.author, pin.accepted, pin.votes) == ("rita", True, 2)
    assert (pin.source, pin.source_url) == ("stackexchange:1", f"{SITE}/questions/1")
    assert pin.questions == ["How do I reset my PIN?"]
    assert pin.tags == ["cards", "security"]
    assert pin.context.startswith("I forgot my PIN.")
    assert pin.last_activity_at == datetime(2024, 1, 5, 9, 30, tzinfo=UTC)


def test_stack_exchange_html_is_cleaned_with_code_blocks_kept_readable() -> None:
    pin = StackExchangeImporter(SITE).read(POSTS).entries[0]

    assert "```\nreset-pin --card 4111 1111 1111 1111\n  --confirm\n```" in pin.answer
    assert "<" not in pin.answer.replace("`Settings > Security`", "")


def test_html_becomes_paragraphs_list_items_and_lines_without_image_metadata() -> None:
    html = (
        "<p>Two ways:</p><ol><li>the <strong>app</strong></li><li>a branch</li></ol>"
        '<p>Line one<br/>line two</p><div class="lightbox-wrapper"><img src="a.png">'
        '<span class="meta">a.png 300x200</span></div>'
    )

    assert html_to_text(html) == "Two ways:\n\n- the app\n- a branch\n\nLine one\nline two"


def test_without_an_accepted_answer_the_best_scored_one_is_taken_and_weak_threads_are_skipped() -> None:
    batch = StackExchangeImporter(SITE).read(POSTS)
    e1043 = next(e for e in batch.entries if e.id == E1043)

    assert e1043.answer.startswith("Your session expired.")
    assert (e1043.accepted, e1043.votes, e1043.author) == (False, 7, "user13")
    assert e1043.tags == ["login", "errors"]  # the 2023+ "|a|b|" tag format
    assert [e.id for e in batch.entries] == [PIN, E1043, PIN_CODE]
    assert batch.skipped == {NO_GOOD_ANSWER: 1, ANSWER_TOO_SHORT: 1}


def test_the_minimum_answer_score_is_configurable() -> None:
    batch = StackExchangeImporter(SITE, AnswerRules(min_score=0)).read(POSTS)

    assert "stackexchange:bank.stackexchange.com:7" in {e.id for e in batch.entries}
    assert batch.skipped == {ANSWER_TOO_SHORT: 1}


def test_discourse_topic_takes_the_solved_post_and_ignores_system_posts() -> None:
    batch = DiscourseImporter("https://community.example.com").read(TOPICS)

    [declined] = batch.entries
    assert declined.id == "discourse:community.example.com:42"
    assert declined.questions == ["Card declined abroad"]
    assert declined.answer == "Enable payments abroad under Cards > Limits, then retry."
    assert (declined.author, declined.accepted, declined.votes) == ("moderator_mo", True, 4)
    assert declined.source_url == "https://community.example.com/t/card-declined-abroad/42"
    assert declined.tags == ["cards", "travel"]
    assert declined.context.startswith("My card is declined in Spain.")


def test_discourse_export_list_without_a_solution_takes_the_most_liked_reply(tmp_path: Path) -> None:
    topic = json.loads((TOPICS / "t-42.json").read_text(encoding="utf-8"))
    del topic["accepted_answer"]
    for post in topic["post_stream"]["posts"]:
        post.pop("accepted_answer", None)
    export = tmp_path / "export.json"
    export.write_text(json.dumps([topic], indent=2), encoding="utf-8")

    [declined] = importer_for(export).load(export)

    assert (declined.author, declined.accepted, declined.votes) == ("helpful_hal", False, 9)


@pytest.mark.parametrize(
    ("xml", "line", "message"),
    [
        ('<posts>\n  <row Id="1" PostTypeId="1" Title="t"\n  <row Id="2"/>\n</posts>', 3, "malformed XML"),
        ('<posts>\n  <row Id="1" Title="t" />\n</posts>', 2, "missing the PostTypeId attribute"),
        ('<posts>\n\n  <row Id="x" PostTypeId="1" Title="t" />\n</posts>', 3, "Id='x' is not an integer"),
        ('<users>\n  <row Id="1" />\n</users>', 1, "expected a <posts> root element"),
    ],
)
def test_malformed_posts_xml_names_file_and_line(tmp_path: Path, xml: str, line: int, message: str) -> None:
    posts = tmp_path / "Posts.xml"
    posts.write_text(xml, encoding="utf-8")

    with pytest.raises(KBImportError) as error:
        StackExchangeImporter().read(posts)

    assert (error.value.path, error.value.line) == (posts, line)
    assert message in str(error.value)


def test_malformed_discourse_json_names_file_and_line(tmp_path: Path) -> None:
    broken = tmp_path / "t-1.json"
    broken.write_text('{\n  "id": 1,\n  "title": "x",\n  "post_stream": {"posts": [}\n}', encoding="utf-8")
    with pytest.raises(KBImportError) as error:
        DiscourseImporter().read(broken)
    assert (error.value.line, "invalid JSON" in str(error.value)) == (4, True)

    topic = (TOPICS / "t-42.json").read_text(encoding="utf-8")
    topic = topic.replace('"cooked": "<p>Same here', '"raw": "<p>Same here')
    broken.write_text(topic, encoding="utf-8")
    with pytest.raises(KBImportError) as error:
        DiscourseImporter().read(broken)
    assert error.value.line == topic.splitlines().index('        "id": 902,') + 1
    assert "post_stream.posts[1]: 'cooked' must be text" in str(error.value)


def test_pii_is_redacted_before_anything_is_stored(kb: KnowledgeBaseStore) -> None:
    summary = ingest(kb, StackExchangeImporter(SITE).read(POSTS), encoder=None)

    pin, e1043 = kb.get(PIN), kb.get(E1043)
    assert pin is not None and e1043 is not None
    assert "reset-pin --card [card]" in pin.answer and "Mail [email] if it fails." in pin.answer
    assert pin.context == "I forgot my PIN. My e-mail is [email] if you need it."
    assert "transfers to [iban] are kept" in e1043.answer
    assert "Order 4111 1111 1111 1112 is stuck" in e1043.context  # not Luhn-valid: an order number
    assert summary.redactions == {"email": 2, "card": 1, "iban": 1}


def test_near_duplicate_questions_merge_into_the_better_answer_and_are_reported(
    kb: KnowledgeBaseStore, minilm_encoder: Encoder
) -> None:
    summary = ingest(kb, StackExchangeImporter(SITE).read(POSTS), encoder=minilm_encoder)

    [merge] = summary.merged
    assert (merge.duplicate_id, merge.into_id) == (PIN_CODE, PIN)
    assert merge.similarity >= 0.92
    pin = kb.get(PIN)
    assert pin is not None and pin.questions == ["How do I reset my PIN?", "How do I reset my PIN code?"]
    assert kb.get(PIN_CODE) is None
    assert "merged stackexchange:bank.stackexchange.com:11 into stackexchange:bank.stackexchange.com:1" in "\n".join(
        summary.lines("Posts.xml")
    )
    strict = ingest(
        kb,
        StackExchangeImporter(SITE).read(POSTS),
        encoder=minilm_encoder,
        options=IngestOptions(duplicate_threshold=0.99),
    )
    assert not strict.merged and kb.get(PIN_CODE) is not None


def test_reimporting_is_idempotent_and_picks_up_changes(kb: KnowledgeBaseStore, tmp_path: Path) -> None:
    posts = tmp_path / "bank.stackexchange.com" / "Posts.xml"
    posts.parent.mkdir()
    shutil.copy(POSTS, posts)
    first = ingest(kb, StackExchangeImporter().read(posts), encoder=None)
    again = ingest(kb, StackExchangeImporter().read(posts), encoder=None)

    assert (first.added, first.updated, first.unchanged) == (3, 0, 0)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 3)
    assert kb.count() == 3

    kb.set_status(E1043, EntryStatus.RETIRED)
    posts.write_text(
        posts.read_text(encoding="utf-8").replace(
            'Id="6" PostTypeId="2" ParentId="4" Score="7"', 'Id="6" PostTypeId="2" ParentId="4" Score="8"'
        )
    )
    changed = ingest(kb, StackExchangeImporter().read(posts), encoder=None)

    assert (changed.added, changed.updated, changed.unchanged) == (0, 1, 2)
    e1043 = kb.get(E1043)
    assert e1043 is not None and e1043.votes == 8
    assert e1043.status is EntryStatus.RETIRED  # a re-import never re-publishes a retired entry


def test_entries_without_recent_activity_are_counted_stale(kb: KnowledgeBaseStore) -> None:
    batch = StackExchangeImporter(SITE).read(POSTS)
    soon_after = datetime(2024, 2, 10, tzinfo=UTC)

    summary = ingest(kb, batch, encoder=None, now=soon_after, options=IngestOptions(stale_after=timedelta(days=30)))

    assert summary.stale == 1  # the PIN thread went quiet on 5 January; E-1043 and the PIN code one are newer
    assert "  stale (no change for 30 days): 1" in summary.lines("Posts.xml")


def test_accepted_and_voted_answers_rank_first_among_equal_matches() -> None:
    def answer(entry_id: str, **provenance: object) -> KBEntry:
        return replace(KBEntry(id=entry_id, questions=["How do I reset my PIN?"], answer="Reset it."), **provenance)

    entries = [answer("a-plain"), answer("b-voted", votes=40), answer("c-accepted", accepted=True, votes=1)]
    vector = np.ones((1, 8), dtype=np.float32)
    retriever = FaissRetriever(entries, np.repeat(vector, 3, axis=0))

    ranked = retriever.search("How do I reset my PIN?", vector[0], top_k=3)

    assert [c.entry_id for c in ranked] == ["c-accepted", "b-voted", "a-plain"]
    assert ranked[0].score - ranked[2].score <= 0.03


def test_cli_import_prints_the_summary_and_kb_list_flags_stale_entries(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    project = tmp_path / "bot"
    assert main(["init", str(project)]) == 0
    common = ["--project", str(project), "--database-url", f"sqlite:///{tmp_path / 'kb.db'}"]
    capsys.readouterr()

    assert main(["kb", "import", str(POSTS), "--format", "stackexchange", "--site-url", SITE, *common]) == 0
    out = capsys.readouterr().out
    assert "5 entries read; 2 added, 0 updated, 0 unchanged, 1 merged, 2 skipped" in out
    assert f"merged {PIN_CODE} into {PIN}" in out
    assert "skipped: 1 answer too short, 1 no accepted or good answer" in out
    assert "redacted: 2 email, 1 card, 1 iban" in out
    assert "stale (no change for 365 days): 2" in out

    assert main(["kb", "import", str(POSTS), "--site-url", SITE, *common]) == 0
    assert "0 added, 0 updated, 2 unchanged, 1 merged" in capsys.readouterr().out
    assert main(["kb", "list", *common]) == 0
    assert f"{PIN:40.40}  published  stale" in capsys.readouterr().out
    assert main(["kb", "import", str(tmp_path / "missing.xml"), *common]) == 1
    assert "missing.xml: cannot read file" in capsys.readouterr().err
