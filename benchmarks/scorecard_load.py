"""Bulk-loading the scorecard benchmark's synthetic traffic: a database built by the project's own
migrations, then COPY on PostgreSQL and large executemany transactions on SQLite."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, make_url

from benchmarks.scorecard_data import (
    CONVERSATION_COLUMNS,
    EVENT_COLUMNS,
    FEEDBACK_COLUMNS,
    HANDOFF_COLUMNS,
    KB_ENTRIES,
    Chunk,
    chunks,
    conversation_count,
)
from crowddesk.bot.server.database import init_schema
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.storage.columns import UtcDateTime
from crowddesk.storage.engines import create_engine_for

Progress = Callable[[str], None]
# Table, its columns as the generator fills them, and the Chunk attribute holding its rows.
TABLES = (
    ("conversations", CONVERSATION_COLUMNS, "conversations"),
    ("events", EVENT_COLUMNS, "events"),
    ("handoffs", HANDOFF_COLUMNS, "handoffs"),
    ("kb_feedback", FEEDBACK_COLUMNS, "feedback"),
)


def create_postgres_database(server_url: str, name: str) -> str:
    """A new, empty database `name` on the server (dropped first if it exists); its URL."""
    _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)', f'CREATE DATABASE "{name}"')
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def drop_postgres_database(server_url: str, name: str) -> None:
    """Drop the database `name` from the server, if it is there."""
    _on_server(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _on_server(server_url: str, *statements: str) -> None:
    """Run `statements` on the server's maintenance database, outside a transaction (as CREATE
    and DROP DATABASE must)."""
    server = make_url(server_url)
    admin = create_engine_for(server.set(database="postgres").render_as_string(hide_password=False))
    try:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            for statement in statements:
                connection.exec_driver_sql(statement)
    finally:
        admin.dispose()


def load(url: str, scale: float, progress: Progress) -> tuple[Engine, dict[str, Any]]:
    """The database at `url` migrated to the current schema and filled with `scale` × 1M
    conversations; the engine and what was loaded (rows per table, seconds)."""
    if url.startswith("sqlite"):
        database = make_url(url).database
        if database:
            for leftover in Path(database).parent.glob(Path(database).name + "*"):
                leftover.unlink()  # the file and its -wal / -shm
    engine = create_engine_for(url)
    started = time.perf_counter()
    init_schema(engine)
    _add_kb_entries(engine)
    rows = dict.fromkeys((table for table, _, _ in TABLES), 0)
    write = _copy if engine.dialect.name == "postgresql" else _insert_many
    total = conversation_count(scale)
    for chunk in chunks(scale):
        write(engine, chunk)
        for table, _, attribute in TABLES:
            rows[table] += len(getattr(chunk, attribute))
        elapsed = time.perf_counter() - started
        progress(
            f"  {engine.dialect.name}: {rows['conversations']:,} / {total:,} conversations, "
            f"{rows['events']:,} events, {elapsed:.0f} s"
        )
    _finish(engine)
    return engine, {"rows": rows, "load_s": round(time.perf_counter() - started, 1)}


def _add_kb_entries(engine: Engine) -> None:
    store = KnowledgeBaseStore(engine)
    for entry_id in KB_ENTRIES:
        topic = entry_id.rsplit("/", 1)[-1].replace("-", " ")
        store.upsert(KBEntry(id=entry_id, questions=[f"What about {topic}?"], answer=f"All about {topic}."))


def _copy(engine: Engine, chunk: Chunk) -> None:
    """COPY each table's rows (psycopg adapts the datetimes and text), in one transaction."""
    connection = engine.raw_connection()
    try:
        with connection.driver_connection.cursor() as cursor:  # type: ignore[union-attr]
            for table, columns, attribute in TABLES:
                with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                    for row in getattr(chunk, attribute):
                        copy.write_row(row)
        connection.commit()
    finally:
        connection.close()


def _insert_many(engine: Engine, chunk: Chunk) -> None:
    """One executemany per table in one transaction, datetimes stored as the column type stores them."""
    connection = engine.raw_connection()
    try:
        cursor = connection.cursor()
        cursor.execute("BEGIN")
        for table, columns, attribute in TABLES:
            placeholders = ", ".join("?" for _ in columns)
            cursor.executemany(
                f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({placeholders})",
                _stored(engine, getattr(chunk, attribute)),
            )
        cursor.execute("COMMIT")
    finally:
        connection.close()


def _stored(engine: Engine, rows: Iterable[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """`rows` with their datetimes as UtcDateTime writes them on this database (text on SQLite)."""
    as_stored = UtcDateTime().bind_processor(engine.dialect)
    assert as_stored is not None
    return [tuple(as_stored(value) if isinstance(value, datetime) else value for value in row) for row in rows]


def _finish(engine: Engine) -> None:
    """PostgreSQL: the id sequences past the copied ids, and the statistics and visibility map a
    running database has from autovacuum. SQLite is left as CrowdDesk leaves it (no ANALYZE)."""
    if engine.dialect.name != "postgresql":
        return
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        for table in ("conversations", "events"):
            connection.exec_driver_sql(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )
        connection.exec_driver_sql("VACUUM ANALYZE")
