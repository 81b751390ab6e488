"""The `crowddesk` command line: init, data validate, train, evaluate, run, shell, demo, kb, desk,
privacy, report, db."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence
from pathlib import Path

from crowddesk.bot.cli import db as db_cli
from crowddesk.bot.cli import desk as desk_cli
from crowddesk.bot.cli import kb as kb_cli
from crowddesk.bot.cli import privacy as privacy_cli
from crowddesk.bot.cli import report as report_cli
from crowddesk.bot.cli.arguments import positive_int
from crowddesk.bot.cli.output import EXIT_CODES, EXIT_REFUSED, refuse
from crowddesk.bot.simulation import MAX_WEEKS
from crowddesk.errors import CrowdDeskError


def _project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--project", "-p", type=Path, default=Path("."), help="bot project folder (default: current directory)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crowddesk", description=__doc__, epilog=EXIT_CODES)
    parser.add_argument("--verbose", "-v", action="store_true", help="debug logging")
    verbs = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    init = verbs.add_parser("init", help="create a new, working bot project")
    init.add_argument("directory", type=Path)

    data = verbs.add_parser("data", help="check project files")
    data_verbs = data.add_subparsers(dest="data_command", required=True, metavar="ACTION")
    validate = data_verbs.add_parser("validate", help="report every problem with file and line")
    _project_arg(validate)

    train = verbs.add_parser("train", help="train and calibrate a model into models/")
    _project_arg(train)
    train.add_argument("--force", action="store_true", help="retrain even if nothing changed")

    _evaluate_parser(verbs)

    run = verbs.add_parser("run", help="start the HTTP server (or `run actions`: the action server)")
    run.add_argument("target", nargs="?", choices=["actions"], help="`actions` starts the action server")
    _project_arg(run)
    run.add_argument("--host", default="127.0.0.1")
    run.add_argument("--port", type=int, default=None, help="default 5005 (server) / 5055 (actions)")
    run.add_argument("--model", type=Path, help="model folder (default: newest in models/)")
    run.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")
    run.add_argument(
        "--workers",
        type=positive_int,
        default=1,
        help="server processes on this port (default 1; more need PostgreSQL and a Redis lock store)",
    )
    run.add_argument(
        "--credentials", type=Path, help="channels and their settings (default: the project's credentials.yml)"
    )
    run.add_argument(
        "--auth-token",
        help="token for the tracker and parse routes (better: the "
        "CROWDDESK_API_TOKEN environment variable, which `ps` does not show)",
    )
    run.add_argument(
        "--jwt-secret",
        help="also accept JWTs signed with this secret (Rasa's payload "
        "{user: {username, role}}; better: CROWDDESK_JWT_SECRET)",
    )
    run.add_argument("--jwt-method", default="HS256", help="the JWTs' signing method: HS256 (default), HS384 or HS512")

    shell = verbs.add_parser("shell", help="chat with the trained bot in the terminal")
    _project_arg(shell)
    shell.add_argument("--model", type=Path)
    shell.add_argument("--database-url")

    demo = verbs.add_parser("demo", help="train if needed, start actions + server, and chat")
    _project_arg(demo)
    demo.add_argument("--port", type=int, default=5005)
    demo.add_argument("--actions-port", type=int, default=5055)
    demo.add_argument(
        "--simulate-weeks",
        type=int,
        choices=range(1, MAX_WEEKS + 1),
        metavar="N",
        help=f"first fill an empty database with N (1 to {MAX_WEEKS}) simulated weeks of customers and agents "
        "(simulation.yml); "
        "2 gives the dashboard a week to compare the last one with",
    )

    kb = verbs.add_parser("kb", help="manage the knowledge base")
    kb_verbs = kb.add_subparsers(dest="kb_command", required=True, metavar="ACTION")
    kb_import = kb_verbs.add_parser(
        "import", help="import FAQ entries (yaml, csv, markdown, rasa, stackexchange, discourse)"
    )
    kb_import.add_argument("source", type=Path, help="a file, a Rasa project or a folder of Discourse topics")
    kb_import.add_argument(
        "--format",
        help="yaml, csv, markdown, rasa, stackexchange (Posts.xml) or discourse (topic JSON) (default: from the file)",
    )
    kb_import.add_argument(
        "--site-url",
        default="",
        help="the community's address, e.g. https://superuser.com: source links and the site part of entry ids",
    )
    kb_list = kb_verbs.add_parser("list", help="list entries")
    kb_list.add_argument("--status", choices=["draft", "published", "retired"])
    kb_list.add_argument("--tag")
    kb_list.add_argument("--search")
    kb_list.add_argument("--limit", type=int, default=50)
    kb_list.add_argument("--json", action="store_true")
    kb_show = kb_verbs.add_parser("show", help="show one entry")
    kb_show.add_argument("entry_id")
    kb_add = kb_verbs.add_parser("add", help="add one entry")
    kb_add.add_argument("--id")
    kb_add.add_argument("--question", "-q", action="append", required=True, help="repeat for variants")
    kb_add.add_argument("--answer", "-a", required=True)
    kb_add.add_argument("--source-url", default="")
    kb_add.add_argument("--tag", action="append", default=[])
    kb_add.add_argument("--language", default="en")
    kb_retire = kb_verbs.add_parser("retire", help="stop serving an entry (kept for audit)")
    kb_retire.add_argument("entry_id")
    for sub in (kb_import, kb_list, kb_show, kb_add, kb_retire):
        _project_arg(sub)
        sub.add_argument("--database-url")
    kb_cli.add_parsers(kb_verbs, _project_arg)
    desk_cli.add_parser(verbs, _project_arg)
    privacy_cli.add_parser(verbs, _project_arg)
    report_cli.add_parser(verbs, _project_arg)
    db_cli.add_parser(verbs, _project_arg)
    return parser


def _evaluate_parser(verbs: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    evaluate = verbs.add_parser("evaluate", help="measure intents, FAQ retrieval or whole conversations")
    targets = evaluate.add_subparsers(dest="evaluate_command", required=True, metavar="WHAT")

    nlu = targets.add_parser("nlu", help="train on one set and score another (or cross-validate)")
    _project_arg(nlu)
    nlu.add_argument(
        "--train", type=Path, help="Rasa nlu.yml or CSV with text,intent columns (default: the project's data/)"
    )
    nlu.add_argument("--test", type=Path, help="messages to score, same formats (default: cross-validate)")
    nlu.add_argument("--folds", type=int, default=5, help="cross-validation folds without --test (default 5)")
    nlu.add_argument(
        "--out-of-scope-intent",
        help="label of messages a person should get (default: out_of_scope_intent in config.yml)",
    )
    nlu.add_argument(
        "--unseen-intents",
        type=int,
        default=0,
        metavar="K",
        help="open set: leave K intents (chosen by --seed, never the out-of-scope or a hand-off "
        "intent) out of training; their messages should be handed off",
    )
    nlu.add_argument("--seed", type=int, default=0, help="chooses the unseen intents (default 0)")
    nlu.add_argument("--out", type=Path, required=True, help="folder for report.json and report.html")

    kb = targets.add_parser("kb", help="score retrieval of the right FAQ entry per question")
    _project_arg(kb)
    kb.add_argument("--test", type=Path, required=True, help="CSV with query,entry_id columns, or a YAML list")
    kb.add_argument("--out", type=Path, required=True, help="folder for report.json and report.html")
    kb.add_argument("--model", type=Path, help="model folder (default: newest in models/)")
    kb.add_argument("--database-url", help="SQLAlchemy URL (default: endpoints.yml, then SQLite)")
    kb.add_argument(
        "--unseen-entries",
        type=int,
        default=0,
        metavar="K",
        help="open set: treat K of the entries the test queries point at (chosen by --seed) as "
        "absent; their queries should be handed off (needs a trained model)",
    )
    kb.add_argument("--seed", type=int, default=0, help="chooses the unseen entries (default 0)")

    conversations = targets.add_parser("conversations", help="run test stories against the bot")
    _project_arg(conversations)
    conversations.add_argument(
        "--stories",
        type=Path,
        help="a Rasa test story file or a folder of them (default: tests/test_stories.yml in the project, "
        "else every story file under tests/)",
    )
    conversations.add_argument("--model", type=Path, help="model folder (default: train if needed)")
    conversations.add_argument(
        "--core",
        action="store_true",
        help="check as `rasa test core` does: replay each story's own events and predict only its actions "
        "(no action runs; default: play each story as a live conversation)",
    )
    conversations.add_argument(
        "--endpoint",
        help="action server webhook URL (default: endpoints.yml; "
        "the project's own is started when needed and none answers)",
    )
    conversations.add_argument(
        "--out", type=Path, help="also write story_report.json and failed_test_stories.yml to this folder"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    from crowddesk.bot.cli import verbs as commands  # heavy imports only once a command runs

    handler = {
        "init": commands.init,
        "data": commands.data_validate,
        "train": commands.train,
        "evaluate": commands.evaluate,
        "run": commands.run,
        "shell": commands.shell,
        "demo": commands.demo,
        "kb": kb_cli.run if getattr(args, "kb_command", None) in kb_cli.VERBS else commands.kb,
        "desk": desk_cli.run,
        "privacy": privacy_cli.run,
        "report": report_cli.run,
        "db": db_cli.run,
    }[args.command]
    try:
        return handler(args)
    except CrowdDeskError as exc:
        return refuse(exc)
    except KeyboardInterrupt:
        return EXIT_REFUSED
