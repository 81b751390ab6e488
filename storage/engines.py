"""Engines for the embedded (SQLite) and server (PostgreSQL) backends, configured the way
CrowdDesk's stores rely on: how a URL becomes an engine, and how SQLite serialises writers."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.pool import StaticPool

from crowddesk.errors import Rejected

logger = logging.getLogger(__name__)

_READ_ONLY = "crowddesk_read_only"  # execution option set by `reader`


class DatabaseURLError(Rejected, ValueError):
    """A database URL CrowdDesk cannot use. The message never repeats the URL: it may hold a password."""


# The only drivers installed with CrowdDesk; a bare backend name means its driver here.
_SUPPORTED_SCHEMES = {
    "sqlite": "sqlite+pysqlite",
    "sqlite+pysqlite": "sqlite+pysqlite",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def create_engine_for(url: str) -> Engine:
    """Open an engine for a SQLite or PostgreSQL URL, configured the way the stores rely on."""
    parsed = _parse_supported(url)
    if parsed.get_backend_name() == "sqlite":
        engine = _sqlite_engine(parsed)
    else:
        engine = create_engine(parsed, pool_pre_ping=True)
    logger.info("using database %s", parsed.render_as_string(hide_password=True))
    return engine


def reader(engine: Engine) -> Engine:
    """`engine` for transactions that only read. On SQLite they begin deferred: they read the
    last committed state (WAL) at once instead of waiting for the write lock, which a turn
    being stored holds. Writing through it can fail with "database is locked"."""
    return engine.execution_options(**{_READ_ONLY: True})


def _parse_supported(url: str) -> URL:
    try:
        parsed = make_url(url)
    except ArgumentError:
        # The text itself may hold a password, so it is not repeated here.
        raise DatabaseURLError("database URL is not of the form scheme://[user[:password]@]host/database") from None
    scheme = parsed.drivername
    if scheme not in _SUPPORTED_SCHEMES:
        supported = ", ".join(sorted(_SUPPORTED_SCHEMES))
        raise DatabaseURLError(f"unsupported database URL scheme {scheme!r}; use one of: {supported}")
    return parsed.set(drivername=_SUPPORTED_SCHEMES[scheme])


def _sqlite_engine(url: URL) -> Engine:
    if url.database in (None, "", ":memory:"):
        # One connection shared by all threads, or each checkout would see its own empty
        # database. It has one transaction state, so this suits serialised use (tests, scripts).
        engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False})
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url)
    event.listen(engine, "connect", _configure_sqlite_connection)
    event.listen(engine, "begin", _begin_immediate)
    return engine


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    # Hand BEGIN over to _begin_immediate: sqlite3's own BEGIN is deferred and skipped for SELECTs.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        # With WAL, NORMAL syncs at checkpoints, not at every commit: a committed turn survives
        # a crash of the server process, and only a power loss can undo the last few commits.
        # FULL's fsync per commit was most of a turn's write cost (benchmarks/README.md).
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def _begin_immediate(connection: Connection) -> None:
    # Taking the write lock up front is how SQLite serialises writers: a turn that reads the
    # last event seq and then appends cannot interleave with another, and no transaction fails
    # mid-way with SQLITE_BUSY when upgrading from reader to writer. Readers queue behind a
    # writer too (for at most the busy timeout), unless they come through `reader`;
    # deployments needing more concurrency use PostgreSQL.
    if connection.get_execution_options().get(_READ_ONLY):
        connection.exec_driver_sql("BEGIN")
        return
    connection.exec_driver_sql("BEGIN IMMEDIATE")


def check_reachable(engine: Engine) -> None:
    """Run a trivial query; the driver's `OperationalError` when the database cannot be reached."""
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
