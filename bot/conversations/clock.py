"""The clock background workers read (outbox delivery, SLA monitor); tests pass their own."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    """The real clock, timezone-aware."""
    return datetime.now(UTC)
