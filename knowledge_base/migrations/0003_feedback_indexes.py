"""Indexes on Helpful / Not helpful presses: a customer's presses (by sender: their export and
erasure), and the presses of a period (the scorecard).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_kb_feedback_sender_id", "kb_feedback", ["sender_id"]),
    ("ix_kb_feedback_created_at", "kb_feedback", ["created_at"]),
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
