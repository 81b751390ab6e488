"""Agent accounts and their API tokens.

Tokens are random and shown once; only their SHA-256 is stored. Passwords (for the web console)
are hashed with scrypt. Roles: `agent` works tickets, `editor` curates the knowledge base,
`admin` does both and manages accounts.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Boolean, Engine, ForeignKey, String, select
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, sessionmaker

from crowddesk.bot.database import UtcDateTime

ROLES = ("agent", "editor", "admin")
TOKEN_PREFIX = "cdk_"
DEFAULT_TOKEN_DAYS = 90
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AgentTables(DeclarativeBase):
    pass


class AgentRow(AgentTables):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(128))
    role: Mapped[str] = mapped_column(String(16))
    password_hash: Mapped[str | None] = mapped_column(String(256), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)


class TokenRow(AgentTables):
    __tablename__ = "agent_tokens"

    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    agent_id: Mapped[str] = mapped_column(ForeignKey("agents.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime)


@dataclass(frozen=True)
class Agent:
    id: str
    name: str
    role: str

    def can(self, role: str) -> bool:
        """Admins can do everything; otherwise the role must match."""
        return self.role in (role, "admin")


class AuthError(Exception):
    """Missing, unknown or expired credentials."""


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


class AgentDirectory:
    """Creates agents, issues tokens, and resolves a token or a password to an agent."""

    def __init__(self, engine: Engine) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)

    def add(self, agent_id: str, name: str, role: str = "agent", password: str | None = None) -> Agent:
        if role not in ROLES:
            raise ValueError(f"role {role!r} is not one of {', '.join(ROLES)}")
        if not agent_id or len(agent_id) > 64:
            raise ValueError("agent id must be 1 to 64 characters")
        with self._sessions.begin() as session:
            if session.get(AgentRow, agent_id) is not None:
                raise ValueError(f"agent {agent_id!r} already exists")
            session.add(AgentRow(
                id=agent_id, name=name, role=role, active=True, created_at=datetime.now(UTC),
                password_hash=hash_password(password) if password else None,
            ))
        return Agent(agent_id, name, role)

    def get(self, agent_id: str) -> Agent | None:
        with self._sessions() as session:
            row = session.get(AgentRow, agent_id)
            return None if row is None or not row.active else Agent(row.id, row.name, row.role)

    def list(self) -> list[Agent]:
        with self._sessions() as session:
            rows = session.scalars(select(AgentRow).where(AgentRow.active).order_by(AgentRow.id))
            return [Agent(r.id, r.name, r.role) for r in rows]

    def issue_token(self, agent_id: str, *, days: int = DEFAULT_TOKEN_DAYS) -> str:
        """A new API token for the agent; it is returned once and stored only as a hash."""
        if self.get(agent_id) is None:
            raise KeyError(f"no active agent {agent_id!r}")
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._sessions.begin() as session:
            session.add(TokenRow(token_hash=_token_hash(token), agent_id=agent_id,
                                 created_at=now, expires_at=now + timedelta(days=days)))
        return token

    def authenticate_token(self, token: str) -> Agent:
        with self._sessions() as session:
            row = session.get(TokenRow, _token_hash(token))
            if row is None:
                raise AuthError("unknown token")
            if row.expires_at <= datetime.now(UTC):
                raise AuthError("token expired; ask an admin for a new one")
            agent = session.get(AgentRow, row.agent_id)
            if agent is None or not agent.active:
                raise AuthError("agent account is disabled")
            return Agent(agent.id, agent.name, agent.role)

    def authenticate_password(self, agent_id: str, password: str) -> Agent:
        with self._sessions() as session:
            row = session.get(AgentRow, agent_id)
            if row is None or not row.active or not row.password_hash \
                    or not verify_password(password, row.password_hash):
                raise AuthError("wrong agent id or password")
            return Agent(row.id, row.name, row.role)
