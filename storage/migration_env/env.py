"""Alembic's entry point for every history: `crowddesk.storage.migrations` passes the history and
the connection in the config's attributes, so no alembic.ini or URL is needed."""

from alembic import context

from crowddesk.storage.migrations import run_in

run_in(context)
