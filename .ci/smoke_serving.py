"""Smoke test of a serving-only install (no PyTorch) on another Python: the venv at argv[1] serves
the trained project at argv[2] and answers a question over REST.

    python .ci/smoke_serving.py VENV PROJECT

Standard library only, so any interpreter runs it.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

STARTUP_SECONDS = 300
QUESTION = "my card still hasn't arrived"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_health(url: str, server: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode} before it was healthy")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            time.sleep(1)
    raise SystemExit(f"{url} did not answer 200 within {STARTUP_SECONDS} s")


def main(venv: Path, project: Path) -> None:
    python = venv / "bin" / "python"
    version = subprocess.run([str(python), "--version"], capture_output=True, text=True, check=True).stdout.strip()
    if subprocess.run([str(python), "-c", "import torch"], check=False, capture_output=True).returncode == 0:
        raise SystemExit(f"{version}: torch is installed; a serving-only install must not need it")
    port = free_port()
    with tempfile.TemporaryDirectory() as state:
        env = {
            **os.environ,
            "CROWDDESK_DATABASE_URL": f"sqlite:///{state}/smoke.db",
            "CROWDDESK_API_TOKEN": "smoke-test-token",
        }
        log = Path(state) / "server.log"
        with log.open("wb") as out:
            server = subprocess.Popen(
                [str(venv / "bin" / "crowddesk"), "run", "--project", str(project), "--port", str(port)],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        try:
            wait_for_health(f"http://127.0.0.1:{port}/health", server)
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/webhooks/rest/webhook",
                data=json.dumps({"sender": "smoke", "message": QUESTION}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                replies = json.load(response)
            if not replies or not replies[0].get("text"):
                raise SystemExit(f"{version}: no reply to {QUESTION!r}: {replies}")
            print(f"{version}: served without torch; {QUESTION!r} -> {replies[0]['text'][:80]!r}")
        except BaseException:
            print(log.read_text(errors="replace")[-3000:], file=sys.stderr)
            raise
        finally:
            server.terminate()
            server.wait(timeout=30)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
