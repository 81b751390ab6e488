"""How long tickets waited: percentiles, shares within a target and a histogram, from the
durations the database returns (numpy: SQLite has no percentile function, and the durations are
one column)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

TARGETS_MINUTES = (30, 60)
# Upper edges (minutes, included as in the shares within a target) of the histogram's buckets:
# the targets are edges, so the buckets up to one add up to the share within it.
WAIT_EDGES_MINUTES = (15, 30, 45, 60, 120, 240)


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
    def of(cls, waits: Sequence[float]) -> Durations:
        """The figures of `waits` (minutes)."""
        if not waits:
            return cls(0, None, None, None, None)
        minutes = np.asarray(waits, dtype=float)
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


@dataclass(frozen=True)
class WaitHistogram:
    """Tickets by how long their first reply took, and those still waiting: `counts[i]` waited
    more than WAIT_EDGES_MINUTES[i - 1] and at most [i] minutes; the last, more than the last edge."""

    counts: tuple[int, ...]
    still_waiting: int

    @classmethod
    def of(cls, waits: Sequence[float], still_waiting: int) -> WaitHistogram:
        """The histogram of `waits` (minutes), next to `still_waiting`."""
        buckets = np.searchsorted(WAIT_EDGES_MINUTES, np.asarray(waits, dtype=float), side="left")
        counts = np.bincount(buckets, minlength=len(WAIT_EDGES_MINUTES) + 1)
        return cls(tuple(int(count) for count in counts), still_waiting)

    def as_dict(self) -> dict[str, Any]:
        return {
            "edges_minutes": list(WAIT_EDGES_MINUTES),
            "counts": list(self.counts),
            "still_waiting": self.still_waiting,
        }
