"""What each `crowddesk` verb does; bot/cli/main.py only parses arguments."""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import secrets
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from crowddesk.bot.cli.output import say
from crowddesk.bot.conversations.audit import cli_actor
from crowddesk.bot.dialogue.policies.problems import rule_conflicts
from crowddesk.bot.evaluation.conversations import replay_conversation_tests, run_conversation_tests
from crowddesk.bot.evaluation.data import KBQuery, load_conversation_tests, load_kb_queries, load_labelled_messages
from crowddesk.bot.evaluation.html_report import render_kb_report, render_nlu_report
from crowddesk.bot.evaluation.kb import Calibration, evaluate_kb, project_knowledge_base
from crowddesk.bot.evaluation.kb import summary_lines as kb_summary
from crowddesk.bot.evaluation.metrics import format_table, write_report
from crowddesk.bot.evaluation.nlu import NluEvaluator, NluSettings
from crowddesk.bot.evaluation.nlu import summary_lines as nlu_summary
from crowddesk.bot.evaluation.open_set import held_out
from crowddesk.bot.evaluation.story_report import summary_lines as conversation_summary
from crowddesk.bot.evaluation.story_report import write_story_report
from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.loading import CONFIG_FILE, Project, load_project
from crowddesk.bot.project.scaffold import scaffold_project
from crowddesk.bot.project.validation import validate_project
from crowddesk.bot.project.yaml_files import display_path
from crowddesk.bot.server.action_server import (
    DEFAULT_PORT as ACTIONS_PORT,
)
from crowddesk.bot.server.action_server import (
    action_server_command,
    start_action_server,
    stop,
)
from crowddesk.bot.server.api_access import TOKEN_ENV, ApiAccess
from crowddesk.bot.server.assemble import Bot, assemble, models_dir, open_database
from crowddesk.bot.simulation.operation import Played
from crowddesk.bot.simulation.weeks import simulate_weeks
from crowddesk.bot.training.model import TrainedModel, latest_model_dir
from crowddesk.bot.training.trainer import TrainResult, never_answered_intents
from crowddesk.bot.training.trainer import train as train_model
from crowddesk.errors import Conflict, Rejected
from crowddesk.knowledge_base.ingest import IngestOptions, ingest
from crowddesk.knowledge_base.sources.community import AnswerRules, CommunitySource, ImportBatch
from crowddesk.knowledge_base.sources.importers import importer_for
from crowddesk.knowledge_base.store import KnowledgeBaseStore, UnknownEntry
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.nlu.encoders import load_encoder, use_serving_threads

SERVER_PORT = 5005
STORIES_FILE = Path("tests") / "test_stories.yml"


class CommandError(Rejected):
    """A verb that can't be done as asked, printed as one line."""


def init(args: argparse.Namespace) -> int:
    created = scaffold_project(args.directory)
    say(f"Created a bot project in {args.directory} ({len(created)} files). Next:")
    say(f"  cd {args.directory} && crowddesk train && crowddesk shell")
    return 0


def _report_problems(project_root: Path) -> int:
    """Print every problem in the project's files; returns the number of errors."""
    problems = validate_project(project_root, checks=[rule_conflicts])
    for problem in problems:
        where = f"{problem.path}:{problem.line}" if problem.line else problem.path
        key = f"{problem.key}: " if problem.key else ""
        say(f"{where}: {problem.severity}: {key}{problem.message}")
    errors = sum(1 for p in problems if p.severity == "error")
    if problems:
        say(f"{errors} error(s), {len(problems) - errors} warning(s)")
    return errors


def data_validate(args: argparse.Namespace) -> int:
    errors = _report_problems(args.project)
    if not errors:
        say("Project files are valid.")
    return 1 if errors else 0


def train(args: argparse.Namespace) -> int:
    if _report_problems(args.project):
        raise CommandError("fix the errors above, then train again")
    _train_and_report(load_project(args.project), force=args.force)
    return 0


def _train_and_report(project: Project, *, force: bool = False) -> TrainResult:
    result = train_model(project, models_dir(project.root), force=force, progress=say, show_bars=sys.stderr.isatty())
    report = result.report
    if not result.skipped:
        say(f"Model saved to {result.model_dir}")
    say(
        f"Answer threshold {report.answer_threshold:.3f} for target precision "
        f"{report.target_precision:.0%}: expected automation rate {report.expected_automation_rate:.1%} "
        f"at {report.expected_precision:.1%} precision on held-out folds "
        f"({report.examples} examples, {report.intents} intents, {report.kb_entries} FAQ entries)."
    )
    if report.tradeoff:
        say(
            f"These assume {report.unseen_topic_share:.0%} of messages are about topics nothing covers "
            f"(policy unseen_topic_share; estimated from {report.unseen_topic_examples} predictions by "
            "models that never saw their intent). With another share:"
        )
        say(
            format_table(
                [
                    "unseen topics",
                    "threshold",
                    "automation",
                    "precision",
                    "known topics answered right",
                    "unseen topics handed off",
                ],
                [
                    [
                        f"{point['unseen_topic_share']:.0%}",
                        f"{point['answer_threshold']:.3f}",
                        f"{point['expected_automation_rate']:.1%}",
                        f"{point['expected_precision']:.1%}",
                        f"{point['known_topics_answered_right']:.1%}",
                        f"{point['unseen_topics_handed_off']:.1%}",
                    ]
                    for point in report.tradeoff
                ],
            )
        )
    return result


