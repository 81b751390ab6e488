"""Agent accounts and their API tokens.

Tokens are random and shown once; only their SHA-256 is stored, and they can be revoked one by
one (sign-out) or all at once. Passwords (for the web console) are hashed with scrypt. Roles:
`agent` works tickets, `editor` curates the knowledge base, `admin` does both and manages
accounts. A disabled account keeps its row (tickets and notes name it) but can't sign in.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import Boolean, CursorResult, Engine, ForeignKey, String, delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from crowddesk.errors import Conflict, CrowdDeskError, Invalid, NotFound
from crowddesk.storage.columns import UtcDateTime
from crowddesk.storage.engines import reader

ROLES = ("agent", "editor", "admin")
TOKEN_PREFIX = "cdk_"
DEFAULT_TOKEN_DAYS = 90
MIN_PASSWORD_CHARS = 8
# Ids appear in URLs (/desk/api/agents/{id}/tokens) and command lines, so no spaces or slashes.
AGENT_ID = re.compile(r"[A-Za-z0-9._@-]{1,64}")
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AgentTables(DeclarativeBase):
    """The account tables, created with the others by `init_schema`."""


class AgentRow(AgentTables):
    """One account; `active` is False once disabled."""

    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TokenRow(AgentTables):
    """An API or console token, by its SHA-256 (the token itself is never stored)."""

    __tablename__ = "agent_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class Agent:
    """An account as the rest of the code sees it: never its password or tokens."""

    id: str
    name: str
    role: str
    active: bool = True

    def can(self, role: str) -> bool:
        """Admins can do everything; otherwise the role must match."""
        return self.role in (role, "admin")


class AuthError(CrowdDeskError):
    """Missing, unknown or expired credentials."""


class UnknownAgent(NotFound):
    """No (active) agent with the given id."""


class InvalidAgent(Invalid, ValueError):
    """An account id, name, role or password the directory's rules refuse.

    Also a ValueError: the Slack desk (slack.py) still catches it as one."""


class AgentExists(Conflict):
    """An account with the id already exists (disabled ones too: ids are never reused)."""


def token_hash(token: str) -> str:
    """How a token is stored and looked up: its SHA-256, never the token itself."""
    return hashlib.sha256(token.encode()).hexdigest()


def _agent(row: AgentRow) -> Agent:
    return Agent(row.id, row.name, row.role, row.active)


def hash_password(password: str) -> str:
    """`scrypt$salt$digest`, with a fresh random salt."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    """Whether `password` matches a `hash_password` result, in constant time."""
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


@cache
def _stand_in_hash() -> str:
    """A hash no password matches, verified for unknown ids so they cost as much as real ones."""
    return hash_password(secrets.token_urlsafe(32))


class AgentDirectory:
    """Creates agents, issues tokens, and resolves a token or a password to an agent."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Look-ups (every API call, every sign-in) don't queue for SQLite's write lock.
        self._reads = sessionmaker(reader(engine), expire_on_commit=False)

    def add(self, agent_id: str, name: str, role: str = "agent", password: str | None = None) -> Agent:
        """A new active account; InvalidAgent for a bad role, id, name or password, AgentExists
        for a taken id."""
        if role not in ROLES:
            raise InvalidAgent(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not AGENT_ID.fullmatch(agent_id):
            raise InvalidAgent(f"agent id {agent_id!r} must be 1 to 64 letters, digits, '.', '_', '-' or '@'")
        if not name.strip() or len(name) > 128:
            raise InvalidAgent("agent name must be 1 to 128 characters")
        if password is not None and len(password) < MIN_PASSWORD_CHARS:
            raise InvalidAgent(f"password must be at least {MIN_PASSWORD_CHARS} characters")
        row = AgentRow(
            id=agent_id,
            name=name,
            role=role,
            active=True,
            created_at=datetime.now(UTC),
            password_hash=hash_password(password) if password else None,
        )
        try:
            with self._sessions.begin() as session:
                session.add(row)
        except IntegrityError:
            raise AgentExists(f"agent {agent_id!r} already exists") from None
        return _agent(row)

    def get(self, agent_id: str) -> Agent | None:
        """The active agent with this id, or None (also for a disabled one)."""
        with self._reads() as session:
            row = session.get(AgentRow, agent_id)
            return None if row is None or not row.active else _agent(row)

    def list(self, *, include_disabled: bool = False) -> list[Agent]:
        """Accounts by id; disabled ones only when asked for."""
        query = select(AgentRow).order_by(AgentRow.id)
        if not include_disabled:
            query = query.where(AgentRow.active)
        with self._reads() as session:
            return [_agent(row) for row in session.scalars(query)]

    def issue_token(self, agent_id: str, *, days: int = DEFAULT_TOKEN_DAYS) -> str:
        """A new API token for the agent; it is returned once and stored only as a hash."""
        if self.get(agent_id) is None:
            raise UnknownAgent(f"no active agent {agent_id!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.add(
                TokenRow(
                    token_hash=token_hash(token),
                    agent_id=agent_id,
                    created_at=now,
                    expires_at=now + timedelta(days=days),
                )
            )
        return token

    def revoke_token(self, token: str) -> bool:
        """Forget one token (signing out); False if it was not a known token."""
        with self._sessions.begin() as session:
            result = session.execute(delete(TokenRow).where(TokenRow.token_hash == token_hash(token)))
            return bool(cast(CursorResult[Any], result).rowcount)

    def revoke_tokens(self, agent_id: str) -> int:
        """Forget every token of the agent (a lost laptop, a leaked token); returns how many."""
        with self._sessions.begin() as session:
            if session.get(AgentRow, agent_id) is None:
                raise UnknownAgent(f"no agent {agent_id!r}")
            result = session.execute(delete(TokenRow).where(TokenRow.agent_id == agent_id))
            return cast(CursorResult[Any], result).rowcount

    def disable(self, agent_id: str) -> Agent:
        """Stop the account from signing in or using tokens (all are revoked); idempotent."""
        with self._sessions.begin() as session:
            row = session.get(AgentRow, agent_id, with_for_update=True)
            if row is None:
                raise UnknownAgent(f"no agent {agent_id!r}")
            row.active = False
            session.execute(delete(TokenRow).where(TokenRow.agent_id == agent_id))
            return _agent(row)

    def authenticate_token(self, token: str) -> Agent:
        """The agent behind an unexpired token of an active account, else AuthError."""
        return self.authenticate_token_hash(token_hash(token))

    def authenticate_token_hash(self, hashed: str) -> Agent:
        """As `authenticate_token`, for a token known by its `token_hash` (a stream ticket's)."""
        with self._reads() as session:
            row = session.get(TokenRow, hashed)
            if row is None:
                raise AuthError("unknown token")
            if row.expires_at <= datetime.now(UTC):
                raise AuthError("token expired; ask an admin for a new one")
            agent = session.get(AgentRow, row.agent_id)
            if agent is None or not agent.active:
                raise AuthError("agent account is disabled")
            return _agent(agent)

    def authenticate_password(self, agent_id: str, password: str) -> Agent:
        """The active agent with this id and password, else AuthError (never saying which was wrong).

        The hash is read in a short read and checked after it has ended, so scrypt's ~50 ms never
        hold a database lock; an unknown, disabled or password-less account is checked against a
        stand-in hash, so the time taken doesn't tell which ids exist.
        """
        with self._reads() as session:
            row = session.get(AgentRow, agent_id)
            if row is None or not row.active:
                agent, stored = None, None
            else:
                agent, stored = _agent(row), row.password_hash
        matches = verify_password(password, stored or _stand_in_hash())
        if agent is None or not stored or not matches:
            raise AuthError("wrong agent id or password")
        return agent
