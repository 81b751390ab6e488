"""A messaging platform stand-in for outbox and gateway tests: scripted refusals, then accepts."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from typing import Any, ClassVar

from crowddesk.connectors.base import ChannelConnector, DeliveryError
from crowddesk.connectors.types import OutboundMessage

GUARD_SECONDS = 30  # only a hung test ever waits this long


class FakePlatform(ChannelConnector):
    """Stands for a messaging platform: answers each send with the next scripted refusal, then
    accepts. Thread-safe, so workers on several event loops can share it."""

    name: ClassVar[str] = "fake"
    max_messages_per_second: ClassVar[float] = 1000.0

    def __init__(self, refusals: list[DeliveryError] | None = None) -> None:
        self.refusals = list(refusals or [])
        self.attempts = 0
        self.accepted: list[OutboundMessage] = []
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)

    @classmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> FakePlatform:
        return cls()

    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        with self._lock:
            self.attempts += 1
            if self.refusals:
                raise self.refusals.pop(0)
            self.accepted.append(message)
            self._changed.notify_all()

    def texts(self) -> list[str]:
        with self._lock:
            return [m.text for m in self.accepted]

    async def wait_for_accepted(self, count: int) -> None:
        def wait() -> bool:
            with self._changed:
                return self._changed.wait_for(lambda: len(self.accepted) >= count, GUARD_SECONDS)

        assert await asyncio.to_thread(wait), f"only {len(self.accepted)} of {count} messages arrived"
