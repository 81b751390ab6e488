"""Shared fixtures. Tests never reach beyond this machine: see `offline`."""

from __future__ import annotations

import ipaddress
import socket
from typing import Any

import pytest

pytest_plugins = [
    "tests.db_fixtures",
    "tests.demo_bot",
    "tests.known_week",
    "tests.nlu_fixtures",
    "tests.browser",
    "tests.slack_bot",
    "tests.meta_bot",
    "tests.rasa_corpus",
    "tests.redis_server",
]

_real_connect = socket.socket.connect


def _loopback_only(self: socket.socket, address: Any) -> Any:
    if self.family in (socket.AF_INET, socket.AF_INET6):
        host = address[0]
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise OSError(f"tests may only connect to loopback addresses, not {host!r}")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail any test that tries to reach the network (a model download, a real platform API)."""
    monkeypatch.setattr(socket.socket, "connect", _loopback_only)
