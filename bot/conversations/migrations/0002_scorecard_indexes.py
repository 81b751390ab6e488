"""Indexes the scorecard's period queries filter on: conversations and tickets by creation time,
events by type and time.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_conversations_created_at", "conversations", ["created_at"]),
    ("ix_events_type_timestamp", "events", ["type", "timestamp"]),
    ("ix_handoffs_created_at", "handoffs", ["created_at"]),
)


def upgrade() -> None:
    database = sa.inspect(op.get_bind())
    for name, table, columns in INDEXES:
        # A database adopted by 0001 from the tables the code declares may have them already.
        if name not in {index["name"] for index in database.get_indexes(table)}:
            op.create_index(name, table, columns)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
