"""Versioned schemas: every package that owns tables keeps an Alembic history of them.

A history is a folder of revision scripts shipped inside its package, with a version table of
its own (`alembic_version_<name>`), so histories never see each other's revisions and a package
changes its tables without touching another's. Alembic is driven from here, with no alembic.ini:
the history and the connection reach `migration_env/env.py` through the config's attributes.

The first revision of every history is the schema of the last release without migrations. Its
upgrade creates the tables that are missing and adds the nullable columns an older release
lacked (`schema.create_tables`), so a database such a release created (tables, no version
table) is adopted in place with its data, and an empty one is created; either way it is then
stamped, and later revisions apply to both alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, inspect

from crowddesk.storage.engines import create_engine_for

_ENVIRONMENT = Path(__file__).resolve().parent / "migration_env"
# Any constant: CrowdDesk processes starting together on one PostgreSQL database take turns
# upgrading it, and the later ones find it up to date. (On SQLite, BEGIN IMMEDIATE serialises.)
_POSTGRES_LOCK_KEY = 0x43524F57_44455344


@dataclass(frozen=True)
class History:
    """One package's revisions: the folder of its scripts, and the tables its code declares."""

    name: str
    versions: Path
    metadata: tuple[MetaData, ...]

    @property
    def version_table(self) -> str:
        return f"alembic_version_{self.name}"

    def owns(self, table: str) -> bool:
        return any(table in metadata.tables for metadata in self.metadata)


@dataclass(frozen=True)
class Upgrade:
    """What upgrading one history did: its revision before (None: not versioned yet) and after."""

    history: str
    before: str | None
    after: str | None
    adopted: bool  # the tables of a release without migrations were found and kept

    def __str__(self) -> str:
        if self.before == self.after:
            outcome = "up to date"
        elif self.adopted:
            outcome = "existing tables adopted"
        elif self.before is None:
            outcome = "created"
        else:
            outcome = "upgraded"
        return f"{self.history}: {self.before or 'none'} -> {self.after} ({outcome})"


def upgrade(engine: Engine, history: History, to: str = "head") -> Upgrade:
    """Bring `history`'s tables in the database to its newest revision (or revision `to`), in one
    transaction."""
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_POSTGRES_LOCK_KEY})")
        before = current_revision(connection, history)
        adopted = before is None and any(map(history.owns, inspect(connection).get_table_names()))
        command.upgrade(_config(history, connection), to)
        return Upgrade(history.name, before, current_revision(connection, history), adopted)


def current_revision(connection: Connection, history: History) -> str | None:
    """The revision of `history` the database is at; None before it was versioned."""
    context = MigrationContext.configure(connection, opts={"version_table": history.version_table})
    return context.get_current_revision()


def differences(engine: Engine, history: History) -> list[Any]:
    """How `history`'s tables in the database differ from the code's (Alembic's diff tuples)."""
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"include_name": _own_tables(history)})
        # Read as `target_metadata`, which may be a list; the annotation only names MetaData.
        return compare_metadata(context, list(history.metadata))  # type: ignore[arg-type]


def write_revision(history: History, message: str) -> Path:
    """Write the next revision script of `history`: what the code's tables have that its newest
    revision lacks, found by comparing them with a scratch database at that revision. It is a
    draft to read and complete (data moves, renames) before it ships."""
    scratch = create_engine_for("sqlite://")
    try:
        upgrade(scratch, history)
        with scratch.begin() as connection:
            config = _config(history, connection)
            head = ScriptDirectory.from_config(config).get_current_head()
            script = command.revision(config, message, autogenerate=True, rev_id=f"{int(head or 0) + 1:04d}")
    finally:
        scratch.dispose()
    assert script is not None and not isinstance(script, list)  # one history has one head
    return Path(script.path)


def run_in(context: ModuleType) -> None:
    """What `migration_env/env.py` does: run the command on the connection and history given.

    `context` is `alembic.context`, the module that stands for the running EnvironmentContext."""
    history: History = context.config.attributes["history"]
    context.configure(
        connection=context.config.attributes["connection"],
        target_metadata=list(history.metadata),
        version_table=history.version_table,
        include_name=_own_tables(history),
        # SQLite alters a table by copying it, which batch operations do; on PostgreSQL they are
        # plain ALTERs, so one script serves both backends.
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def _config(history: History, connection: Connection) -> Config:
    config = Config(attributes={"history": history, "connection": connection})
    # Config values go through ConfigParser interpolation, where "%" is special.
    config.set_main_option("script_location", str(_ENVIRONMENT).replace("%", "%%"))
    config.set_main_option("version_locations", str(history.versions).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    config.set_main_option("file_template", "%%(rev)s_%%(slug)s")
    return config


def _own_tables(history: History) -> Any:
    # Other histories' tables and version tables share the database; they are not this one's.
    def include(name: str | None, kind: str, parent_names: Any) -> bool:
        return kind != "table" or (name is not None and history.owns(name))

    return include
