"""Credentials never reach the server's logs: real uvicorn servers in their own processes."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from starlette.types import Receive, Scope, Send

from crowddesk.bot.server.log_scrubbing import scrub
from crowddesk.bot.training.trainer import TrainResult
from tests.demo_bot import REPO, free_port

STARTUP_SECONDS = 120.0
SECRETS = ("s3cret-query-token", "cdk_LeakedBearerToken123", "s3cret-access", "s3cret-encoded")


async def ok_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request with 200: only the log lines matter here."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


def test_uvicorns_access_log_keeps_the_request_but_not_its_credentials() -> None:
    port = free_port()
    # A process of its own: uvicorn's logging setup is process-wide.
    serve = (
        "import uvicorn; from crowddesk.bot.server.log_scrubbing import uvicorn_log_config; "
        f"uvicorn.run('tests.test_log_scrubbing:ok_app', port={port}, lifespan='off', "
        "log_config=uvicorn_log_config())"
    )
    with running([sys.executable, "-c", serve], {}) as log:
        url = f"http://127.0.0.1:{port}"
        httpx.get(f"{url}/desk/api/stream?token=s3cret-query-token&ticket=T-1")
        httpx.get(f"{url}/conversations/ana/tracker?include=all&access_token=s3cret-access")
        httpx.get(f"{url}/oops/cdk_LeakedBearerToken123")
        httpx.get(f"{url}/conversations/bo/tracker?%74oken=s3cret-encoded")

    written = "".join(log)
    assert not [secret for secret in SECRETS if secret in written]
    assert '"GET /desk/api/stream?token=[redacted]&ticket=[redacted] HTTP/1.1" 200' in written
    assert '"GET /conversations/ana/tracker?include=all&access_token=[redacted] HTTP/1.1" 200' in written
    assert '"GET /oops/[redacted] HTTP/1.1" 200' in written


def test_scrub_leaves_other_query_values_alone() -> None:
    assert scrub("/desk/api/tickets?status=open&tokens=3") == "/desk/api/tickets?status=open&tokens=3"
    assert scrub("/x?TOKEN=abc;access_token=def") == "/x?TOKEN=[redacted];access_token=[redacted]"


def test_a_web_chat_session_id_is_kept_out_of_logs() -> None:
    # The session id is the key to that customer's chat history (the widget's socket URL).
    line = '"GET /webhooks/webchat/ws?session=0b6f2c1e-8c4a-4f1e-9d3b-2a7c5e9f1d20 HTTP/1.1" 101'
    assert scrub(line) == '"GET /webhooks/webchat/ws?session=[redacted] HTTP/1.1" 101'


def test_crowddesk_run_logs_no_api_token_a_rasa_client_sends_in_the_url(
    demo_project: Path,
    demo_training: TrainResult,
    tmp_path: Path,
) -> None:
    port = free_port()
    command = [
        str(Path(sys.executable).with_name("crowddesk")),
        "run",
        "--project",
        str(demo_project),
        "--port",
        str(port),
        "--model",
        str(demo_training.model_dir),
        "--database-url",
        f"sqlite:///{tmp_path / 'crowddesk.db'}",
    ]
    with running(command, {"CROWDDESK_API_TOKEN": "s3cret-query-token"}) as log:
        url = f"http://127.0.0.1:{port}"
        tracker = httpx.get(f"{url}/conversations/ana/tracker", params={"token": "s3cret-query-token"})
        assert tracker.status_code == 200  # Rasa's `?token=` works, and is not logged
        stream = httpx.get(f"{url}/desk/api/stream", params={"token": "cdk_LeakedBearerToken123"})
        assert stream.status_code == 401

    written = "".join(log)
    assert "GET /conversations/ana/tracker?token=[redacted] HTTP/1.1" in written
    assert "s3cret-query-token" not in written and "LeakedBearerToken" not in written


@contextmanager
def running(command: list[str], env: dict[str, str]) -> Iterator[list[str]]:
    """Runs a server command until the block ends; yields its output lines, complete after the block."""
    process = subprocess.Popen(
        command,
        cwd=REPO,
        env={**os.environ, **env, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    lines: list[str] = []
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        for line in process.stdout:
            lines.append(line)
            if "Uvicorn running on" in line:  # logged once it listens
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not start:\n" + "".join(lines))
        else:
            raise RuntimeError("the server exited:\n" + "".join(lines))
        yield lines
    finally:
        process.terminate()
        lines.extend(process.communicate(timeout=60)[0].splitlines(keepends=True))
