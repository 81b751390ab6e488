"""`crowddesk init`: the starter project is complete, valid and refuses to overwrite anything."""

from __future__ import annotations

import importlib.util
from collections import Counter
from pathlib import Path

import pytest
from rasa_sdk import Tracker
from rasa_sdk.executor import CollectingDispatcher

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.scaffold import ScaffoldError, scaffold_project
from crowddesk.bot.project.validation import validate_project

EXPECTED_FILES = {
    "README.md",
    "actions/__init__.py",
    "actions/actions.py",
    "config.yml",
    "credentials.yml",
    "data/nlu.yml",
    "data/responses.yml",
    "data/rules.yml",
    "domain.yml",
    "endpoints.yml",
}


@pytest.fixture()
def scaffolded(tmp_path: Path) -> Path:
    target = tmp_path / "nested" / "my-bot"
    created = scaffold_project(target)
    assert {path.relative_to(target).as_posix() for path in created} == EXPECTED_FILES
    return target


def test_new_project_passes_validation_without_warnings(scaffolded: Path) -> None:
    assert [str(problem) for problem in validate_project(scaffolded)] == []


def test_new_project_has_the_promised_intents_and_faqs(scaffolded: Path) -> None:
    project = load_project(scaffolded, environ={})
    examples_per_intent = Counter(example.intent for example in project.data.examples)
    faqs = [intent for intent in examples_per_intent if intent.startswith("faq/")]

    assert {"greet", "goodbye", "thanks", "human_handoff", "out_of_scope"} <= set(examples_per_intent)
    assert 3 <= len(faqs) <= 4
    assert all(examples_per_intent[faq] >= 8 for faq in faqs)
    assert project.domain.retrieval_intents() == ["faq"]
    assert project.config.policy.out_of_scope_intent == "out_of_scope"
    assert project.config.policy.handoff_intents == ["human_handoff"]
    assert project.endpoints.action_endpoint_url == "http://localhost:5055/webhook"


def test_new_project_action_runs_on_rasa_sdk(scaffolded: Path) -> None:
    spec = importlib.util.spec_from_file_location("scaffolded_actions", scaffolded / "actions" / "actions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    action = module.ActionHelloWorld()
    dispatcher = CollectingDispatcher()
    tracker = Tracker("user-1", {}, {}, [], False, None, {}, "action_listen")
    domain = load_project(scaffolded, environ={}).domain

    events = action.run(dispatcher, tracker, domain.as_rasa_dict())

    assert action.name() in domain.actions
    assert events == []
    assert [message["text"] for message in dispatcher.messages] == ["Hello World!"]


def test_existing_empty_directory_is_used(tmp_path: Path) -> None:
    created = scaffold_project(tmp_path)
    assert (tmp_path / "domain.yml") in created


def test_non_empty_directory_is_refused_and_left_alone(tmp_path: Path) -> None:
    keep = tmp_path / "notes.txt"
    keep.write_text("mine", encoding="utf-8")
    with pytest.raises(ScaffoldError, match=f"{tmp_path} is not empty"):
        scaffold_project(tmp_path)
    assert [path.name for path in tmp_path.iterdir()] == ["notes.txt"]


def test_file_as_target_is_refused(tmp_path: Path) -> None:
    target = tmp_path / "bot"
    target.write_text("", encoding="utf-8")
    with pytest.raises(ScaffoldError, match="is not a directory"):
        scaffold_project(target)
