"""Agent accounts and tokens, sign-in failure counters, event-stream tickets.

Revision ID: 0001
Revises:
Create Date: 2026-12-06

The tables as the last release without migrations created them. The upgrade creates the missing
ones and adds the nullable columns older releases lacked, so a database those releases created
is adopted with its data (see crowddesk.storage.migrations).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crowddesk.storage.schema import create_tables

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Written out rather than taken from the code's models: those move on with later revisions,
# this revision keeps describing where the history starts.
_tables = sa.MetaData()

sa.Table(
    "agents",
    _tables,
    sa.Column("id", sa.String(length=64), nullable=False),
    sa.Column("name", sa.String(length=128), nullable=False),
    sa.Column("role", sa.String(length=16), nullable=False),
    sa.Column("password_hash", sa.String(length=256), nullable=True),
    sa.Column("active", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
)

sa.Table(
    "agent_tokens",
    _tables,
    sa.Column("token_hash", sa.String(length=64), nullable=False),
    sa.Column("agent_id", sa.String(length=64), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("token_hash"),
    sa.Index("ix_agent_tokens_agent_id", "agent_id"),
)

sa.Table(
    "login_failures",
    _tables,
    sa.Column("key", sa.String(length=200), nullable=False),
    sa.Column("failures", sa.Integer(), nullable=False),
    sa.Column("last_failure_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("key"),
    sa.Index("ix_login_failures_last_failure_at", "last_failure_at"),
)

sa.Table(
    "stream_tickets",
    _tables,
    sa.Column("ticket_hash", sa.String(length=64), nullable=False),
    sa.Column("token_hash", sa.String(length=64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("ticket_hash"),
    sa.Index("ix_stream_tickets_expires_at", "expires_at"),
)


def upgrade() -> None:
    create_tables(op.get_bind(), [_tables])


def downgrade() -> None:
    _tables.drop_all(op.get_bind())
