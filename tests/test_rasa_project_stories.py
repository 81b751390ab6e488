"""The corpus projects' own stories: each project trained, its custom actions on the real action
server. Checked as `rasa test core` checks them (`--core`: the story's steps replayed, only the
actions predicted), CrowdDesk passes at least as many as Rasa 3.6.21; played live through the
engine, so do all but one project, whose stories state what no live conversation does."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from benchmarks.rasa_projects import STORIES, LiveRun, copy_project, load_stories, run_live
from crowddesk.bot.evaluation.conversations import replay_conversation_tests
from crowddesk.bot.evaluation.story_run import StoryResult
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.training.trainer import train
from tests.rasa_corpus import RASA_STORIES_PASSED, RASA_TEST_STORIES_PASSED

RASA_PASSED = {**RASA_STORIES_PASSED, **RASA_TEST_STORIES_PASSED}
# Live, a story's slot_was_set steps are checked against what happened; `rasa test core` sets them.
STATES_WHAT_NO_CONVERSATION_DOES = {
    "pokedex": "its stories set the custom-mapped pokemon_name before action_check_existence runs; "
    "no mapping sets it in a live conversation, in Rasa either",
}


@dataclass(frozen=True)
class ProjectRuns:
    project: str
    core: list[StoryResult]
    live: LiveRun


@pytest.fixture(scope="module", params=sorted(STORIES))
def runs(request: pytest.FixtureRequest, corpus: Path, tmp_path_factory: pytest.TempPathFactory) -> ProjectRuns:
    """The project copied (training writes into a project), trained, and its stories run both ways."""
    name: str = request.param
    root = copy_project(corpus / name, tmp_path_factory.mktemp("projects") / name)
    model_dir = train(load_project(root), tmp_path_factory.mktemp(f"{name}-models")).model_dir
    core = replay_conversation_tests(load_project(root), load_stories(root), model_dir=model_dir)
    return ProjectRuns(name, core, run_live(root, model_dir))


def passed(results: list[StoryResult]) -> int:
    return sum(result.failure is None for result in results)


def failures(results: list[StoryResult]) -> str:
    return "\n".join(str(failure) for result in results for failure in result.failures)


def test_as_rasa_test_core_checks_them_stories_pass_at_least_as_often_as_with_rasa(runs: ProjectRuns) -> None:
    rasa_passed, total = RASA_PASSED[runs.project]
    assert len(runs.core) == total
    assert passed(runs.core) >= rasa_passed, failures(runs.core)


def test_played_live_stories_pass_at_least_as_often_as_with_rasa(runs: ProjectRuns) -> None:
    rasa_passed, total = RASA_PASSED[runs.project]
    assert len(runs.live.results) == total
    if runs.project not in STATES_WHAT_NO_CONVERSATION_DOES:
        assert runs.live.stories_passed >= rasa_passed, failures(runs.live.results)
        return
    # Every action still right; what fails is only the slot the stories state and nothing sets.
    found = [f for result in runs.live.results for f in result.failures]
    assert found and {(f.kind, f.expected.split()[1]) for f in found} == {("slot", "pokemon_name")}
    assert sum(r.correct_actions for r in runs.live.results) == sum(r.actions for r in runs.live.results)