def evaluate(args: argparse.Namespace) -> int:
    return {
        "nlu": _evaluate_nlu,
        "kb": _evaluate_kb,
        "conversations": _evaluate_conversations,
    }[args.evaluate_command](args)


def _evaluate_nlu(args: argparse.Namespace) -> int:
    if args.train is None:
        project = load_project(args.project)
        config, train = project.config, project.data.examples
    else:
        config = load_config(args.project / CONFIG_FILE, root=args.project)
        train = load_labelled_messages(args.train)
    test = load_labelled_messages(args.test) if args.test is not None else None
    settings = NluSettings.from_config(config, args.out_of_scope_intent)
    evaluator = NluEvaluator(settings, progress=say)
    try:
        unseen = (
            held_out((e.intent for e in train), args.unseen_intents, args.seed, never_answered_intents(settings.policy))
            if args.unseen_intents
            else frozenset()
        )
        report = (
            evaluator.train_test(train, test, unseen)
            if test is not None
            else evaluator.cross_validate(train, args.folds, unseen)
        )
    except ValueError as exc:  # too many folds or unseen intents, or fewer than two intents to learn
        raise CommandError(str(exc)) from exc
    if unseen:
        report["open_set"]["seed"] = args.seed
    report["data"].update(train=str(args.train or "project data/"), test=str(args.test or "cross-validation"))
    _print_and_write(args.out, report, nlu_summary(report), render_nlu_report(report))
    return 0


