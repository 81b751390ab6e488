"""The learning-loop benchmark's bot copy: held-out topics are gone, everything else is intact."""

from __future__ import annotations

from pathlib import Path

from benchmarks.kb_loop import offered_entry, withhold_topics
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.validation import validate_project
from crowddesk.bot.project.wiring import faq_entries
from tests.demo_bot import REPO, copy_demo_project


def test_withheld_topics_leave_a_valid_bot_that_never_heard_of_them(tmp_path: Path) -> None:
    project = copy_demo_project(tmp_path)

    withhold_topics(project, ["pin_blocked", "country_support"])  # the second is the last in both files

    assert [str(p) for p in validate_project(project) if p.severity == "error"] == []
    loaded = load_project(project)
    entries = {entry.id: entry for entry in faq_entries(loaded)}
    original = {entry.id: entry for entry in faq_entries(load_project(REPO))}
    assert set(original) - set(entries) == {"faq/pin_blocked", "faq/country_support"}
    assert all(entries[key] == original[key] for key in entries)
    assert "utter_faq/pin_blocked" not in loaded.domain.responses


def test_clarification_buttons_name_the_entries_they_select() -> None:
    assert offered_entry("/faq/card_arrival") == "faq/card_arrival"
    assert offered_entry('/kb{"entry_id": "handoff:t-42"}') == "handoff:t-42"
