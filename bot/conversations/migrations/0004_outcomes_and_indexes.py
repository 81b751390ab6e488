"""What became of each conversation, on its row: when the bot first answered, a ticket was first
opened, and the customer first marked an answer Not helpful. The scorecard's outcomes read these
instead of searching every conversation's events, tickets and presses (benchmarks/README.md,
"Scorecard at scale"). And the indexes its queue needs (tickets by first reply and by
resolution) and its channel filter (a channel's conversations, read from the index alone).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06

The upgrade fills them for the conversations already stored, from their events, tickets and
presses: one grouped query each, then one UPDATE per conversation; on a large database, expect
minutes.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from crowddesk.storage.columns import UtcDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

OUTCOMES = ("answered_at", "handed_off_at", "unhelpful_at")
# As the dialogue named them when this revision was written (bot/dialogue/answered.py).
ANSWER_ACTION, ACTION_LISTEN, SUPPORT_POLICY = "action_answer_from_kb", "action_listen", "SupportPolicy"

INDEXES = (
    ("ix_handoffs_first_response_at", "handoffs", ["first_response_at"]),
    ("ix_handoffs_resolved_at", "handoffs", ["resolved_at"]),
    ("ix_conversations_channel_id", "conversations", ["channel", "id"]),
)
_conversations = sa.table(
    "conversations",
    sa.column("id", sa.Integer()),
    sa.column("sender_id", sa.String()),
    *(sa.column(name, UtcDateTime()) for name in OUTCOMES),
)
_events = sa.table(
    "events",
    sa.column("conversation_id", sa.Integer()),
    sa.column("type", sa.String()),
    sa.column("name", sa.Text()),
    sa.column("timestamp", sa.Float()),
    sa.column("data", sa.JSON()),
)
_handoffs = sa.table("handoffs", sa.column("conversation_id", sa.Integer()), sa.column("created_at", UtcDateTime()))
_presses = sa.table(
    "kb_feedback",
    sa.column("sender_id", sa.String()),
    sa.column("helpful", sa.Boolean()),
    sa.column("created_at", UtcDateTime()),
)


def upgrade() -> None:
    connection = op.get_bind()
    database = sa.inspect(connection)
    present = {column["name"] for column in database.get_columns("conversations")}
    for name in OUTCOMES:
        # A database adopted by 0001 from the tables the code declares may have them already.
        if name not in present:
            op.add_column("conversations", sa.Column(name, UtcDateTime(), nullable=True))
    policy = _events.c.data["policy"].as_string()
    answered = sa.select(_events.c.conversation_id, sa.func.min(_events.c.timestamp)).where(
        _events.c.type == "action",
        sa.or_(
            _events.c.name == ANSWER_ACTION,
            sa.and_(policy.is_not(None), policy != SUPPORT_POLICY, _events.c.name != ACTION_LISTEN),
        ),
    )
    first_answers = connection.execute(answered.group_by("conversation_id"))
    moments = ((conversation, datetime.fromtimestamp(at, UTC)) for conversation, at in first_answers)
    _fill(connection, "answered_at", _conversations.c.id, moments)
    opened = sa.select(_handoffs.c.conversation_id, sa.func.min(_handoffs.c.created_at))
    _fill(connection, "handed_off_at", _conversations.c.id, connection.execute(opened.group_by("conversation_id")))
    if database.has_table("kb_feedback"):
        pressed = sa.select(_presses.c.sender_id, sa.func.min(_presses.c.created_at))
        pressed = pressed.where(_presses.c.helpful.is_(False))
        _fill(connection, "unhelpful_at", _conversations.c.sender_id, connection.execute(pressed.group_by("sender_id")))
    for name, table, columns in INDEXES:
        if name not in {index["name"] for index in database.get_indexes(table)}:
            op.create_index(name, table, columns)


def _fill(connection: sa.Connection, column: str, key: sa.ColumnClause[Any], found: Iterable[Any]) -> None:
    """Set `column` of each conversation whose `key` is found, to its moment."""
    rows = [{"key": key_value, "at": at} for key_value, at in found]
    if rows:
        statement = sa.update(_conversations).where(key == sa.bindparam("key")).values({column: sa.bindparam("at")})
        connection.execute(statement, rows)


def downgrade() -> None:
    for name, table, _ in INDEXES:
        op.drop_index(name, table_name=table)
    # SQLite drops a column by copying the table: batch mode does that.
    with op.batch_alter_table("conversations") as conversations:
        for name in OUTCOMES:
            conversations.drop_column(name)
