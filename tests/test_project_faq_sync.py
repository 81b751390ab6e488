"""The project's retrieval intents mirrored into the knowledge base at every start, without
undoing what editors changed since."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import Engine

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.assemble import PROJECT_SYNC_ACTOR, sync_project_faq
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus
from tests.demo_bot import copy_demo_project

ENTRY = "faq/card_arrival"


@pytest.fixture
def project_root(tmp_path: Path) -> Path:
    return copy_demo_project(tmp_path)


def test_editors_changes_to_mirrored_entries_survive_a_restart(project_root: Path, db_engine: Engine) -> None:
    store = KnowledgeBaseStore(db_engine)
    created, _ = sync_project_faq(load_project(project_root), store)
    assert created > 50 and store.get(ENTRY) is not None

    edited = store.get(ENTRY)
    assert edited is not None
    edited.answer = "Cards arrive in 3-5 working days; track them under Cards > Delivery."
    store.upsert(edited, actor="editor-ann")
    store.set_status("faq/lost_or_stolen_card", EntryStatus.RETIRED, actor="editor-ann")

    assert sync_project_faq(load_project(project_root), store) == (0, 0)  # the next start
    assert store.get(ENTRY).answer == edited.answer
    assert store.get("faq/lost_or_stolen_card").status is EntryStatus.RETIRED
    assert [v.actor for v in store.history(ENTRY)] == [PROJECT_SYNC_ACTOR, "editor-ann"]


def test_a_change_to_the_project_files_still_reaches_the_entry(project_root: Path, db_engine: Engine) -> None:
    store = KnowledgeBaseStore(db_engine)
    sync_project_faq(load_project(project_root), store)
    edited = store.get(ENTRY)
    assert edited is not None
    edited.answer = "An editor's answer."
    store.upsert(edited, actor="editor-ann")
    store.set_status(ENTRY, EntryStatus.RETIRED, actor="editor-ann")

    domain = project_root / "domain.yml"
    original = store.history(ENTRY)[0].entry().answer
    assert original in domain.read_text()
    domain.write_text(domain.read_text().replace(original, "Cards now arrive within 2 working days."))
    sync_project_faq(load_project(project_root), store)

    synced = store.get(ENTRY)
    assert synced is not None and synced.answer == "Cards now arrive within 2 working days."
    assert synced.status is EntryStatus.RETIRED  # retiring stays the editors' call
    assert store.history(ENTRY)[-1].actor == PROJECT_SYNC_ACTOR
