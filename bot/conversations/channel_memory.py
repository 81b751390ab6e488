"""The database's `ChannelMemory`: channel connectors' facts about customers, shared by every
server process on the database and kept across restarts."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, Engine, and_, delete, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.store import ChannelMemoryRow
from crowddesk.storage.engines import reader
from crowddesk.storage.upserts import upsert


class DatabaseChannelMemory:
    """One channel's facts, rows of the `channel_memory` table."""

    def __init__(self, engine: Engine, channel: str) -> None:
        self._sessions = sessionmaker(engine)
        # Recalled inside other transactions too (the desk asks a channel, while it holds the
        # write lock, whether a reply can reach the customer): reads never wait for the lock.
        self._readers = sessionmaker(reader(engine))
        self.channel = channel

    def recall(self, sender_id: str, key: str) -> Any | None:
        with self._readers() as session:
            return session.scalar(select(ChannelMemoryRow.value).where(self._fact(sender_id, key)))

    def remember(self, sender_id: str, key: str, value: Any | None) -> None:
        if value is None:
            # Channels forget on most messages they send or receive (a message without buttons
            # retires a numbered list), and almost always there is nothing to forget: a read
            # costs no write transaction, which on SQLite would queue behind the turns.
            if self.recall(sender_id, key) is not None:
                with self._sessions.begin() as session:
                    session.execute(delete(ChannelMemoryRow).where(self._fact(sender_id, key)))
            return
        row = {
            "channel": self.channel,
            "sender_id": sender_id,
            "key": key,
            "value": value,
            "updated_at": datetime.now(UTC),
        }
        with self._sessions.begin() as session:
            upsert(session, ChannelMemoryRow, row, key=("channel", "sender_id", "key"))

    def _fact(self, sender_id: str, key: str) -> ColumnElement[bool]:
        return and_(
            ChannelMemoryRow.channel == self.channel,
            ChannelMemoryRow.sender_id == sender_id,
            ChannelMemoryRow.key == key,
        )
