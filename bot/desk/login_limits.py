"""Back-off for failed sign-ins, per account id and per client address.

After `threshold` failures with no more than `window` between them, a key is locked for
`first_lock`, doubled by each further failure (at most `window`); a success clears the account's
count, never the address's. Refused attempts are not counted, so a locked account can't be
kept locked for longer by hammering it. Counters live in the database (one row per key), so
every server process sharing it enforces the same limits; rows are forgotten `window` after
their last failure. Unknown ids are counted like real ones: a 429 says nothing about which exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, Integer, String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from crowddesk.storage.columns import UtcDateTime
from crowddesk.storage.engines import reader
from crowddesk.storage.upserts import insert_missing


class LoginLimitTables(DeclarativeBase):
    """The failure counters, created with the others by `init_schema`."""


class LoginFailureRow(LoginLimitTables):
    """Recent failed sign-ins of one account id or one client address."""

    __tablename__ = "login_failures"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)  # "account:<id>" | "address:<ip>"
    failures: Mapped[int] = mapped_column(Integer)
    last_failure_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


@dataclass(frozen=True)
class Limit:
    """How many failures a key may have before it is locked, and for how long."""

    threshold: int
    first_lock: timedelta = timedelta(minutes=1)
    window: timedelta = timedelta(minutes=15)

    def locked_until(self, failures: int, last_failure_at: datetime) -> datetime | None:
        """When the lock of a key with these failures ends; None when it is not locked."""
        if failures < self.threshold:
            return None
        # The exponent is capped before the power, so a flood's count can't overflow it.
        doublings = min(failures - self.threshold, 16)
        return last_failure_at + min(self.first_lock * 2**doublings, self.window)


ACCOUNT_LIMIT = Limit(threshold=5)
ADDRESS_LIMIT = Limit(threshold=20)  # one office behind a NAT shares an address


@dataclass(frozen=True)
class Refusal:
    """Why a sign-in is refused before its password is checked, and for how many seconds."""

    reason: str
    retry_after: int


class LoginLimiter:
    """Checks and records sign-in failures by account id and client address."""

    def __init__(self, engine: Engine, account: Limit = ACCOUNT_LIMIT, address: Limit = ADDRESS_LIMIT) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._reads = sessionmaker(reader(engine), expire_on_commit=False)
        self._limits = {"account": account, "address": address}

    def refusal(self, agent_id: str, address: str, now: datetime | None = None) -> Refusal | None:
        """A Refusal while the account or the address is locked, else None."""
        now = now or datetime.now(UTC)
        with self._reads() as session:
            for kind, key in _keys(agent_id, address):
                row = session.get(LoginFailureRow, key)
                if row is None or now - row.last_failure_at > self._limits[kind].window:
                    continue
                until = self._limits[kind].locked_until(row.failures, row.last_failure_at)
                if until is not None and until > now:
                    seconds = math.ceil((until - now).total_seconds())
                    return Refusal(f"too many failed sign-ins from this {kind}; try again in {seconds} s", seconds)
        return None

    def failed(self, agent_id: str, address: str, now: datetime | None = None) -> None:
        """Count a wrong password (or unknown id) against both keys; forget stale counters."""
        now = now or datetime.now(UTC)
        keys = _keys(agent_id, address)
        with self._sessions.begin() as session:
            insert_missing(
                session, LoginFailureRow, [{"key": key, "failures": 0, "last_failure_at": now} for _, key in keys]
            )
            for kind, key in keys:
                row = session.get_one(LoginFailureRow, key, with_for_update=True)  # inserted above
                stale = now - row.last_failure_at > self._limits[kind].window
                row.failures = 1 if stale else row.failures + 1
                row.last_failure_at = now
            oldest = max(limit.window for limit in self._limits.values())
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.last_failure_at < now - oldest))

    def succeeded(self, agent_id: str) -> None:
        """A correct password clears the account's failures (its address keeps its count)."""
        with self._sessions.begin() as session:
            session.execute(delete(LoginFailureRow).where(LoginFailureRow.key == f"account:{agent_id}"))


def _keys(agent_id: str, address: str) -> list[tuple[str, str]]:
    return [("account", f"account:{agent_id}"), ("address", f"address:{address}")]
