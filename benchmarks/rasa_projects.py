"""CrowdDesk beside Rasa 3.6.21 on the corpus projects' own stories: stories passed, actions
correct, training time and per-turn latency. Run by hand, never in CI.

    python -m benchmarks.rasa_projects [--rasa-python /tmp/rasa310/bin/python]

Each project is copied to a temporary folder first (both systems write into a project). Stories
are the ones the corpus README ran with `rasa test core`: the training stories, or e2ebot's test
stories; the custom actions come from tests/rasa_project_actions/<project>/, served by the
rasa_sdk of each system's own interpreter.

- CrowdDesk: `crowddesk train --force` (wall time, process start included), then every story
  through the real engine (`run_conversation_tests`); a turn is one `Engine.handle` call, custom
  action calls included, timed while the stories run.
- Rasa: `rasa train` (wall time, process start included; e2ebot's `LanguageModelFeaturizer` is
  removed, as the corpus README did, since `transformers` is not installed), then `rasa test core
  --stories` (its printed CONVERSATION and ACTION "Correct: n / m" lines; its action count includes
  `action_listen`); a turn is one `Agent.handle_text` call in-process, on the stories' user
  messages, with the custom actions served.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.rasa36 import check_rasa, timed_run
from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.evaluation.conversations import replay_conversation_tests, run_conversation_tests
from crowddesk.bot.evaluation.data import load_conversation_tests
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.evaluation.story_run import StoryResult, payload_text
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.story_steps import UserStep
from crowddesk.bot.project.training_data import Story
from crowddesk.bot.server.action_server import start_action_server, stop, wait_until_healthy
from crowddesk.bot.training.model import latest_model_dir
from tests.demo_bot import free_port
from tests.rasa_corpus import REPO_ROOT, corpus_root

ACTIONS_DIR = REPO_ROOT / "tests" / "rasa_project_actions"
# The stories `rasa test core` ran per project in the corpus README.
STORIES = {
    "concertbot": "data/stories.yml",
    "pokedex": "data/stories.yml",
    "envirocar": "data/stories.yml",
    "e2ebot": "tests/test_stories.yaml",
}
# Pipeline entries Rasa cannot load here: `transformers` is not installed.
RASA_UNAVAILABLE_COMPONENTS = frozenset({"LanguageModelFeaturizer"})
# Rasa's `rasa test core` summary: the CONVERSATION line first, then the ACTION line.
RASA_CORRECT = re.compile(r"Correct:\s+(\d+)\s*/\s*(\d+)")

# Run by the Rasa interpreter: one Agent, each conversation's messages in turn, each turn timed.
RASA_TURNS_SCRIPT = """\
import asyncio, json, sys, time
from rasa.core.agent import load_agent
from rasa.core.utils import AvailableEndpoints
from rasa.utils.endpoints import EndpointConfig

async def main(model, action_url, conversations, rounds):
    action = EndpointConfig(action_url) if action_url else None
    agent = await load_agent(model_path=model, endpoints=AvailableEndpoints(action=action))
    seconds = []
    for round in range(rounds + 1):  # round 0 warms up and is not kept
        for number, messages in enumerate(conversations):
            for message in messages:
                start = time.perf_counter()
                await agent.handle_text(message, sender_id=f"round-{round}-story-{number}")
                if round:
                    seconds.append(time.perf_counter() - start)
    print(json.dumps(seconds))

model, action_url, path, rounds = sys.argv[1:5]
asyncio.run(main(model, action_url or None, json.load(open(path)), int(rounds)))
"""


@dataclass(frozen=True)
class LiveRun:
    """One project's stories run through CrowdDesk's engine, with the engine turns' wall times."""

    project: str
    results: list[StoryResult]
    turn_seconds: list[float]

    @property
    def stories_passed(self) -> int:
        return sum(not result.failures for result in self.results)

    @property
    def actions_correct(self) -> tuple[int, int]:
        return sum(r.correct_actions for r in self.results), sum(r.actions for r in self.results)


def copy_project(source: Path, target: Path) -> Path:
    """A writable copy without what an earlier run left (models, CrowdDesk's index folder); the
    corpus is read-only, and copies keep the mode bits. Name `target` after the project."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("models", ".crowddesk", "results"))
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    return target


def load_stories(root: Path) -> list[Story]:
    """The stories of the project (or copy) at `root`, named by its folder."""
    return load_conversation_tests(root / STORIES[root.name], root=root).stories


@contextmanager
def actions_served(name: str, python: str = sys.executable) -> Iterator[str | None]:
    """The webhook of the project's test actions on rasa_sdk under `python`; None if it has none."""
    folder = ACTIONS_DIR / name
    if not (folder / "actions").is_dir():
        yield None
        return
    port = free_port()
    if python == sys.executable:
        process = start_action_server(folder, port=port)
    else:
        process = _foreign_action_server(folder, port, python)
    try:
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        stop(process)


