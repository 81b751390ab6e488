"""Creating tables, and bringing tables an older CrowdDesk created up to its newer columns."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from sqlalchemy import Engine, MetaData, inspect

logger = logging.getLogger(__name__)


def create_tables(engine: Engine, metadatas: Iterable[MetaData]) -> None:
    """Create every missing table of `metadatas`, and add the nullable columns they lack."""
    for metadata in metadatas:
        metadata.create_all(engine)
        add_missing_columns(engine, metadata)


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
