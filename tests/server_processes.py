"""Real `crowddesk run` server processes for the scale-out tests: started on free ports, waited
for until /health answers 200, killed (gently, or with SIGKILL as a crash would) and restarted,
with their output kept in a log file a failing test prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.demo_bot import free_port

# Loading the model takes a while when two processes start at once on two busy cores.
STARTUP_SECONDS = 120.0
STOP_SECONDS = 30.0
CROWDDESK = str(Path(sys.executable).with_name("crowddesk"))


class ServerProcess:
    """One `crowddesk run` process; `start` again after `kill` restarts it on the same port."""

    def __init__(self, name: str, arguments: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.command = [CROWDDESK, "run", *arguments, "--port", str(self.port)]
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1", **env}
        self.log_path = log_dir / f"{name}.log"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the process; `wait_until_healthy` waits until it serves."""
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def wait_until_healthy(self) -> None:
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"server {self.name} exited while starting:\n{self.log()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass  # not listening yet
            time.sleep(0.5)
        raise RuntimeError(f"server {self.name} did not become healthy in {STARTUP_SECONDS:.0f} s:\n{self.log()}")

    def kill(self) -> None:
        """SIGKILL: the process gets no chance to finish a turn or release a lock (a crash)."""
        if self._process is not None:
            self._process.send_signal(signal.SIGKILL)
            self._process.wait()
            self._process = None

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it does not exit in time."""
        if self._process is None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()
        self._process = None

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""


def start_all(servers: list[ServerProcess]) -> None:
    """Start `servers` together (their model loads overlap) and wait until each serves."""
    for server in servers:
        server.start()
    for server in servers:
        server.wait_until_healthy()
