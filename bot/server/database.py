"""The project's database: which URL it lives at, and every package's tables brought to the
current schema in it.

Each package that owns tables keeps their Alembic history next to its stores, in a `migrations/`
folder (see crowddesk.storage.migrations): `knowledge_base/` keeps one, `bot/` one per room that
owns tables (conversations, desk), so a room changes its tables without touching another's
history, and the histories stay as few as the owners.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from sqlalchemy import Engine

from crowddesk.bot.conversations.audit import AuditTables
from crowddesk.bot.conversations.store import ConversationTables
from crowddesk.bot.desk.agents import AgentTables
from crowddesk.bot.desk.login_limits import LoginLimitTables
from crowddesk.bot.desk.stream_tickets import StreamTicketTables
from crowddesk.bot.project.loading import Project
from crowddesk.knowledge_base.store import KnowledgeBaseTables
from crowddesk.storage.engines import create_engine_for
from crowddesk.storage.migrations import History, Upgrade, upgrade


def _versions(package: str) -> Path:
    # Shipped as package data; Alembic reads the scripts from the file system.
    return Path(str(resources.files(package) / "migrations"))


# Upgraded in this order, the layers' own; no history's tables refer to another's.
HISTORIES = (
    History("knowledge_base", _versions("crowddesk.knowledge_base"), (KnowledgeBaseTables.metadata,)),
    History(
        "conversations", _versions("crowddesk.bot.conversations"), (ConversationTables.metadata, AuditTables.metadata)
    ),
    History(
        "desk",
        _versions("crowddesk.bot.desk"),
        (AgentTables.metadata, LoginLimitTables.metadata, StreamTicketTables.metadata),
    ),
)


def database_url_for(project: Project, override: str | None = None) -> str:
    """Explicit URL, then endpoints.yml / CROWDDESK_DATABASE_URL, then the embedded SQLite file."""
    if override:
        return override
    if project.endpoints.database_url:
        return project.endpoints.database_url
    return f"sqlite:///{(project.root / '.crowddesk' / 'crowddesk.db').resolve()}"


def open_database(project: Project, database_url: str | None = None) -> Engine:
    """The project's database, upgraded to the current schema.

    On PostgreSQL too, not only on the embedded SQLite: the releases before migrations created
    and extended their tables on start on both backends, and deployments rely on that. Processes
    starting together take turns (an advisory lock), and `crowddesk db upgrade` lets an operator
    upgrade ahead of a rollout and see what changed.
    """
    database = create_engine_for(database_url_for(project, database_url))
    init_schema(database)
    return database


def init_schema(engine: Engine) -> list[Upgrade]:
    """Bring every package's tables to its newest revision: created in an empty database,
    adopted in one a release without migrations created."""
    return [upgrade(engine, history) for history in HISTORIES]
