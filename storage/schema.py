"""Creating tables, and bringing tables an older CrowdDesk created up to its newer columns: what
the first revision of every migration history does (see migrations.py)."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from contextlib import nullcontext

from sqlalchemy import Connection, Engine, MetaData, inspect

logger = logging.getLogger(__name__)


def create_tables(bind: Engine | Connection, metadatas: Iterable[MetaData]) -> None:
    """Create every missing table of `metadatas`, and add the nullable columns they lack."""
    for metadata in metadatas:
        metadata.create_all(bind)
        add_missing_columns(bind, metadata)


def add_missing_columns(bind: Engine | Connection, metadata: MetaData) -> list[str]:
    """Add nullable columns a newer CrowdDesk declares to tables an older one created.

    `create_all` only creates missing tables; the releases before migrations kept schema changes
    additive (new nullable columns), so this brings their tables up. Returns the added
    `table.column` names. A connection's open transaction is used as it is.
    """
    added = []
    with bind.begin() if isinstance(bind, Engine) else nullcontext(bind) as connection:
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
                kind = column.type.compile(dialect=connection.dialect)
                connection.exec_driver_sql(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}')
                added.append(f"{table.name}.{column.name}")
    if added:
        logger.info("added columns %s", ", ".join(added))
    return added
