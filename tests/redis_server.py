"""A Redis server of the test's own (Debian's `redis-server`, the real one), on a free port, that a
test can stop and start again: what a Redis restart or failover looks like to CrowdDesk. Like the
machine's Redis, it keeps nothing on disk, so a restart forgets every key."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from tests.demo_bot import free_port

STARTUP_SECONDS = 10.0


class RedisServer:
    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("the scale-out tests need Debian's redis-server (apt-get install redis-server)", pytrace=False)
        self.binary = binary
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self._process = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start on port {self.port}")

    def client(self) -> redis.Redis:
        """A client of this server, to look at the keys CrowdDesk keeps there."""
        return redis.Redis.from_url(self.url)

    def stop(self) -> None:
        """Kill the server (SIGKILL: no goodbye to its clients)."""
        if self._process is not None:
            self._process.kill()
            self._process.wait()
            self._process = None


def _running_redis() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from _running_redis()


@pytest.fixture(scope="module")
def module_redis_server() -> Iterator[RedisServer]:
    """One Redis for a test module's long-lived server processes."""
    yield from _running_redis()
