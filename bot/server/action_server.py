"""Starts the project's `actions/` package on the real rasa_sdk action server."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from crowddesk.errors import CrowdDeskError

DEFAULT_PORT = 5055


class ActionServerStartError(CrowdDeskError, RuntimeError):
    pass


def action_server_command(actions_package: str, port: int) -> list[str]:
    return [sys.executable, "-m", "rasa_sdk", "--actions", actions_package, "--port", str(port)]


def start_action_server(
    project_root: Path,
    *,
    port: int = DEFAULT_PORT,
    actions_package: str = "actions",
    host: str = "127.0.0.1",
) -> subprocess.Popen[bytes]:
    """Launch `python -m rasa_sdk` in the project folder (so `actions` imports) and wait for it."""
    if not (project_root / actions_package.replace(".", "/")).exists():
        raise ActionServerStartError(f"no {actions_package}/ package in {project_root}")
    env = {**os.environ, "SANIC_HOST": host, "PYTHONPATH": str(project_root)}
    log_path = project_root / ".crowddesk" / "action-server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            action_server_command(actions_package, port),
            cwd=project_root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_until_healthy(f"http://{host}:{port}/health", process, log_path)
    except ActionServerStartError:
        process.kill()
        process.wait()
        raise
    return process


def wait_until_healthy(url: str, process: subprocess.Popen[bytes], log_path: Path, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-2000:]
            raise ActionServerStartError(f"action server exited with {process.returncode} (log: {log_path}):\n{tail}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise ActionServerStartError(f"action server did not answer {url} within {timeout:.0f}s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
