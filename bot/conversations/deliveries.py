"""Which platform deliveries were already processed, by their (channel, message_id) key.

Platforms redeliver webhooks they think were lost (Telegram resends an update, Slack retries an
event with `X-Slack-Retry-Num`), and API clients resend after a broken connection. The key is
recorded in the transaction that stores the delivery's turn: a turn that fails, or whose process
dies, leaves no key, so the redelivery is processed, once. The engine checks for the key while it
holds the conversation's turn lock, so a redelivery racing the original waits for it and is then
recognised, whichever server process each landed on.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from crowddesk.bot.conversations.store import InboundMessageRow
from crowddesk.errors import Conflict
from crowddesk.storage.engines import reader
from crowddesk.storage.upserts import insert_missing


class AlreadyDelivered(Conflict):
    """This delivery's turn was already stored; nothing was done again."""

    def __init__(self, channel: str, message_id: str) -> None:
        super().__init__(f"{channel} delivery {message_id!r} was already processed")


class SeenMessages:
    """The delivery keys of processed messages (purged by retention after `retention_days`)."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine)
        self._reads = sessionmaker(reader(engine))

    def seen(self, channel: str, message_id: str) -> bool:
        with self._reads() as session:
            key = (InboundMessageRow.channel == channel) & (InboundMessageRow.message_id == message_id)
            return session.scalar(select(InboundMessageRow.message_id).where(key)) is not None

    def record(self, channel: str, message_id: str, session: Session) -> None:
        """In the turn's transaction: raises `AlreadyDelivered` (rolling it back) if recorded."""
        if not _insert(session, channel, message_id):
            raise AlreadyDelivered(channel, message_id)

    def first_sight(self, channel: str, message_id: str) -> bool:
        """Record a delivery refused before any turn (an over-long message the customer was told
        about); True only for the first caller with this key."""
        with self._sessions.begin() as session:
            return _insert(session, channel, message_id)


def _insert(session: Session, channel: str, message_id: str) -> bool:
    row = {"channel": channel, "message_id": message_id, "received_at": datetime.now(UTC)}
    return insert_missing(session, InboundMessageRow, [row]) == 1