def _evaluate_kb(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    queries = load_kb_queries(args.test)
    model_dir = args.model or latest_model_dir(models_dir(project.root))
    model = TrainedModel.load(model_dir) if model_dir is not None else None
    unseen = _unseen_entries(args, queries, model is not None)
    if model is None:
        say("No trained model: confidences are raw retriever scores, with no answer threshold.")
    encoder = load_encoder(model.metadata.encoder if model else project.config.encoder.model)
    database = open_database(project, args.database_url)
    try:
        knowledge_base = project_knowledge_base(project, database, encoder)
        report = evaluate_kb(
            knowledge_base.retriever,
            encoder,
            queries,
            Calibration.of(model) if model else None,
            unseen=unseen,
            progress=say,
        )
    finally:
        database.dispose()
    report["model"] = model_dir.name if model_dir is not None else None
    if unseen:
        report["open_set"]["seed"] = args.seed
    _print_and_write(args.out, report, kb_summary(report), render_kb_report(report))
    return 0


def _unseen_entries(args: argparse.Namespace, queries: list[KBQuery], trained: bool) -> frozenset[str]:
    """The entries `--unseen-entries` treats as absent, checked before anything heavy loads."""
    if not args.unseen_entries:
        return frozenset()
    try:
        unseen = held_out((query.entry_id for query in queries), args.unseen_entries, args.seed, kind="entries")
    except ValueError as exc:
        raise CommandError(f"{exc}; the candidates are the entries the queries in {args.test} point at") from exc
    if not trained:
        raise CommandError(
            "--unseen-entries needs a trained model (run `crowddesk train`): without its answer "
            "threshold no query is ever handed off"
        )
    return unseen


def _evaluate_conversations(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    stories = args.stories or project.root / STORIES_FILE
    if args.stories is None and not stories.exists():
        stories = project.root / STORIES_FILE.parent
        say(f"No {STORIES_FILE}: running every test story file under {STORIES_FILE.parent}/")
    tests = load_conversation_tests(stories, root=project.root)
    say("Test stories: " + ", ".join(str(display_path(path, project.root)) for path in tests.files))
    for warning in tests.warnings:
        say(f"warning: {warning}")
    model_dir = args.model or _train_and_report(project).model_dir
    if args.core:
        say(f"Replaying {len(tests.stories)} test stories as `rasa test core` does: only the actions are predicted")
        results = replay_conversation_tests(project, tests.stories, model_dir=model_dir)
    else:
        results = run_conversation_tests(
            project, tests.stories, model_dir=model_dir, action_endpoint=args.endpoint, progress=say
        )
    for line in conversation_summary(results):
        say(line)
    if args.out is not None:
        say("Report: " + ", ".join(str(path) for path in write_story_report(args.out, results)))
    return 1 if any(result.failure for result in results) else 0


def _print_and_write(out: Path | None, report: dict[str, Any], summary: list[str], html: str | None) -> None:
    for line in summary:
        say(line)
    if out is not None:
        say("Report: " + ", ".join(str(path) for path in write_report(out, report, html)))


def _bot(args: argparse.Namespace, action_endpoint: str | None = None) -> Bot:
    return assemble(
        args.project,
        model_dir=getattr(args, "model", None),
        database_url=getattr(args, "database_url", None),
        action_endpoint=action_endpoint,
        credentials=getattr(args, "credentials", None),
    )


def run(args: argparse.Namespace) -> int:
    if args.target == "actions":
        command = action_server_command("actions", args.port or ACTIONS_PORT)
        say(f"Starting the action server: {' '.join(command[1:])}")
        return subprocess.call(command, cwd=args.project)
    import uvicorn

    from crowddesk.bot.server.app import create_app
    from crowddesk.bot.server.log_scrubbing import uvicorn_log_config

    access = ApiAccess.configured(args.auth_token, args.jwt_secret, args.jwt_method)
    if args.workers > 1:
        return _run_workers(args, access)
    use_serving_threads()
    app = create_app(_bot(args), access)
    uvicorn.run(app, host=args.host, port=args.port or SERVER_PORT, log_level="info", log_config=uvicorn_log_config())
    return 0


def _run_workers(args: argparse.Namespace, access: ApiAccess) -> int:
    """`--workers N`: uvicorn starts N processes on one port, each building its own bot."""
    import uvicorn

    from crowddesk.bot.server.database import open_database
    from crowddesk.bot.server.log_scrubbing import uvicorn_log_config
    from crowddesk.bot.server.workers import FACTORY, WorkerSettings, check_shared_stores, hand_to_workers

    project = load_project(args.project)
    check_shared_stores(project, args.database_url, args.workers)
    # Upgrade the schema once, before the workers race to.
    open_database(project, args.database_url).dispose()
    settings = WorkerSettings(
        project=str(args.project.resolve()),
        model=str(args.model.resolve()) if args.model else None,
        credentials=str(args.credentials.resolve()) if args.credentials else None,
        jwt_method=args.jwt_method,
    )
    hand_to_workers(settings, args.database_url, access)
    say(f"Starting {args.workers} server processes on port {args.port or SERVER_PORT}")
    uvicorn.run(
        FACTORY,
        factory=True,
        workers=args.workers,
        host=args.host,
        port=args.port or SERVER_PORT,
        log_level="info",
        log_config=uvicorn_log_config(),
    )
    return 0


def shell(args: argparse.Namespace) -> int:
    asyncio.run(_chat_then_close(_bot(args)))
    return 0


async def _chat_then_close(bot: Bot) -> None:
    from crowddesk.bot.server.shell import chat

    try:
        await chat(bot.engine)
    finally:
        await bot.aclose()


def demo(args: argparse.Namespace) -> int:
    import uvicorn

    from crowddesk.bot.server.app import create_app
    from crowddesk.bot.server.log_scrubbing import uvicorn_log_config

    project = load_project(args.project)
    _train_and_report(project)
    use_serving_threads()
    say(f"Starting the action server on 127.0.0.1:{args.actions_port}")
    actions = start_action_server(project.root, port=args.actions_port)
    try:
        bot = assemble(project.root, action_endpoint=f"http://127.0.0.1:{args.actions_port}/webhook")
        if args.simulate_weeks:
            _simulate(bot, args.simulate_weeks, args.port)
        access = _demo_access(args.port)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(bot, access),
                host="127.0.0.1",
                port=args.port,
                log_level="warning",
                log_config=uvicorn_log_config(),
            )
        )
        if not sys.stdin.isatty():
            say(f"Serving on http://127.0.0.1:{args.port} (API docs at /docs). Ctrl+C stops.")
            server.run()
            return 0
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        say(f"HTTP API on http://127.0.0.1:{args.port} (docs at /docs); chat below.")
        asyncio.run(_chat_then_close(bot))
        server.should_exit = True
        thread.join(timeout=10)
        return 0
    finally:
        stop(actions)


# The demo's reader of the simulated weeks: an editor sees the whole scorecard, and can't manage accounts.
LEAD = "lead"


