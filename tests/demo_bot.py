"""Fixtures that train the shipped demo bot once per test session and serve it in-process."""

from __future__ import annotations

import shutil
import uuid
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.action_server import start_action_server, stop
from crowddesk.bot.assemble import Bot, assemble, models_dir
from crowddesk.bot.project import load_project
from crowddesk.bot.server import create_app
from crowddesk.bot.training import TrainResult, train

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("domain.yml", "config.yml", "endpoints.yml", "credentials.yml", "data", "actions")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def copy_demo_project(target: Path) -> Path:
    for name in PROJECT_FILES:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, target / name, ignore=shutil.ignore_patterns("__pycache__"))
        elif source.exists():
            shutil.copy(source, target / name)
    return target


@pytest.fixture(scope="session")
def demo_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_demo_project(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def demo_training(demo_project: Path) -> TrainResult:
    project = load_project(demo_project)
    return train(project, models_dir(demo_project))


@pytest.fixture(scope="session")
def action_server_url(demo_project: Path) -> Iterator[str]:
    port = free_port()
    process = start_action_server(demo_project, port=port)
    yield f"http://127.0.0.1:{port}/webhook"
    stop(process)


@pytest.fixture(scope="session")
def demo_client(
    demo_project: Path, demo_training: TrainResult, action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The demo bot served in-process; tests keep apart by using their own `sender`."""
    bot = demo_bot_on_fresh_database(demo_project, demo_training, action_server_url, tmp_path_factory)
    with TestClient(create_app(bot)) as client:
        yield client


def demo_bot_on_fresh_database(
    demo_project: Path, demo_training: TrainResult, action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Bot:
    """The trained demo bot on an SQLite file of its own, calling the session's action server."""
    database = tmp_path_factory.mktemp("demo-db") / "crowddesk.db"
    return assemble(
        demo_project, model_dir=demo_training.model_dir,
        database_url=f"sqlite:///{database}", action_endpoint=action_server_url,
    )


@pytest.fixture()
def sender() -> str:
    """A customer id no other test uses."""
    return f"customer-{uuid.uuid4().hex[:12]}"
