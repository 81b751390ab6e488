"""Knowledge-base entries, their versions, suggestions, usage, feedback and the vector cache.

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
    "embedding_cache",
    _tables,
    sa.Column("encoder", sa.String(length=255), nullable=False),
    sa.Column("text_hash", sa.String(length=64), nullable=False),
    sa.Column("vector", sa.LargeBinary(), nullable=False),
    sa.Column("dim", sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint("encoder", "text_hash"),
)

sa.Table(
    "kb_entries",
    _tables,
    sa.Column("id", sa.String(length=255), nullable=False),
    sa.Column("answer", sa.Text(), nullable=False),
    sa.Column("source_url", sa.String(length=2048), nullable=False),
    sa.Column("tags", sa.JSON(), nullable=False),
    sa.Column("language", sa.String(length=16), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("intent", sa.String(length=255), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("source", sa.String(length=255), nullable=True),
    sa.Column("author", sa.String(length=255), nullable=True),
    sa.Column("accepted", sa.Boolean(), nullable=True),
    sa.Column("votes", sa.Integer(), nullable=True),
    sa.Column("last_activity_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("context", sa.Text(), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_kb_entries_source", "source"),
    sa.Index("ix_kb_entries_status", "status"),
)

sa.Table(
    "kb_entry_versions",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("entry_id", sa.String(length=255), nullable=False),
    sa.Column("version", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("content", sa.JSON(), nullable=False),
    sa.Column("actor", sa.String(length=255), nullable=False),
    sa.Column("action", sa.String(length=32), nullable=False),
    sa.Column("comment", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("entry_id", "version"),
    sa.Index("ix_kb_entry_versions_entry_id", "entry_id"),
)

sa.Table(
    "kb_feedback",
    _tables,
    sa.Column("answer_id", sa.String(length=32), nullable=False),
    sa.Column("entry_id", sa.String(length=255), nullable=False),
    sa.Column("sender_id", sa.String(length=128), nullable=False),
    sa.Column("helpful", sa.Boolean(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("answer_id"),
    sa.Index("ix_kb_feedback_entry_id", "entry_id"),
)

sa.Table(
    "kb_suggestions",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("ticket_id", sa.String(length=32), nullable=False),
    sa.Column("questions", sa.JSON(), nullable=False),
    sa.Column("answer", sa.Text(), nullable=False),
    sa.Column("agent", sa.String(length=128), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("entry_id", sa.String(length=255), nullable=True),
    sa.Column("reviewer", sa.String(length=128), nullable=True),
    sa.Column("reason", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sender_id", sa.String(length=128), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_kb_suggestions_sender_id", "sender_id"),
    sa.Index("ix_kb_suggestions_status", "status"),
    sa.Index("ix_kb_suggestions_ticket_id", "ticket_id"),
)

sa.Table(
    "kb_usage",
    _tables,
    sa.Column("entry_id", sa.String(length=255), nullable=False),
    sa.Column("served", sa.Integer(), nullable=False),
    sa.Column("helpful", sa.Integer(), nullable=False),
    sa.Column("unhelpful", sa.Integer(), nullable=False),
    sa.Column("last_served_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("entry_id"),
)

sa.Table(
    "kb_questions",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("entry_id", sa.String(length=255), nullable=False),
    sa.Column("position", sa.Integer(), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.ForeignKeyConstraint(["entry_id"], ["kb_entries.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("entry_id", "position"),
)


def upgrade() -> None:
    create_tables(op.get_bind(), [_tables])


def downgrade() -> None:
    _tables.drop_all(op.get_bind())
