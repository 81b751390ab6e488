"""How long tickets waited: percentiles and shares within a target, from the durations the
database returns (numpy: SQLite has no percentile function, and the durations are one column)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np

TARGETS_MINUTES = (30, 60)


@dataclass(frozen=True)
class Durations:
    """`count` durations: median and 90th percentile in minutes, share within 30 and 60 minutes
    (percentiles interpolated as PostgreSQL's percentile_cont does; None when there are none)."""

    count: int
    p50_minutes: float | None
    p90_minutes: float | None
    within_30_min: float | None
    within_60_min: float | None

    @classmethod
    def between(cls, spans: Sequence[tuple[datetime, datetime]]) -> Durations:
        """The durations from each start to its end."""
        if not spans:
            return cls(0, None, None, None, None)
        minutes = np.array([(end - start).total_seconds() / 60 for start, end in spans])
        p50, p90 = (round(float(value), 2) for value in np.percentile(minutes, [50, 90]))
        within_30, within_60 = (round(float(np.mean(minutes <= target)), 4) for target in TARGETS_MINUTES)
        return cls(len(minutes), p50, p90, within_30, within_60)

    def as_dict(self) -> dict[str, Any]:
        return {
            "count": self.count,
            "p50_minutes": self.p50_minutes,
            "p90_minutes": self.p90_minutes,
            "within_30_min": self.within_30_min,
            "within_60_min": self.within_60_min,
        }
