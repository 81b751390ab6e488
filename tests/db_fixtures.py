"""Database fixtures: a test taking `database_url` or `db_engine` runs on SQLite and on PostgreSQL.

PostgreSQL runs use a schema unique to the test session, so several runs can share one server;
it is emptied after every test and dropped at the end. Point CROWDDESK_TEST_POSTGRES_URL
elsewhere than postgresql+psycopg://postgres@127.0.0.1:5432/test if needed.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError

from crowddesk.bot.server.database import init_schema
from crowddesk.storage.engines import create_engine_for

POSTGRES_URL_VARIABLE = "CROWDDESK_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class PostgresSchema:
    """A schema of our own on the shared test server, and a URL whose connections use it."""

    admin: Engine
    name: str
    url: str

    def reset(self) -> None:
        with self.admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{self.name}" CASCADE')
            connection.exec_driver_sql(f'CREATE SCHEMA "{self.name}"')


@pytest.fixture(scope="session")
def postgres_schema() -> Iterator[PostgresSchema]:
    server_url = make_url(os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL))
    # An unreachable server should fail the run in seconds, not hang it.
    server_url = server_url.update_query_dict({"connect_timeout": "5"})
    name = f"crowddesk_test_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(server_url.render_as_string(hide_password=False))
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    except OperationalError as error:
        admin.dispose()
        pytest.fail(
            f"PostgreSQL tests need the server at {server_url.render_as_string()} "
            f"(set {POSTGRES_URL_VARIABLE} to use another): {error.orig}",
            pytrace=False,
        )
    url = server_url.update_query_dict({"options": f"-csearch_path={name}"})
    try:
        yield PostgresSchema(admin, name, url.render_as_string(hide_password=False))
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or the session's PostgreSQL schema, emptied after."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'crowddesk.db'}"
        return
    schema: PostgresSchema = request.getfixturevalue("postgres_schema")
    yield schema.url
    schema.reset()


@pytest.fixture
def db_engine(database_url: str) -> Iterator[Engine]:
    """An engine on `database_url` with every CrowdDesk table created; disposed afterwards."""
    engine = create_engine_for(database_url)
    init_schema(engine)
    yield engine
    engine.dispose()
