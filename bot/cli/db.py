"""`crowddesk db`: bring the project's database to the current schema, or write a migration.

`upgrade` applies every history's pending migrations and prints, per history, the revision
before and after. The server and the other verbs do the same when they open the database; this
is for upgrading ahead of a rollout, and for seeing what was done. `revision` writes the next
migration of one history (knowledge_base, conversations, desk) from what the code's tables have
that its newest revision lacks: a draft to read and complete before it ships.
"""

from __future__ import annotations

import argparse

from crowddesk.bot.cli.arguments import ProjectArg
from crowddesk.bot.cli.output import EXIT_REFUSED, fail


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], project_arg: ProjectArg) -> None:
    """Register `crowddesk db ...`; `project_arg` adds `--project`."""
    db = verbs.add_parser(
        "db",
        help="upgrade the database schema; write a migration",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = db.add_subparsers(dest="db_command", required=True, metavar="ACTION")
    upgrade = actions.add_parser("upgrade", help="apply every pending migration and say what was done")
    project_arg(upgrade)
    upgrade.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")
    revision = actions.add_parser("revision", help="write the next migration of one history")
    revision.add_argument("history", help="knowledge_base, conversations or desk")
    revision.add_argument("--message", "-m", required=True, help="what the migration changes")


def run(args: argparse.Namespace) -> int:
    """Run the parsed `db` verb (heavy imports only now)."""
    from crowddesk.bot.project.loading import load_project
    from crowddesk.bot.server.database import HISTORIES, database_url_for, init_schema
    from crowddesk.storage.engines import create_engine_for
    from crowddesk.storage.migrations import write_revision

    if args.db_command == "revision":
        histories = {history.name: history for history in HISTORIES}
        if args.history not in histories:
            return fail(f"unknown history {args.history!r}; one of: {', '.join(histories)}", EXIT_REFUSED)
        write_revision(histories[args.history], args.message)  # Alembic says where it wrote it
        return 0
    database = create_engine_for(database_url_for(load_project(args.project), args.database_url))
    try:
        for outcome in init_schema(database):
            print(outcome)
    finally:
        database.dispose()
    return 0
