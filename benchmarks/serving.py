"""A project trained and served as users run it, for the benchmarks that talk to a live server:
`crowddesk train`, then `crowddesk run actions` and `crowddesk run` as subprocesses on 127.0.0.1."""

from __future__ import annotations

import contextlib
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from crowddesk.bot.server.action_server import (
    ActionServerStartError,
    start_action_server,
    stop,
    wait_until_healthy,
)
from crowddesk.bot.server.api_access import TOKEN_ENV
from tests.demo_bot import free_port

# The served bot's API token, for the benchmarks that read trackers or call /model/parse.
API_TOKEN = secrets.token_urlsafe(24)
API_HEADERS = {"Authorization": f"Bearer {API_TOKEN}"}


@dataclass(frozen=True)
class ServedBot:
    """A running `crowddesk run`: where it listens and its process id (for its CPU time)."""

    base_url: str
    pid: int
    database_url: str


def crowddesk_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "crowddesk.bot.cli", *args]


def train(project: Path, log: Path) -> None:
    with log.open("wb") as out:
        result = subprocess.run(
            crowddesk_command("train", "--project", str(project)), stdout=out, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        raise RuntimeError(f"crowddesk train failed (log: {log}):\n{log.read_text()[-2000:]}")


def start_http_server(
    command: Sequence[str],
    health_url: str,
    log: Path,
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 600.0,
) -> subprocess.Popen[bytes]:
    """Start a server subprocess (output to `log`) and return once `health_url` answers 200."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        wait_until_healthy(health_url, process, log, timeout=timeout)
    except ActionServerStartError as exc:  # the helper names the action server; this is another
        stop(process)
        raise RuntimeError(f"{' '.join(command[:4])} ... did not come up (log: {log}): {exc}") from None
    return process


@contextlib.contextmanager
def served_project(project: Path, workdir: Path) -> Iterator[ServedBot]:
    """The trained `project` on `crowddesk run actions` + `crowddesk run`, with the embedded
    SQLite store in a fresh file under `workdir` (logs there too); both stopped on exit."""
    actions_port, server_port = free_port(), free_port()
    database_url = f"sqlite:///{workdir / 'bench.db'}"
    actions = start_action_server(project, port=actions_port)
    env = {
        **os.environ,
        "CROWDDESK_DATABASE_URL": database_url,
        "CROWDDESK_ACTION_ENDPOINT": f"http://127.0.0.1:{actions_port}/webhook",
        TOKEN_ENV: API_TOKEN,
    }
    try:
        server = start_http_server(
            crowddesk_command("run", "--project", str(project), "--port", str(server_port)),
            f"http://127.0.0.1:{server_port}/health",
            workdir / "server.log",
            env=env,
        )
        try:
            yield ServedBot(f"http://127.0.0.1:{server_port}", server.pid, database_url)
        finally:
            stop(server)
    finally:
        stop(actions)
