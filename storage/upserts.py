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