def _simulate(bot: Bot, weeks: int, port: int) -> None:
    """Fill the demo's empty database with the weeks before now, and open an account that can
    read their scorecard; a database that already holds conversations is left as it is (the demo
    goes on)."""
    say(f"Simulating the past {weeks} week(s): customers ask, the bot answers, agents work the queue...")

    def day_done(day: datetime, played: Played) -> None:
        say(f"  up to {day:%a %d %b}: {played.customers} customers, {played.tickets} tickets")

    try:
        played = asyncio.run(
            simulate_weeks(bot.project, bot.engine, bot.agents, bot.database, datetime.now(UTC), weeks, day_done)
        )
    except Conflict as exc:
        say(f"Not simulating: {exc}")
        return
    say(
        f"Simulated: {played.customers} customers sent {played.messages} messages; "
        f"{played.tickets} tickets ({played.resolved} resolved), {played.ratings} ratings. "
        "See `crowddesk report`, or the dashboard:"
    )
    if bot.agents.get(LEAD) is None:
        password = secrets.token_urlsafe(12)
        bot.agents.add(LEAD, "Support lead", role="editor", password=password)
        say(f"  http://127.0.0.1:{port}/analytics, signed in as {LEAD} with password {password} (shown once)")
    else:
        say(f"  http://127.0.0.1:{port}/analytics, signed in as {LEAD} (its password was shown when it was made)")


def _demo_access(port: int) -> ApiAccess:
    """The demo's API access: CROWDDESK_API_TOKEN, or a fresh token printed for this run."""
    access = ApiAccess.configured()
    token = f"${TOKEN_ENV}"  # an operator's own token is not printed
    if access.token is None:
        token = secrets.token_urlsafe(24)
        access = replace(access, token=token)
        say(f"API token for this run (set {TOKEN_ENV} to choose your own): {token}")
    say(
        f'Read the chat below: curl -H "Authorization: Bearer {token}" '
        f"http://127.0.0.1:{port}/conversations/shell/tracker"
    )
    return access


def kb(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    store = KnowledgeBaseStore(open_database(project, args.database_url))
    if args.kb_command == "import":
        return _kb_import(project, store, args)
    stale = _stale_check(project)
    if args.kb_command == "list":
        status = EntryStatus(args.status) if args.status else None
        entries = store.list(status=status, tag=args.tag, text=args.search, limit=args.limit)
        if args.json:
            say(json.dumps([{**e.as_dict(), "stale": stale(e)} for e in entries], indent=2, ensure_ascii=False))
        else:
            for entry in entries:
                flag = "stale" if stale(entry) else ""
                say(f"{entry.id:40.40}  {entry.status.value:9}  {flag:5}  {entry.title[:70]}")
            say(f"{len(entries)} of {store.count(status)} entries")
        return 0
    if args.kb_command == "show":
        found = store.get(args.entry_id)
        if found is None:
            raise UnknownEntry(f"no KB entry {args.entry_id!r} (see `crowddesk kb list`)")
        say(json.dumps({**found.as_dict(), "stale": stale(found)}, indent=2, ensure_ascii=False))
        return 0
    if args.kb_command == "add":
        entry = KBEntry(
            id=args.id or _slug_id(args.question[0]),
            questions=args.question,
            answer=args.answer,
            source_url=args.source_url,
            tags=args.tag,
            language=args.language,
        )
        created = store.upsert(project.config.retriever.ingestion.redactor().redact_entry(entry), actor=cli_actor())
        say(f"{'Added' if created else 'Updated'} {entry.id}")
        return 0
    store.set_status(args.entry_id, EntryStatus.RETIRED, actor=cli_actor())
    say(f"Retired {args.entry_id}")
    return 0


def _stale_check(project: Project) -> Callable[[KBEntry], bool]:
    """Whether an entry saw no change for the project's `stale_after_days`."""
    stale_after = timedelta(days=project.config.retriever.ingestion.stale_after_days)
    now = datetime.now(UTC)
    return lambda entry: entry.is_stale(now, stale_after)


def _kb_import(project: Project, store: KnowledgeBaseStore, args: argparse.Namespace) -> int:
    from tqdm import tqdm

    settings = project.config.retriever.ingestion
    rules = AnswerRules(min_score=settings.min_answer_score, min_chars=settings.min_answer_chars)
    importer = importer_for(args.source, args.format, site_url=args.site_url, rules=rules)
    if isinstance(importer, CommunitySource):
        batch = importer.read(args.source)
        # Many people ask the same thing in a community; hand-written FAQ files are kept as written.
        encoder = load_encoder(project.config.encoder.model)
    else:
        batch, encoder = ImportBatch(importer.load(args.source)), None
    options = IngestOptions(
        duplicate_threshold=settings.duplicate_threshold,
        redact_patterns=settings.redact_patterns,
        stale_after=timedelta(days=settings.stale_after_days),
    )
    summary = ingest(
        store,
        batch,
        encoder=encoder,
        options=options,
        progress=lambda entries: tqdm(
            entries, desc=f"Importing {args.source.name}", unit="entry", disable=not sys.stderr.isatty()
        ),
    )
    for line in summary.lines(str(args.source)):
        say(line)
    return 0


def _slug_id(question: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", question.lower()).strip("-")[:60]
    return f"manual:{slug or 'entry'}"
