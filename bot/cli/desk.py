"""`crowddesk desk`: agent accounts and handoff tickets from the server's shell.

The verbs work on the project's database directly (like `kb`), so an operator can create the
first admin before any token exists. A reply or the rating question asked on resolve is stored
with an outbox row in the same transaction; the running `crowddesk run` server delivers it to
the customer's channel.
"""

from __future__ import annotations

import argparse
from functools import partial

from crowddesk.bot.cli.arguments import ProjectArg
from crowddesk.bot.cli.output import EXIT_CODES

# agents.ROLES and agents.DEFAULT_TOKEN_DAYS, spelled out so that building the parser imports
# nothing heavy (tests/test_desk_cli.py checks they agree).
ROLES = ("agent", "editor", "admin")
DEFAULT_TOKEN_DAYS = 90


def add_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser], project_arg: ProjectArg) -> None:
    """Register `crowddesk desk ...` on the top-level parser; `project_arg` adds `--project`."""
    desk = verbs.add_parser(
        "desk",
        help="agent accounts and handoff tickets, on the database",
        description=__doc__,
        epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = desk.add_subparsers(dest="desk_command", required=True, metavar="ACTION")
    leaf = partial(_verb, project_arg=project_arg)
    ticket_leaf = partial(_ticket_verb, project_arg=project_arg)

    agent = actions.add_parser("agent", help="add, list, disable agents; issue and revoke tokens")
    agent_actions = agent.add_subparsers(dest="agent_command", required=True, metavar="ACTION")
    add = leaf(agent_actions, "agent add", "create an account (the first admin too)")
    add.add_argument("agent", help="the agent id used to sign in (letters, digits, . _ - @)")
    add.add_argument("--name", help="shown to colleagues and customers (default: the id)")
    add.add_argument("--role", choices=ROLES, default="agent", help="default: agent")
    add.add_argument("--password-stdin", action="store_true", help="read a console password from standard input")
    listing = leaf(agent_actions, "agent list", "list accounts")
    listing.add_argument("--all", action="store_true", help="include disabled accounts")
    token = leaf(agent_actions, "agent token", "issue an API token (printed once)")
    token.add_argument("agent")
    token.add_argument(
        "--days",
        type=_positive_days,
        default=DEFAULT_TOKEN_DAYS,
        help=f"valid for this many days (default {DEFAULT_TOKEN_DAYS})",
    )
    leaf(
        agent_actions, "agent revoke-tokens", "revoke every token of an agent (signs them out everywhere)"
    ).add_argument("agent")
    leaf(
        agent_actions, "agent disable", "stop an agent signing in; their assigned tickets go back to the queue"
    ).add_argument("agent")

    tickets = leaf(actions, "tickets", "tickets, most urgent (soonest SLA due) first")
    tickets.add_argument("--status", choices=["queued", "assigned", "resolved"], help="default: queued and assigned")
    shown = leaf(actions, "show", "a ticket's packet, transcript and notes")
    shown.add_argument("ticket")
    shown.add_argument("--json", action="store_true", help="as the agent API returns it")
    ticket_leaf(actions, "claim", "take a queued ticket")
    ticket_leaf(actions, "reply", "answer the customer on their channel").add_argument("text")
    ticket_leaf(actions, "note", "add an internal note").add_argument("text")
    moved = ticket_leaf(actions, "transfer", "hand a ticket to another agent or the queue")
    target = moved.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", metavar="AGENT", help="the agent to hand it to")
    target.add_argument("--queue", action="store_true", help="put it back in the queue")
    ticket_leaf(actions, "resolve", "close; the bot takes over and asks for a rating")


def run(args: argparse.Namespace) -> int:
    """Run the parsed `desk` verb (heavy imports only now)."""
    from crowddesk.bot.cli.desk_verbs import run_verb

    return run_verb(args)


def _verb(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    verb: str,
    about: str,
    *,
    project_arg: ProjectArg,
) -> argparse.ArgumentParser:
    """A verb's parser; `verb` ("agent add", "claim", ...) names it in desk_commands.VERBS."""
    parser = actions.add_parser(verb.split()[-1], help=about, description=about)
    parser.set_defaults(desk_verb=verb)
    project_arg(parser)
    parser.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")
    return parser


def _ticket_verb(
    actions: argparse._SubParsersAction[argparse.ArgumentParser],
    verb: str,
    about: str,
    *,
    project_arg: ProjectArg,
) -> argparse.ArgumentParser:
    parser = _verb(actions, verb, about, project_arg=project_arg)
    parser.add_argument("ticket")
    parser.add_argument("--as", dest="agent", metavar="AGENT", required=True, help="the agent doing it")
    return parser


def _positive_days(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of days of at least 1")
    return int(text)
