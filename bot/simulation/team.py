"""Agents working the hand-off queue: first come, first served, a few conversations at a time
each, during their shift; how long they take to answer and to resolve is drawn from lognormal
distributions (most replies quick, a long tail)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np


@dataclass(frozen=True)
class Staffing:
    """How the team works: its size, shift (UTC hours, every day), conversations each agent holds
    at once, and the median minutes to the first reply once a ticket is taken and to resolve it
    after that reply."""

    agents: int
    shift_start_hour: int = 8
    shift_end_hour: int = 20
    concurrent: int = 3
    reply_minutes: float = 3.0
    resolve_minutes: float = 15.0
    spread: float = 0.6  # the lognormals' sigma

    def __post_init__(self) -> None:
        if self.agents < 1 or self.concurrent < 1:
            raise ValueError("a team needs at least one agent holding at least one conversation")
        if not 0 <= self.shift_start_hour < self.shift_end_hour <= 24:
            raise ValueError("a shift starts and ends within one day (0 to 24)")


@dataclass(frozen=True)
class Handling:
    """What a person did with one ticket: who (0 to agents - 1) took it, when, when they first
    replied and when they resolved it."""

    agent: int
    taken_at: datetime
    replied_at: datetime
    resolved_at: datetime


class Team:
    """The queue's servers; `take` tickets in the order they were opened."""

    def __init__(self, rng: np.random.Generator, staffing: Staffing) -> None:
        self.rng, self.staffing = rng, staffing
        # When each agent's each conversation slot is next free; None: free from the start.
        self.free_at: list[list[datetime | None]] = [[None] * staffing.concurrent for _ in range(staffing.agents)]

    def take(self, opened_at: datetime) -> Handling:
        """The slot free soonest (on shift) takes the ticket opened at `opened_at`; among slots
        free as soon, the agent holding fewest conversations then, so the work is shared."""

        def busy(agent: int, moment: datetime) -> int:
            return sum(1 for free in self.free_at[agent] if free is not None and free > moment)

        starts = [
            (self.on_shift(max(opened_at, free) if free else opened_at), agent, slot)
            for agent, slots in enumerate(self.free_at)
            for slot, free in enumerate(slots)
        ]
        soonest = min(start for start, _, _ in starts)
        candidates = [(busy(agent, soonest), agent, slot) for start, agent, slot in starts if start == soonest]
        fewest = min(load for load, _, _ in candidates)
        choices = [(agent, slot) for load, agent, slot in candidates if load == fewest]
        agent, slot = choices[int(self.rng.integers(len(choices)))]
        replied_at = self.on_shift(soonest + self._minutes(self.staffing.reply_minutes))
        resolved_at = self.on_shift(replied_at + self._minutes(self.staffing.resolve_minutes))
        self.free_at[agent][slot] = resolved_at
        return Handling(agent, soonest, replied_at, resolved_at)

    def on_shift(self, moment: datetime) -> datetime:
        """`moment` if the team is at work then, else the start of its next shift."""
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        start = day + timedelta(hours=self.staffing.shift_start_hour)
        end = day + timedelta(hours=self.staffing.shift_end_hour)
        if moment < start:
            return start
        return moment if moment < end else start + timedelta(days=1)

    def _minutes(self, median: float) -> timedelta:
        return timedelta(minutes=float(self.rng.lognormal(np.log(median), self.staffing.spread)))
