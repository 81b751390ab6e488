"""The `channel_memory` table: facts channel connectors keep about customers between messages
(the buttons offered as a numbered list, a commenter's private identity), shared by every server
process.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crowddesk.storage.columns import UtcDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("channel_memory"):
        return  # a database adopted by 0001 from the tables the code declares
    op.create_table(
        "channel_memory",
        sa.Column("channel", sa.String(length=64), nullable=False),
        sa.Column("sender_id", sa.String(length=128), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("value", sa.JSON(), nullable=False),
        sa.Column("updated_at", UtcDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("channel", "sender_id", "key"),
    )
    op.create_index("ix_channel_memory_updated_at", "channel_memory", ["updated_at"])


def downgrade() -> None:
    op.drop_index("ix_channel_memory_updated_at", table_name="channel_memory")
    op.drop_table("channel_memory")
