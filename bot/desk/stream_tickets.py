"""Short-lived, single-use tickets for the desk's event stream, so no token goes into a URL.

A browser's EventSource can't send an `Authorization` header, and a URL ends up in access logs,
proxies and browser history. So the console trades its bearer token (in a header) for a ticket
that only `GET /desk/api/stream` accepts, once, within `TICKET_LIFETIME`. Tickets live in the
database, like tokens (by their SHA-256), so any server process can redeem one.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, String, delete
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from crowddesk.bot.desk.agents import TOKEN_PREFIX, AuthError, token_hash
from crowddesk.storage.columns import UtcDateTime

TICKET_LIFETIME = timedelta(seconds=60)
# Shaped like a token, so log scrubbing that knows `cdk_…` catches a ticket wherever it appears.
TICKET_PREFIX = f"{TOKEN_PREFIX}stream_"


class StreamTicketTables(DeclarativeBase):
    """The ticket table, created with the others by `init_schema`."""


class StreamTicketRow(StreamTicketTables):
    """An unredeemed ticket, by its SHA-256, and the token it stands for (also by its hash)."""

    __tablename__ = "stream_tickets"

    ticket_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime, index=True)


class StreamTickets:
    """Issues tickets for a bearer token and redeems each one once."""

    def __init__(self, engine: Engine, lifetime: timedelta = TICKET_LIFETIME) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self.lifetime = lifetime

    def issue(self, bearer_token: str) -> str:
        """A new ticket for the (already authenticated) token; expired ones are dropped."""
        ticket = TICKET_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.execute(delete(StreamTicketRow).where(StreamTicketRow.expires_at <= now))
            session.add(
                StreamTicketRow(
                    ticket_hash=token_hash(ticket), token_hash=token_hash(bearer_token), expires_at=now + self.lifetime
                )
            )
        return ticket

    def redeem(self, ticket: str) -> str:
        """The hash of the token the ticket stands for; AuthError if unknown, used or expired."""
        with self._sessions.begin() as session:
            # One DELETE … RETURNING: of two processes redeeming the same ticket, only one gets it.
            found = session.execute(
                delete(StreamTicketRow)
                .where(StreamTicketRow.ticket_hash == token_hash(ticket))
                .returning(StreamTicketRow.token_hash, StreamTicketRow.expires_at)
            ).one_or_none()
        if found is None:
            raise AuthError("unknown or already used stream ticket; get a new one from POST /desk/api/stream-ticket")
        if found.expires_at <= datetime.now(UTC):
            raise AuthError("stream ticket expired; get a new one from POST /desk/api/stream-ticket")
        return found.token_hash