def _foreign_action_server(folder: Path, port: int, python: str) -> subprocess.Popen[bytes]:
    log_path = Path(tempfile.mkdtemp(prefix="crowddesk-actions-")) / "action-server.log"
    with log_path.open("wb") as log:
        command = [python, "-m", "rasa_sdk", "--actions", "actions", "--port", str(port)]
        process = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    wait_until_healthy(f"http://127.0.0.1:{port}/health", process, log_path)
    return process


@contextmanager
def timed_engine_turns() -> Iterator[list[float]]:
    """Every `Engine.handle` call's wall time while the block runs."""
    seconds: list[float] = []
    handle = Engine.handle

    async def timed(self: Engine, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return await handle(self, *args, **kwargs)
        finally:
            seconds.append(time.perf_counter() - start)

    Engine.handle = timed  # type: ignore[method-assign]
    try:
        yield seconds
    finally:
        Engine.handle = handle  # type: ignore[method-assign]


def run_live(root: Path, model_dir: Path) -> LiveRun:
    """The project's stories (STORIES) through the engine, its test actions served."""
    project = load_project(root)
    stories = load_stories(root)
    with actions_served(root.name) as endpoint, timed_engine_turns() as seconds:
        results = run_conversation_tests(project, stories, model_dir=model_dir, action_endpoint=endpoint)
    return LiveRun(root.name, results, seconds)


def user_messages(story: Story) -> list[str]:
    """What the story's customer sends: the text, or the intent as Rasa's payload."""
    return [
        step.text if step.text is not None else payload_text(step) for step in story.steps if isinstance(step, UserStep)
    ]


def turn_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000.0
    return {
        "turns": len(ms),
        "mean_ms": round(float(ms.mean()), 2),
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p95_ms": round(float(np.percentile(ms, 95)), 2),
    }


def crowddesk_side(root: Path, logs: Path, rounds: int) -> dict[str, Any]:
    train_seconds = timed_run(
        [sys.executable, "-m", "crowddesk.bot.cli", "train", "--project", str(root), "--force"],
        root,
        dict(os.environ),
        logs / f"crowddesk-train-{root.name}.log",
    )
    model_dir = latest_model_dir(root / "models")
    if model_dir is None:
        raise RuntimeError(f"crowddesk train wrote no model under {root / 'models'}")
    run = run_live(root, model_dir)  # the verdicts; its turns warm up and are not kept
    turn_seconds = [seconds for _ in range(rounds) for seconds in run_live(root, model_dir).turn_seconds]
    correct, total = run.actions_correct
    core = replay_conversation_tests(load_project(root), load_stories(root), model_dir=model_dir)
    return {
        "stories_passed": [run.stories_passed, len(run.results)],
        "actions_correct": [correct, total],
        # As `rasa test core` checks them: the story's steps replayed, only its actions predicted.
        "core_stories_passed": [sum(result.failure is None for result in core), len(core)],
        "train_seconds": round(train_seconds, 1),
        "turn": turn_summary(turn_seconds),
        "failures": [str(failure) for result in run.results for failure in result.failures],
    }


def without_unavailable_components(config_path: Path) -> list[str]:
    """Drop the pipeline entries Rasa cannot load here; the names dropped."""
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    pipeline = config.get("pipeline") or []
    dropped = [entry["name"] for entry in pipeline if entry.get("name") in RASA_UNAVAILABLE_COMPONENTS]
    if dropped:
        config["pipeline"] = [entry for entry in pipeline if entry.get("name") not in RASA_UNAVAILABLE_COMPONENTS]
        config_path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return dropped


def rasa_side(root: Path, rasa_python: Path, logs: Path, rounds: int) -> dict[str, Any]:
    rasa = [str(rasa_python), "-m", "rasa"]
    env = {**os.environ, "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
    dropped = without_unavailable_components(root / "config.yml")
    train_seconds = timed_run([*rasa, "train", "--out", "models"], root, env, logs / f"rasa-train-{root.name}.log")
    model = max((root / "models").glob("*.tar.gz"), key=lambda path: path.stat().st_mtime)
    test_log = logs / f"rasa-test-{root.name}.log"
    test = [*rasa, "test", "core", "--model", str(model), "--stories", STORIES[root.name], "--out", "results"]
    timed_run(test, root, env, test_log)
    (stories, story_total), (actions, action_total) = [
        (int(a), int(b)) for a, b in RASA_CORRECT.findall(test_log.read_text(errors="replace"))[:2]
    ]
    conversations = [user_messages(story) for story in load_stories(root)]
    messages_path = logs / f"messages-{root.name}.json"
    messages_path.write_text(json.dumps(conversations), encoding="utf-8")
    with actions_served(root.name, str(rasa_python)) as endpoint:
        turns = subprocess.run(
            [str(rasa_python), "-c", RASA_TURNS_SCRIPT, str(model), endpoint or "", str(messages_path), str(rounds)],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
    seconds = json.loads(turns.stdout.strip().splitlines()[-1])
    return {
        "stories_passed": [stories, story_total],
        "actions_correct": [actions, action_total],
        "train_seconds": round(train_seconds, 1),
        "turn": turn_summary(seconds),
        "pipeline_removed": dropped,
    }


def run(projects: Sequence[str], rasa_python: Path | None, rounds: int, workdir: Path) -> dict[str, Any]:
    machine = accuracy_machine_info()
    if rasa_python is not None:
        machine["rasa"] = check_rasa(rasa_python)
    logs = workdir / "logs"
    logs.mkdir()
    results: dict[str, Any] = {}
    for name in projects:
        print(f"{name}: CrowdDesk ...", flush=True)
        entry = {
            "CrowdDesk": crowddesk_side(copy_project(corpus_root() / name, workdir / "crowddesk" / name), logs, rounds)
        }
        if rasa_python is not None:
            print(f"{name}: Rasa ...", flush=True)
            entry["Rasa"] = rasa_side(
                copy_project(corpus_root() / name, workdir / "rasa" / name), rasa_python, logs, rounds
            )
        results[name] = entry
    machine["load_average_1m_at_end"] = round(os.getloadavg()[0], 2)
    turns = f"wall time per user message, in-process, over {rounds} rounds of the stories after one warm-up round"
    return {"machine": machine, "turns": turns, "results": results}


def _cells(side: dict[str, Any] | None) -> list[str]:
    if side is None:
        return ["", "", "", "", "", ""]
    return [
        "{}/{}".format(*side["core_stories_passed"]) if "core_stories_passed" in side else "",
        "{}/{}".format(*side["stories_passed"]),
        "{}/{}".format(*side["actions_correct"]),
        f"{side['train_seconds']:.1f}",
        f"{side['turn']['p50_ms']:.1f}",
        f"{side['turn']['p95_ms']:.1f}",
    ]


def print_table(results: dict[str, Any]) -> None:
    rows = []
    for name, entry in results["results"].items():
        crowddesk, rasa = entry["CrowdDesk"], entry.get("Rasa")
        ratios = ["", ""]
        if rasa is not None:
            ratios = [
                f"{rasa['train_seconds'] / crowddesk['train_seconds']:.1f}x",
                f"{rasa['turn']['p50_ms'] / crowddesk['turn']['p50_ms']:.1f}x",
            ]
        rows.append([name, *_cells(crowddesk), *_cells(rasa), *ratios])
    fields = ["core stories", "stories", "actions", "train s", "turn p50 ms", "turn p95 ms"]
    headers = ["project", *(f"CD {f}" for f in fields), *(f"Rasa {f}" for f in fields), "train Rasa/CD", "p50 Rasa/CD"]
    print(format_table(headers, rows))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rasa-python", type=Path, help="a Python 3.10 interpreter with rasa==3.6.21 (else CrowdDesk only)"
    )
    parser.add_argument("--projects", nargs="+", choices=sorted(STORIES), default=list(STORIES))
    parser.add_argument("--rounds", type=int, default=5, help="timed rounds of the stories, after one warm-up")
    parser.add_argument("--keep", type=Path, help="keep the project copies, models and logs in this folder")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "rasa_projects.json")
    args = parser.parse_args(argv)
    rasa_python = args.rasa_python if args.rasa_python is not None and args.rasa_python.exists() else None
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        results = run(args.projects, rasa_python, args.rounds, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="crowddesk-rasa-projects-") as workdir:
            results = run(args.projects, rasa_python, args.rounds, Path(workdir))
    print_table(results)
    print(f"wrote {write_results('rasa_projects', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
