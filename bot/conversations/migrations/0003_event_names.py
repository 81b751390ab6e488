"""Events' names as a column, and the indexes the scorecard needs at a million conversations:
events of a type (actions by name) in a period, with their conversation, so that counting them
for one channel reads the index alone.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06

Reading an action's name out of the JSON of every event in a period cost seconds per figure on
10M events (benchmarks/README.md, "Scorecard at scale"). The upgrade copies the names of the
events already stored, one UPDATE over the whole table: on a large database, expect minutes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_events_type_timestamp_conversation", "events", ["type", "timestamp", "conversation_id"]),
    ("ix_events_type_name_timestamp_conversation", "events", ["type", "name", "timestamp", "conversation_id"]),
)
REPLACED = ("ix_events_type_timestamp", "events", ["type", "timestamp"])  # 0002's, a prefix of the first
_events = sa.table("events", sa.column("name", sa.Text()), sa.column("data", sa.JSON()))


def upgrade() -> None:
    database = sa.inspect(op.get_bind())
    # A database adopted by 0001 from the tables the code declares may have them already.
    if "name" not in {column["name"] for column in database.get_columns("events")}:
        op.add_column("events", sa.Column("name", sa.Text(), nullable=True))
        op.execute(sa.update(_events).values(name=_events.c.data["name"].as_string()))
    for name, table, columns in INDEXES:
        if name not in {index["name"] for index in database.get_indexes(table)}:
            op.create_index(name, table, columns)
    if REPLACED[0] in {index["name"] for index in database.get_indexes("events")}:
        op.drop_index(REPLACED[0], table_name=REPLACED[1])


def downgrade() -> None:
    op.create_index(*REPLACED)
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    # SQLite drops a column by copying the table: batch mode does that.
    with op.batch_alter_table("events") as events:
        events.drop_column("name")
