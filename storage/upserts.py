"""Inserts that are safe when another process inserts the same key at the same time."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from sqlalchemy import CursorResult, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import DeclarativeBase, Session


def insert_missing(session: Session, mapped: type[DeclarativeBase], rows: Sequence[Mapping[str, Any]]) -> int:
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
        dialect_insert(cast(Table, mapped.__table__)).on_conflict_do_nothing().execution_options(preserve_rowcount=True)
    )
    result = cast(CursorResult[Any], session.execute(statement, list(rows)))
    return result.rowcount


def upsert(session: Session, mapped: type[DeclarativeBase], row: Mapping[str, Any], key: Sequence[str]) -> None:
    """INSERT `row`, or UPDATE its other columns where a row with the same `key` columns exists;
    safe against a concurrent write of the same key (the last one wins)."""
    on_postgresql = session.get_bind().dialect.name == "postgresql"
    dialect_insert = postgresql.insert if on_postgresql else sqlite.insert
    statement = dialect_insert(cast(Table, mapped.__table__)).values(dict(row))
    changed = {column: statement.excluded[column] for column in row if column not in key}
    session.execute(statement.on_conflict_do_update(index_elements=list(key), set_=changed))
