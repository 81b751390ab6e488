"""The project's database: which URL it lives at, and every table of every package created in it."""

from __future__ import annotations

from sqlalchemy import Engine

from crowddesk.bot.conversations.audit import AuditTables
from crowddesk.bot.conversations.store import ConversationTables
from crowddesk.bot.desk.agents import AgentTables
from crowddesk.bot.desk.login_limits import LoginLimitTables
from crowddesk.bot.desk.stream_tickets import StreamTicketTables
from crowddesk.bot.project.loading import Project
from crowddesk.knowledge_base.store import KnowledgeBaseTables
from crowddesk.storage.engines import create_engine_for
from crowddesk.storage.schema import create_tables


def database_url_for(project: Project, override: str | None = None) -> str:
    """Explicit URL, then endpoints.yml / CROWDDESK_DATABASE_URL, then the embedded SQLite file."""
    if override:
        return override
    if project.endpoints.database_url:
        return project.endpoints.database_url
    return f"sqlite:///{(project.root / '.crowddesk' / 'crowddesk.db').resolve()}"


def open_database(project: Project, database_url: str | None = None) -> Engine:
    """The project's database with every table created."""
    database = create_engine_for(database_url_for(project, database_url))
    init_schema(database)
    return database


def init_schema(engine: Engine) -> None:
    """Create every table of the conversation, desk and knowledge-base stores that is missing."""
    create_tables(engine, (tables.metadata for tables in (
        ConversationTables, KnowledgeBaseTables, AgentTables, AuditTables, LoginLimitTables, StreamTicketTables)))
