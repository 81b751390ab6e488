"""What each `crowddesk kb` curation verb does; bot/cli/kb.py only parses."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import tempfile
from datetime import UTC, datetime, timedelta
from pathlib import Path

import yaml

from crowddesk.bot.cli.output import say
from crowddesk.bot.cli.verbs import CommandError
from crowddesk.bot.curation.gaps import gap_report
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.database import open_database
from crowddesk.knowledge_base.store import KnowledgeBaseStore, UnknownEntry
from crowddesk.knowledge_base.suggestions import Suggestion, Suggestions
from crowddesk.knowledge_base.types import EntryStatus
from crowddesk.knowledge_base.usage import UsageReport
from crowddesk.nlu.encoders import load_encoder


def run_verb(args: argparse.Namespace) -> int:
    """Run `crowddesk kb <verb>`; its refusals reach main's one error path (an unknown entry,
    version or suggestion exits EXIT_NOT_FOUND)."""
    return _VERBS[args.kb_command](args)


def _store(args: argparse.Namespace) -> KnowledgeBaseStore:
    return KnowledgeBaseStore(open_database(load_project(args.project), args.database_url))


def _suggestions(args: argparse.Namespace) -> Suggestions:
    project = load_project(args.project)
    redactor = project.config.retriever.ingestion.redactor()
    return Suggestions(open_database(project, args.database_url), redactor)


def history(args: argparse.Namespace) -> int:
    versions = _store(args).history(args.entry_id)
    if not versions:
        raise UnknownEntry(f"no KB entry {args.entry_id!r} (see `crowddesk kb list`)")
    if args.json:
        say(json.dumps([v.as_dict() for v in versions], indent=2, ensure_ascii=False))
        return 0
    for v in versions:
        note = f"  — {v.comment}" if v.comment else ""
        say(f"v{v.version:<3} {v.created_at:%Y-%m-%d %H:%M}  {v.action:8} {v.status.value:9} by {v.actor}{note}")
    return 0


def restore(args: argparse.Namespace) -> int:
    entry = _store(args).restore(args.entry_id, args.version, actor=args.actor, comment=args.comment)
    say(f"Restored {entry.id} to the content of version {args.version} (still {entry.status.value})")
    return 0


def publish(args: argparse.Namespace) -> int:
    _store(args).set_status(args.entry_id, EntryStatus.PUBLISHED, actor=args.actor, comment=args.comment)
    say(f"Published {args.entry_id}")
    return 0


def suggestions(args: argparse.Namespace) -> int:
    found = _suggestions(args).list(None if args.status == "all" else args.status)
    if args.json:
        say(json.dumps([s.as_dict() for s in found], indent=2, ensure_ascii=False))
        return 0
    for s in found:
        say(f"#{s.id:<4} {s.status:8} ticket {s.ticket_id}  by {s.agent}")
        for question in s.questions:
            say(f"      Q: {question}")
        say(f"      A: {s.answer[:200]}")
    say(f"{len(found)} suggestion(s)")
    return 0


def approve(args: argparse.Namespace) -> int:
    box = _suggestions(args)
    questions, answer = None, None
    if args.edit:
        questions, answer = _edit(box.get(args.suggestion_id))
    entry = box.approve(args.suggestion_id, args.actor, questions=questions, answer=answer)
    say(f"Approved suggestion {args.suggestion_id}: published {entry.id}")
    return 0


def reject(args: argparse.Namespace) -> int:
    _suggestions(args).reject(args.suggestion_id, args.actor, args.reason)
    say(f"Rejected suggestion {args.suggestion_id}")
    return 0


def gaps(args: argparse.Namespace) -> int:
    project = load_project(args.project)
    database = open_database(project, args.database_url)
    since = datetime.now(UTC) - timedelta(days=args.since) if args.since else None
    clusters = gap_report(
        database,
        load_encoder(project.config.encoder.model),
        since=since,
        redactor=project.config.retriever.ingestion.redactor(),
    )[: args.limit]
    if args.json:
        say(json.dumps([c.as_dict() for c in clusters], indent=2, ensure_ascii=False))
        return 0
    for rank, cluster in enumerate(clusters, start=1):
        say(f"{rank:>2}. {cluster.size} question(s), last {cluster.last_seen:%Y-%m-%d}")
        for example in cluster.examples:
            say(f"      {example}")
    if not clusters:
        say("No unanswered questions" + (f" in the last {args.since:g} days" if args.since else ""))
    return 0


def usage(args: argparse.Namespace) -> int:
    database = open_database(load_project(args.project), args.database_url)
    lines = UsageReport(database).lines(order=args.order, limit=args.limit)
    if args.json:
        say(json.dumps([line.as_dict() for line in lines], indent=2, ensure_ascii=False))
        return 0
    if not lines:
        say("No entries in the knowledge base")
        return 0
    width = max(len(line.usage.entry_id) for line in lines)
    say(f"{'entry':<{width}}  {'status':9} {'served':>6} {'helpful':>7} {'unhelpful':>9}  last served       question")
    for line in lines:
        u = line.usage
        last = f"{u.last_served_at:%Y-%m-%d %H:%M}" if u.last_served_at else "never"
        say(
            f"{u.entry_id:<{width}}  {line.status:9} {u.served:>6} {u.helpful:>7} {u.unhelpful:>9}  "
            f"{last:<16}  {line.question[:60]}"
        )
    return 0


def _edit(suggestion: Suggestion) -> tuple[list[str], str]:
    """Let the editor change questions and answer in $EDITOR (a YAML document)."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        raise CommandError("--edit needs $EDITOR (or $VISUAL) set to an editor command")
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / f"suggestion-{suggestion.id}.yml"
        path.write_text(
            yaml.safe_dump(
                {"questions": suggestion.questions, "answer": suggestion.answer}, allow_unicode=True, sort_keys=False
            ),
            encoding="utf-8",
        )
        status = subprocess.run([*shlex.split(editor), str(path)], check=False).returncode
        if status != 0:
            raise CommandError(f"the editor exited with status {status}; nothing was approved")
        try:
            edited = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as exc:
            raise CommandError(f"{path.name} is no longer valid YAML ({exc}); nothing was approved") from exc
    questions, answer = (edited.get("questions"), edited.get("answer")) if isinstance(edited, dict) else (None, None)
    if not isinstance(questions, list) or not all(isinstance(q, str) for q in questions) or not isinstance(answer, str):
        raise CommandError(f"{path.name}: needs `questions` (a list of texts) and `answer` (a text)")
    return questions, answer


_VERBS = {
    "history": history,
    "restore": restore,
    "publish": publish,
    "suggestions": suggestions,
    "approve": approve,
    "reject": reject,
    "gaps": gaps,
    "usage": usage,
}
