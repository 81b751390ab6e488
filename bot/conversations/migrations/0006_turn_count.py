"""`conversations.turns`: how many turns each conversation has stored, which fences a turn whose
lock (shared by several server processes through Redis) lapsed while it ran.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    columns = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("conversations")}
    if "turns" in columns:
        return  # a database adopted by 0001 from the tables the code declares
    # Existing conversations start counting from 0: only the count's changes matter.
    with op.batch_alter_table("conversations") as table:
        table.add_column(sa.Column("turns", sa.Integer(), nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("conversations") as table:
        table.drop_column("turns")
