"""Fixtures that train the shipped demo bot once per test session and serve it in-process."""

from __future__ import annotations

import shutil
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.bot.server.api_access import ApiAccess
from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import Bot, assemble, models_dir
from crowddesk.bot.training.trainer import TrainResult, train

REPO = Path(__file__).resolve().parent.parent
PROJECT_FILES = ("domain.yml", "config.yml", "endpoints.yml", "credentials.yml", "simulation.yml", "data", "actions")
# The test servers' API token, and the header that sends it to the tracker and parse routes.
API_ACCESS = ApiAccess(token="test-api-token")
API_AUTH = {"Authorization": "Bearer test-api-token"}


STARTUP_SECONDS = 30.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def serving(app: Any, **options: Any) -> Iterator[str]:
    """`app` served by uvicorn on an ephemeral loopback port in a background thread; yields
    its base URL. `options` go to `uvicorn.Config` (log level, websocket implementation...)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, **options))
    thread = threading.Thread(target=server.run, name=f"test-server-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + STARTUP_SECONDS
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"the test server did not start on port {port}")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STARTUP_SECONDS)


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
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[TestClient]:
    """The demo bot served in-process; tests keep apart by using their own `sender`."""
    bot = demo_bot_on_fresh_database(demo_project, demo_training, action_server_url, tmp_path_factory)
    with TestClient(create_app(bot, API_ACCESS)) as client:
        yield client


def demo_bot_on_fresh_database(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Bot:
    """The trained demo bot on an SQLite file of its own, calling the session's action server."""
    database = tmp_path_factory.mktemp("demo-db") / "crowddesk.db"
    return assemble(
        demo_project,
        model_dir=demo_training.model_dir,
        database_url=f"sqlite:///{database}",
        action_endpoint=action_server_url,
    )


def demo_bot_with_credentials(demo_project: Path, demo_training: TrainResult, folder: Path, credentials: str) -> Bot:
    """The trained demo bot listening on the channels of `credentials` (credentials.yml text),
    with an SQLite file of its own in `folder`."""
    path = folder / "credentials.yml"
    path.write_text(credentials, encoding="utf-8")
    return assemble(
        demo_project,
        model_dir=demo_training.model_dir,
        database_url=f"sqlite:///{folder / 'crowddesk.db'}",
        credentials=path,
    )


def agent_headers(bot: Bot) -> dict[str, str]:
    """The desk API header of a new agent, Ana Agent, on `bot`."""
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    bot.agents.add(agent, "Ana Agent")
    return {"Authorization": f"Bearer {bot.agents.issue_token(agent)}"}


@pytest.fixture()
def sender() -> str:
    """A customer id no other test uses."""
    return f"customer-{uuid.uuid4().hex[:12]}"
