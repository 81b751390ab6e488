"""The rating a customer gives after pressing Helpful on an answer: the bot's own CSAT.

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


def upgrade() -> None:
    # A database adopted by 0001 from the tables the code declares may have it already.
    if "rating" not in {column["name"] for column in sa.inspect(op.get_bind()).get_columns("kb_feedback")}:
        op.add_column("kb_feedback", sa.Column("rating", sa.SmallInteger(), nullable=True))


def downgrade() -> None:
    # SQLite drops a column by copying the table: batch mode does that.
    with op.batch_alter_table("kb_feedback") as table:
        table.drop_column("rating")
