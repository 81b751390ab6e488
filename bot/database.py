"""Engines for the embedded (SQLite) and server (PostgreSQL) backends, and what stores share."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, DateTime, Engine, MetaData, create_engine, event, inspect
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import URL, Connection, Dialect, make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

if TYPE_CHECKING:
    from crowddesk.bot.project import Project

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite:///.crowddesk/crowddesk.db"
_READ_ONLY = "crowddesk_read_only"  # execution option set by `reader`

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


def database_url_for(project: Project, override: str | None = None) -> str:
    """Explicit URL, then endpoints.yml / CROWDDESK_DATABASE_URL, then the embedded SQLite file."""
    if override:
        return override
    if project.endpoints.database_url:
        return project.endpoints.database_url
    return f"sqlite:///{(project.root / '.crowddesk' / 'crowddesk.db').resolve()}"


def open_database(project: Project, database_url: str | None = None) -> Engine:
    """The project's database with every table created."""
    database = create_engine_for(database_url_for(project, database_url))
    init_schema(database)
    return database


def init_schema(engine: Engine) -> None:
    """Create every table of the conversation and knowledge-base stores that is missing."""
    # Imported here, not at the top: the store modules import UtcDateTime and
    # insert_missing from this module.
    from crowddesk.bot.agents import AgentTables
    from crowddesk.bot.audit import AuditTables
    from crowddesk.bot.login_limits import LoginLimitTables
    from crowddesk.bot.store import ConversationTables
    from crowddesk.bot.stream_tickets import StreamTicketTables
    from crowddesk.knowledge_base.store import KnowledgeBaseTables

    for tables in (ConversationTables, KnowledgeBaseTables, AgentTables, AuditTables,
                   LoginLimitTables, StreamTicketTables):
        tables.metadata.create_all(engine)
        add_missing_columns(engine, tables.metadata)


def add_missing_columns(engine: Engine, metadata: MetaData) -> list[str]:
    """Add nullable columns a newer CrowdDesk declares to tables an older one created.

    `create_all` only creates missing tables; schema changes are kept additive (new nullable
    columns) so this is the whole migration. Returns the added `table.column` names.
    """
    added = []
    with engine.begin() as connection:
        existing = inspect(connection)
        for table in metadata.sorted_tables:
            present = {column["name"] for column in existing.get_columns(table.name)}
            for column in table.columns:
                if column.name in present:
                    continue
                if not column.nullable:
                    raise RuntimeError(
                        f"table {table.name} lacks non-nullable column {column.name}; "
                        "recreate the database or migrate it by hand"
                    )
                kind = column.type.compile(dialect=engine.dialect)
                connection.exec_driver_sql(
                    f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'
                )
                added.append(f"{table.name}.{column.name}")
    if added:
        logger.info("added columns %s", ", ".join(added))
    return added


def insert_missing(
    session: Session, mapped: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]
) -> int:
    """INSERT `rows`, skipping those whose primary or unique key already exists.

    Returns how many rows were inserted. Safe against concurrent inserts of the same key on
    both backends, which a SELECT-then-INSERT is not.
    """
    if not rows:
        return 0
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if on_postgresql else sqlite.insert
    # The Core table, not the ORM class: an ORM bulk INSERT does not report its rowcount,
    # and without preserve_rowcount psycopg's INSERT rowcount is not kept either.
    statement = (
        dialect_insert(mapped.__table__)
        .on_conflict_do_nothing()
        .execution_options(preserve_rowcount=True)
    )
    result = cast(CursorResult[Any], session.execute(statement, list(rows)))
    return result.rowcount


class UtcDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on both backends (SQLite would hand back naive values)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; pass a timezone-aware one")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


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
        raise ValueError(
            "database URL is not of the form scheme://[user[:password]@]host/database"
        ) from None
    scheme = parsed.drivername
    if scheme not in _SUPPORTED_SCHEMES:
        supported = ", ".join(sorted(_SUPPORTED_SCHEMES))
        raise ValueError(f"unsupported database URL scheme {scheme!r}; use one of: {supported}")
    return parsed.set(drivername=_SUPPORTED_SCHEMES[scheme])


def _sqlite_engine(url: URL) -> Engine:
    if url.database in (None, "", ":memory:"):
        # One connection shared by all threads, or each checkout would see its own empty
        # database. It has one transaction state, so this suits serialised use (tests, scripts).
        engine = create_engine(
            url, poolclass=StaticPool, connect_args={"check_same_thread": False}
        )
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
