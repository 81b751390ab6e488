"""`crowddesk kb` curation verbs: lifecycle and audit log, suggestions from handoffs, gap report,
usage per entry.

Like the other `kb` verbs they work on the project's database directly; a server started with
`crowddesk run` notices the change within a few seconds and swaps in a rebuilt index.
"""

from __future__ import annotations

import argparse

from crowddesk.bot.cli.arguments import ProjectArg, positive_int

DEFAULT_ACTOR = "cli"
VERBS = ("history", "restore", "publish", "suggestions", "approve", "reject", "gaps", "usage")
# Kept in step with knowledge_base.usage.USAGE_ORDERS, which this light module does not import.
USAGE_ORDERS = ("served", "unhelpful")


def add_parsers(kb_verbs: argparse._SubParsersAction[argparse.ArgumentParser], project_arg: ProjectArg) -> None:
    """Register the curation verbs under `crowddesk kb`; `project_arg` adds `--project`."""
    history = kb_verbs.add_parser("history", help="every version of an entry: who, when, what")
    history.add_argument("entry_id")
    history.add_argument("--json", action="store_true")
    restore = kb_verbs.add_parser("restore", help="bring back an earlier version's content (a new version)")
    restore.add_argument("entry_id")
    restore.add_argument("--version", type=int, required=True, help="the version number (see `kb history`)")
    publish = kb_verbs.add_parser("publish", help="serve a draft or retired entry")
    publish.add_argument("entry_id")
    suggestions = kb_verbs.add_parser("suggestions", help="entries suggested from resolved handoffs")
    suggestions.add_argument("--status", choices=["pending", "approved", "rejected", "all"], default="pending")
    suggestions.add_argument("--json", action="store_true")
    approve = kb_verbs.add_parser("approve", help="publish a suggestion as an entry")
    approve.add_argument("suggestion_id", type=int)
    approve.add_argument("--edit", action="store_true", help="edit questions and answer in $EDITOR first")
    reject = kb_verbs.add_parser("reject", help="turn a suggestion down, saying why")
    reject.add_argument("suggestion_id", type=int)
    reject.add_argument("--reason", required=True)
    gaps = kb_verbs.add_parser("gaps", help="unanswered questions grouped by meaning, most asked first")
    gaps.add_argument("--since", type=_positive_days, metavar="DAYS", help="only the last DAYS days")
    gaps.add_argument("--limit", type=int, default=20, help="clusters shown (default 20)")
    gaps.add_argument("--json", action="store_true")
    usage = kb_verbs.add_parser("usage", help="times each entry was served, and Helpful / Not helpful presses")
    usage.add_argument("--limit", type=positive_int, default=50, help="entries shown (default 50)")
    usage.add_argument(
        "--order", choices=USAGE_ORDERS, default="served", help="most served (default) or most often not helpful first"
    )
    usage.add_argument("--json", action="store_true")
    for parser in (history, restore, publish, suggestions, approve, reject, gaps, usage):
        project_arg(parser)
        parser.add_argument("--database-url")
    for parser in (restore, publish, approve, reject):
        parser.add_argument(
            "--as",
            dest="actor",
            default=DEFAULT_ACTOR,
            help=f"who is making the change, for the audit log (default {DEFAULT_ACTOR})",
        )
    for parser in (restore, publish):
        parser.add_argument("--comment", default="", help="why, for the audit log")


def run(args: argparse.Namespace) -> int:
    """Run the parsed curation verb (heavy imports only now)."""
    from crowddesk.bot.cli.kb_verbs import run_verb

    return run_verb(args)


def _positive_days(text: str) -> float:
    days = float(text)
    if days <= 0:
        raise argparse.ArgumentTypeError(f"--since must be a positive number of days, got {text}")
    return days
