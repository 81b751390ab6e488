"""Conversations, events, handoff tickets and notes, inbound deduplication, the outbox, the privacy audit log.

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
    "conversations",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("sender_id", sa.String(length=128), nullable=False),
    sa.Column("channel", sa.String(length=64), nullable=False),
    sa.Column("owner", sa.String(length=32), nullable=False),
    sa.Column("slots", sa.JSON(), nullable=False),
    sa.Column("failed_turns", sa.Integer(), nullable=False),
    sa.Column("latest_message", sa.JSON(none_as_null=True), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("sender_id"),
)

sa.Table(
    "inbound_messages",
    _tables,
    sa.Column("channel", sa.String(length=64), nullable=False),
    sa.Column("message_id", sa.String(length=256), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint("channel", "message_id"),
)

sa.Table(
    "outbox",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("channel", sa.String(length=64), nullable=False),
    sa.Column("recipient_id", sa.String(length=128), nullable=False),
    sa.Column("payload", sa.JSON(), nullable=False),
    sa.Column("status", sa.String(length=16), nullable=False),
    sa.Column("attempts", sa.Integer(), nullable=False),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_error", sa.Text(), nullable=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_outbox_due", "status", "next_attempt_at"),
    sa.Index("ix_outbox_recipient", "channel", "recipient_id", "status", "id"),
)

sa.Table(
    "events",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("conversation_id", sa.Integer(), nullable=False),
    sa.Column("seq", sa.Integer(), nullable=False),
    sa.Column("type", sa.String(length=64), nullable=False),
    sa.Column("timestamp", sa.Float(), nullable=False),
    sa.Column("data", sa.JSON(), nullable=False),
    sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.UniqueConstraint("conversation_id", "seq"),
)

sa.Table(
    "handoffs",
    _tables,
    sa.Column("id", sa.String(length=32), nullable=False),
    sa.Column("conversation_id", sa.Integer(), nullable=False),
    sa.Column("status", sa.String(length=32), nullable=False),
    sa.Column("reason", sa.Text(), nullable=False),
    sa.Column("priority", sa.String(length=16), nullable=False),
    sa.Column("packet", sa.JSON(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("assigned_to", sa.String(length=128), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("first_response_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("rating", sa.Integer(), nullable=True),
    sa.Column("sla_warned_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("sla_breached_at", sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(["conversation_id"], ["conversations.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_handoffs_conversation_id", "conversation_id"),
    sa.Index("ix_handoffs_due_at", "due_at"),
)

sa.Table(
    "ticket_notes",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("handoff_id", sa.String(length=32), nullable=False),
    sa.Column("author", sa.String(length=128), nullable=False),
    sa.Column("text", sa.Text(), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(["handoff_id"], ["handoffs.id"], ondelete="CASCADE"),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_ticket_notes_handoff_id", "handoff_id"),
)

sa.Table(
    "privacy_audit",
    _tables,
    sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(length=128), nullable=False),
    sa.Column("action", sa.String(length=32), nullable=False),
    sa.Column("sender", sa.String(length=128), nullable=False),
    sa.Column("detail", sa.Text(), nullable=False),
    sa.PrimaryKeyConstraint("id"),
    sa.Index("ix_privacy_audit_at", "at"),
    sa.Index("ix_privacy_audit_sender", "sender"),
)


def upgrade() -> None:
    create_tables(op.get_bind(), [_tables])


def downgrade() -> None:
    _tables.drop_all(op.get_bind())
