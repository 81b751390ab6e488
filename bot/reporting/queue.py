"""The queue over a period: how many tickets were waiting for a person on each hour, from the
queue at the period's start and the tickets joining and leaving it hour by hour (counted by the
database; only their running sum is added up here)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from crowddesk.bot.reporting.period import Period

HOUR = timedelta(hours=1)
HOUR_KEY = "%Y-%m-%d %H:00"  # as the database names an hour (rows.py)


@dataclass(frozen=True)
class QueueLength:
    """Tickets waiting for a person's first reply at `moments[i]`, each full hour (UTC) after the
    period's start up to its end."""

    moments: tuple[datetime, ...]
    waiting: tuple[int, ...]

    @classmethod
    def of(cls, period: Period, at_start: int, joined: Mapping[str, int], left: Mapping[str, int]) -> QueueLength:
        """The queue from `at_start` tickets and, per hour key, those that `joined` and `left` it."""
        first = period.since.replace(minute=0, second=0, microsecond=0)
        hours = [first + n * HOUR for n in range(math.ceil((period.until - first) / HOUR))]
        keys = [hour.strftime(HOUR_KEY) for hour in hours]
        changes = [joined.get(key, 0) - left.get(key, 0) for key in keys]
        levels = at_start + np.cumsum(changes, dtype=np.int64)
        return cls(tuple(min(hour + HOUR, period.until) for hour in hours), tuple(int(level) for level in levels))

    @property
    def peak(self) -> int | None:
        """The longest the queue was on the hour; None for a period shorter than an hour's turn."""
        return max(self.waiting, default=None)

    @property
    def peak_at(self) -> datetime | None:
        """The first moment the queue was at its peak."""
        return self.moments[self.waiting.index(max(self.waiting))] if self.waiting else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "peak": self.peak,
            "peak_at": None if self.peak_at is None else self.peak_at.isoformat(),
            "waiting": {moment.isoformat(): waiting for moment, waiting in zip(self.moments, self.waiting)},
        }
