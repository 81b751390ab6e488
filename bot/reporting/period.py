"""The stretch of time a scorecard covers, the channel it may be limited to, and how its
figures are broken down."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from crowddesk.errors import Rejected

Dimension = Literal["day", "week", "channel", "intent", "agent"]
DIMENSIONS: tuple[Dimension, ...] = ("day", "week", "channel", "intent", "agent")
DEFAULT_LENGTH = timedelta(days=7)


@dataclass(frozen=True)
class Period:
    """[since, until) in UTC, optionally one channel's conversations only."""

    since: datetime
    until: datetime
    channel: str | None = None

    def __post_init__(self) -> None:
        if self.since.tzinfo is None or self.until.tzinfo is None:
            raise ValueError("a period's bounds must be timezone-aware")
        if self.until <= self.since:
            raise Rejected(f"the period ends ({self.until.isoformat()}) before it starts ({self.since.isoformat()})")

    @property
    def length(self) -> timedelta:
        return self.until - self.since

    def previous(self) -> Period:
        """The period of the same length just before this one, same channel: the comparison."""
        return replace(self, since=self.since - self.length, until=self.since)

    def as_dict(self) -> dict[str, str | None]:
        return {"since": self.since.isoformat(), "until": self.until.isoformat(), "channel": self.channel}


def period_from(since: str | None, until: str | None, channel: str | None, now: datetime) -> Period:
    """The period ISO dates or datetimes give (UTC unless they say otherwise); `until` defaults to
    `now`, `since` to seven days before `until`."""
    end = _moment(until, "--until") if until else now
    start = _moment(since, "--since") if since else end - DEFAULT_LENGTH
    return Period(start, end, channel or None)


def dimension(text: str | None) -> Dimension | None:
    """`text` as a breakdown dimension; Rejected when it names none."""
    if text is None:
        return None
    if text not in DIMENSIONS:
        raise Rejected(f"cannot break the scorecard down by {text!r}; one of: {', '.join(DIMENSIONS)}")
    return text


def _moment(text: str, option: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Rejected(f"{option} {text!r} is not an ISO date (2026-11-30) or date and time") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
