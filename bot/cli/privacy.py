"""`crowddesk privacy`: export or erase everything held about one customer, and read the audit log.

The verbs work on the project's database directly (like `kb` and `desk`) and are recorded in
the audit log as `cli:<os user>`. A running server stops serving erased knowledge-base text
within seconds (its live index applies the change); `DELETE /privacy/api/people/{sender}` on
the server also rebuilds the index at once.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crowddesk.bot.cli.arguments import ProjectArg
from crowddesk.bot.cli.output import EXIT_CODES, EXIT_NOT_FOUND, EXIT_REFUSED, fail, say

if TYPE_CHECKING:
    from crowddesk.bot.privacy.customer_data import Privacy


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], project_arg: ProjectArg) -> None:
    """Register `crowddesk privacy ...`; `project_arg` adds `--project`."""
    privacy = verbs.add_parser(
        "privacy",
        help="export or erase a customer's data; the audit log",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = privacy.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="a JSON file of everything held about a customer")
    export.add_argument("sender", help="the customer's sender id (as in the desk and the tracker)")
    export.add_argument("--out", type=Path, help="the file to write (default: standard output)")
    erase = actions.add_parser("erase", help="delete everything held about a customer")
    erase.add_argument("sender")
    erase.add_argument("--yes", action="store_true", help="don't ask for confirmation")
    audit = actions.add_parser("audit", help="who read, exported or erased whose data, newest first")
    audit.add_argument("--sender", help="only this customer's rows")
    audit.add_argument("--limit", type=_positive_int, default=100, help="rows shown (default 100)")
    audit.add_argument("--json", action="store_true")
    for parser in (export, erase, audit):
        project_arg(parser)
        parser.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")


def run(args: argparse.Namespace) -> int:
    """Run the parsed `privacy` verb (heavy imports only now)."""
    from crowddesk.bot.conversations.audit import AuditLog, cli_actor
    from crowddesk.bot.privacy.customer_data import Privacy
    from crowddesk.bot.project.loading import load_project
    from crowddesk.bot.server.database import open_database

    database = open_database(load_project(args.project), args.database_url)
    try:
        if args.privacy_command == "audit":
            entries = AuditLog(database).entries(args.sender, limit=args.limit)
            for entry in entries:
                say(
                    json.dumps(entry.as_dict())
                    if args.json
                    else f"{entry.at.isoformat(timespec='seconds')}  {entry.actor:<20} {entry.action:<12} "
                    f"{entry.sender}  {entry.detail}".rstrip()
                )
            return 0
        privacy = Privacy(database)
        if args.privacy_command == "export":
            return _export(privacy.export(args.sender, cli_actor()), args)
        return _erase(privacy, cli_actor(), args)
    finally:
        database.dispose()


def _export(document: dict[str, Any] | None, args: argparse.Namespace) -> int:
    if document is None:
        return fail(f"nothing is held about {args.sender!r}", EXIT_NOT_FOUND)
    text = json.dumps(document, indent=2, ensure_ascii=False)
    if args.out is None:
        say(text)
    else:
        args.out.write_text(text + "\n", encoding="utf-8")
        # On stderr: stdout carries only the document when no --out is given.
        print(f"wrote everything held about {args.sender!r} to {args.out}", file=sys.stderr)
    return 0


def _erase(privacy: Privacy, actor: str, args: argparse.Namespace) -> int:
    if not args.yes:
        if not sys.stdin.isatty():
            return fail("not asking on a non-interactive input; pass --yes to erase", EXIT_REFUSED)
        answer = input(f"Erase everything held about {args.sender!r}, for good? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            return fail("nothing erased", EXIT_REFUSED)
    erased = privacy.erase(args.sender, actor)
    if not erased.anything:
        return fail(f"nothing is held about {args.sender!r}", EXIT_NOT_FOUND)
    say(f"erased {args.sender!r}:")
    for table, count in erased.removed.items():
        if count:
            say(f"  {table}: {count}")
    return 0


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return int(text)
