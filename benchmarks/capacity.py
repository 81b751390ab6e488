"""Capacity of the REST webhook under open-loop load: CrowdDesk on its embedded SQLite, on
PostgreSQL + Redis with one and two server processes, and Rasa 3.6 serving the same demo bot.

    python -m benchmarks.capacity [--rasa-python /tmp/rasa310/bin/python] [--configs sqlite-1,postgres-redis-2]
        [--duration 20] [--step-duration 15] [--rates 50,100,150,200,250,300,400,500] [--quick]
        [--rasa-epochs N | --rasa-model KEPT/rasa/models/demo.tar.gz] [--keep KEPT]

What runs: the demo project, copied to a temporary folder and trained once with `crowddesk train`,
its custom actions on `crowddesk run actions`, served as users run it (subprocesses on 127.0.0.1):

- `sqlite-1`: `crowddesk run` on the embedded SQLite default (one process, no Redis);
- `postgres-redis-1`: `crowddesk run` on PostgreSQL (a fresh schema) + Redis (a private
  `redis-server`, the turn lock store);
- `postgres-redis-2`: the same with `--workers 2` (uvicorn's parent and two worker processes);
- `rasa-3.6`: Rasa 3.6.21 (`--rasa-python`) on a copy of the demo whose config.yml is Rasa's own
  default config (CrowdDesk's pipeline components do not exist in Rasa) and whose credentials.yml
  lists the REST channel alone; `rasa train`, then `rasa run --enable-api`, the demo's actions on
  Rasa's rasa_sdk. Rasa keeps trackers in memory (its default), CrowdDesk in its database.

Every configuration gets the same requests in the same order: POST /webhooks/rest/webhook
{"sender", "message"}, the texts the demo's own NLU examples (shuffled, seed 0; without the
hand-off and out-of-scope intents, whose conversations a person takes over and the bot then stays
silent), each with a counter appended so that no text is sent twice and no cache answers it.
Under load, customers write one message a second on average and leave after
`CONVERSATION_MESSAGES`, so conversations overlap as on a live desk.

The load generator is open-loop (asyncio + aiohttp, in this process): messages are sent on a
seeded Poisson schedule whatever the server does, and latency runs from the scheduled send time,
so a server (or a generator) that falls behind shows up in the latency instead of slowing the
arrivals. A message fails when its answer is not 200 or takes more than `REQUEST_TIMEOUT`; its
latency then counts up to the failure.

- lone: one conversation alone, messages one after the other (a new customer after a silent
  answer, i.e. a hand-off): p50.
- load: `LOAD_RATE` msg/s for --duration seconds: p50, p99, errors, the server's CPU per message
  (all its processes, from /proc) and the generator's own.
- capacity: increasing rates, --step-duration seconds each, until the first rate whose p99 is over
  `P99_LIMIT_MS` or whose error share is over `ERROR_LIMIT`; capacity is the highest rate that passed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Awaitable, Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import uvloop
import yaml
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.latency import comma_separated_ints, process_cpu_seconds
from benchmarks.rasa36 import check_rasa, timed_run
from benchmarks.rasa_projects import _foreign_action_server
from benchmarks.serving import crowddesk_command, start_http_server, train
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.endpoints import ACTION_ENDPOINT_ENV, DATABASE_URL_ENV, REDIS_URL_ENV
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.storage.engines import create_engine_for
from tests.db_fixtures import DEFAULT_POSTGRES_URL, POSTGRES_URL_VARIABLE
from tests.demo_bot import copy_demo_project, free_port
from tests.redis_server import RedisServer

SQLITE_1, POSTGRES_REDIS_1, POSTGRES_REDIS_2, RASA = "sqlite-1", "postgres-redis-1", "postgres-redis-2", "rasa-3.6"
CONFIGS = (SQLITE_1, POSTGRES_REDIS_1, POSTGRES_REDIS_2, RASA)
BASELINES = (SQLITE_1, RASA)  # the ratios compare every configuration with these, measured in the same run
WEBHOOK = "/webhooks/rest/webhook"

LOAD_RATE = 100.0
P99_LIMIT_MS = 200.0
ERROR_LIMIT = 0.01
DEFAULT_RATES = (50, 100, 150, 200, 250, 300, 400, 500)
TARGETS = {
    "capacity_msg_s": 250.0,  # with postgres-redis-2
    "load_p50_ms": 15.0,  # at LOAD_RATE
    "load_p99_ms": 60.0,
    "lone_p50_ms": 8.0,
}
TARGET_CAPACITY_CONFIG = POSTGRES_REDIS_2

REQUEST_TIMEOUT = 10.0
DRAINED_CORES = 0.15  # a server below this is idle (its background workers poll)
DRAIN_LIMIT_SECONDS = 180.0
KEEPALIVE_SECONDS = 2.0
CONVERSATION_MESSAGES = 5
CUSTOMER_GAP_SECONDS = 1.0  # mean time between two messages of one customer under load
# Intents after which a person owns the conversation: the bot's later answers would be silence.
HANDED_OFF_INTENTS = frozenset({"human_handoff", "out_of_scope"})
SCHEDULE_SEED = 0
STARTUP_SECONDS = 300.0  # two model loads at once on two busy cores
# No telemetry or update checks from Rasa; TensorFlow's C++ info lines only fill the log.
RASA_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2"}
RASA_MODEL_NAME = "demo"
RASA_MODEL = Path("models") / f"{RASA_MODEL_NAME}.tar.gz"  # in the Rasa copy of the demo


@dataclass(frozen=True)
class Settings:
    """What to measure and for how long."""

    configs: tuple[str, ...] = CONFIGS[:3]
    rates: tuple[int, ...] = DEFAULT_RATES
    duration: float = 20.0  # seconds at LOAD_RATE
    step_duration: float = 15.0  # seconds per capacity step
    lone_messages: int = 50
    warmup_messages: int = 20  # sent one at a time, then `warmup_seconds` at the lowest rate
    warmup_seconds: float = 3.0
    rasa_epochs: int | None = None  # None: Rasa's defaults (100 for every trained component)


QUICK = Settings(
    rates=(50, 100, 200), duration=3.0, step_duration=2.0, lone_messages=10, warmup_messages=5, warmup_seconds=1.0
)


@dataclass(frozen=True)
class Request:
    at: float  # seconds after the start of the step, when the message is due
    sender: str
    text: str


@dataclass(frozen=True)
class Outcome:
    latency: float  # seconds from the scheduled send to the answer (or the failure)
    lag: float  # seconds the generator sent it late
    error: str | None  # None, the HTTP status, or the client's exception (a timeout, a reset ...)
    silent: bool  # answered 200 with no reply: the conversation is with a person


@dataclass
class Step:
    """One part of a configuration's run (lone, load, or a capacity rate) and what it measured."""

    part: str
    rate: float  # scheduled messages per second (0: one at a time)
    seconds: float
    messages: int
    answered_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_share: float
    error_kinds: dict[str, int]
    silent: int
    send_lag_p99_ms: float  # how late the generator sent; large means the generator is the bottleneck
    server_cpu_ms_per_message: float
    server_cores: float  # server CPU seconds per wall second, all its processes
    actions_cpu_ms_per_message: float
    generator_cpu_ms_per_message: float
    generator_cores: float
    load_average_before: float
    passed: bool | None = None  # capacity steps: p99 and errors within the limits


@dataclass(frozen=True)
class Served:
    """A running server: its webhook and the process ids whose CPU it spends (trees)."""

    webhook: str
    pid: int
    actions_pid: int


def percentile_ms(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile of `seconds`, in milliseconds (NaN for none)."""
    return round(float(np.percentile(np.asarray(seconds) * 1000.0, q)), 2) if len(seconds) else math.nan


def step_passes(step: Step) -> bool:
    """Whether a capacity step kept p99 and the error share within the limits."""
    return step.p99_ms <= P99_LIMIT_MS and step.error_share <= ERROR_LIMIT


def capacity(steps: Sequence[Step]) -> tuple[float, bool]:
    """The highest rate that passed before the first that failed (0 if the first failed), and
    whether a rate failed at all (False: capacity is at least that, the sweep ended first)."""
    best = 0.0
    for step in steps:
        if not step_passes(step):
            return best, True
        best = step.rate
    return best, False


def arrival_times(rate: float, seconds: float, seed: int) -> list[float]:
    """A Poisson process at `rate` per second over `seconds` (seeded): when each message is due."""
    rng = random.Random(seed)
    times, now = [], rng.expovariate(rate)
    while now < seconds:
        times.append(now)
        now += rng.expovariate(rate)
    return times


def customer_of(index: int, rate: float) -> int:
    """Which customer sends message `index`: `rate * CUSTOMER_GAP_SECONDS` customers write in
    turn, each `CONVERSATION_MESSAGES` messages, then the next group of customers takes over."""
    writing = max(1, round(rate * CUSTOMER_GAP_SECONDS))
    return (index // (writing * CONVERSATION_MESSAGES)) * writing + index % writing


class Texts:
    """The demo's NLU examples in a fixed order, each handed out once with a counter appended."""

    def __init__(self, project: Path) -> None:
        examples = [e.text for e in load_project(project).data.examples if e.intent not in HANDED_OFF_INTENTS]
        random.Random(0).shuffle(examples)
        self.examples = examples
        self.sent = 0

    def next(self) -> str:
        text = f"{self.examples[self.sent % len(self.examples)]} #{self.sent}"
        self.sent += 1
        return text


def tree_cpu_seconds(root: int) -> float:
    """User + system CPU time of `root` and every live descendant (uvicorn's workers, a server's
    helpers), from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError):  # exited meanwhile
            continue
        children[parent].append(int(entry.name))
    total, pending = 0.0, [root]
    while pending:
        pid = pending.pop()
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            total += process_cpu_seconds(pid)
        pending.extend(children[pid])
    return total


async def post(session: aiohttp.ClientSession, url: str, request: Request, due: float) -> Outcome:
    sent = time.perf_counter()
    error: str | None
    try:
        async with session.post(url, json={"sender": request.sender, "message": request.text}) as response:
            body = await response.read()
            error = None if response.status == 200 else f"HTTP {response.status}"
    except (aiohttp.ClientError, TimeoutError) as failure:
        error, body = type(failure).__name__, b""
    return Outcome(time.perf_counter() - due, sent - due, error, error is None and body.strip() == b"[]")


async def open_loop(session: aiohttp.ClientSession, url: str, requests: Sequence[Request]) -> list[Outcome]:
    """Send each request when it is due, whether or not earlier ones have been answered."""
    start = time.perf_counter() + 0.05
    tasks = []
    for request in requests:
        due = start + request.at
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        tasks.append(asyncio.create_task(post(session, url, request, due)))
    return await asyncio.gather(*tasks)


async def one_at_a_time(session: aiohttp.ClientSession, url: str, texts: Texts, count: int, run: str) -> list[Outcome]:
    """`count` messages of one conversation, each once the last is answered (a new customer
    after a silent answer: a person then owns the conversation)."""
    outcomes: list[Outcome] = []
    customer = 0
    for _ in range(count):
        outcome = await post(session, url, Request(0.0, f"{run}-lone-{customer}", texts.next()), time.perf_counter())
        outcomes.append(outcome)
        customer += outcome.silent
    return outcomes


def scheduled(texts: Texts, rate: float, seconds: float, run: str, seed: int) -> list[Request]:
    return [
        Request(at, f"{run}-c{customer_of(index, rate)}", texts.next())
        for index, at in enumerate(arrival_times(rate, seconds, seed))
    ]


class Driver:
    """Sends a configuration its parts and measures each: latency, errors, everyone's CPU."""

    def __init__(self, served: Served, texts: Texts, session: aiohttp.ClientSession, run: str) -> None:
        self.served = served
        self.texts = texts
        self.session = session
        self.run = run
        self.url = served.webhook

    async def warm_up(self, settings: Settings) -> None:
        await one_at_a_time(self.session, self.url, self.texts, settings.warmup_messages, f"{self.run}-warmup")
        rate = min(settings.rates)
        requests = scheduled(self.texts, rate, settings.warmup_seconds, f"{self.run}-warmup", SCHEDULE_SEED)
        await open_loop(self.session, self.url, requests)

    async def drained(self) -> float:
        """Wait until the server has worked off what the last part left queued (a request the
        generator gave up on is still processed) and is idle: its CPU under DRAINED_CORES over
        half a second. The seconds waited."""
        started = time.perf_counter()
        while time.perf_counter() - started < DRAIN_LIMIT_SECONDS:
            before = tree_cpu_seconds(self.served.pid)
            await asyncio.sleep(0.5)
            if (tree_cpu_seconds(self.served.pid) - before) / 0.5 < DRAINED_CORES:
                break
        return time.perf_counter() - started

    async def lone(self, count: int) -> Step:
        return await self._measure("lone", 0.0, one_at_a_time(self.session, self.url, self.texts, count, self.run))

    async def at_rate(self, part: str, rate: float, seconds: float, seed: int) -> Step:
        requests = scheduled(self.texts, rate, seconds, f"{self.run}-{part}-{rate:g}", seed)
        return await self._measure(part, rate, open_loop(self.session, self.url, requests))

    async def _measure(self, part: str, rate: float, sending: Awaitable[list[Outcome]]) -> Step:
        load = os.getloadavg()[0]
        server_cpu, actions_cpu = tree_cpu_seconds(self.served.pid), tree_cpu_seconds(self.served.actions_pid)
        wall, own_cpu = time.perf_counter(), time.process_time()
        outcomes = await sending
        seconds = time.perf_counter() - wall
        own_cpu = time.process_time() - own_cpu
        server_cpu = tree_cpu_seconds(self.served.pid) - server_cpu
        actions_cpu = tree_cpu_seconds(self.served.actions_pid) - actions_cpu
        latencies = [outcome.latency for outcome in outcomes]
        errors = Counter(outcome.error for outcome in outcomes if outcome.error is not None)
        failed = errors.total()
        count = max(len(outcomes), 1)
        return Step(
            part=part,
            rate=rate,
            seconds=round(seconds, 3),
            messages=len(outcomes),
            answered_per_second=round((len(outcomes) - failed) / seconds, 1),
            p50_ms=percentile_ms(latencies, 50),
            p99_ms=percentile_ms(latencies, 99),
            max_ms=percentile_ms(latencies, 100),
            errors=failed,
            error_share=round(failed / count, 4),
            error_kinds=dict(errors.most_common()),
            silent=sum(outcome.silent for outcome in outcomes),
            send_lag_p99_ms=percentile_ms([outcome.lag for outcome in outcomes], 99),
            server_cpu_ms_per_message=round(1000 * server_cpu / count, 2),
            server_cores=round(server_cpu / seconds, 2),
            actions_cpu_ms_per_message=round(1000 * actions_cpu / count, 2),
            generator_cpu_ms_per_message=round(1000 * own_cpu / count, 2),
            generator_cores=round(own_cpu / seconds, 2),
            load_average_before=round(load, 2),
        )


async def measure(served: Served, project: Path, settings: Settings, run: str) -> dict[str, Any]:
    """Warm-up, lone, the load at LOAD_RATE and the capacity sweep, on one served configuration."""
    texts = Texts(project)  # every configuration gets the same texts in the same order
    # Open loop: as many connections as messages in flight. Idle ones close after 2 s, before the
    # servers' own keep-alive timeouts (uvicorn's 5 s, Rasa's 120 s), so that no message goes out on a
    # connection the server is closing at that moment (a client error that is no server's fault).
    connector = aiohttp.TCPConnector(limit=0, keepalive_timeout=KEEPALIVE_SECONDS)
    timeout = aiohttp.ClientTimeout(total=REQUEST_TIMEOUT)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        driver = Driver(served, texts, session, run)
        await driver.warm_up(settings)
        await driver.drained()
        lone = await driver.lone(settings.lone_messages)
        load = await driver.at_rate("load", LOAD_RATE, settings.duration, SCHEDULE_SEED)
        steps: list[Step] = []
        for seed, rate in enumerate(settings.rates, start=SCHEDULE_SEED + 1):
            # Each rate starts on an idle server: an overloaded part's backlog must not count
            # against the next one.
            print(f"  idle after {await driver.drained():.0f} s", flush=True)
            step = await driver.at_rate("capacity", rate, settings.step_duration, seed)
            step = replace(step, passed=step_passes(step))
            steps.append(step)
            kinds = "".join(f", {kind} {count}" for kind, count in step.error_kinds.items())
            print(f"  {rate} msg/s: p99 {step.p99_ms:.0f} ms, errors {step.error_share:.1%}{kinds}", flush=True)
            if not step.passed:
                break
    best, bounded = capacity(steps)
    return {
        "lone": asdict(lone),
        "load": asdict(load),
        "capacity_steps": [asdict(step) for step in steps],
        "capacity_msg_s": best,
        "capacity_bounded": bounded,  # False: every rate passed, so capacity is at least the last
    }


@contextlib.contextmanager
def postgres_schema(server_url: str) -> Iterator[str]:
    """A fresh schema on the PostgreSQL server; a URL whose connections use it. Dropped on exit."""
    url = make_url(server_url).update_query_dict({"connect_timeout": "5"})
    name = f"crowddesk_capacity_{uuid.uuid4().hex[:12]}"
    admin = create_engine_for(url.render_as_string(hide_password=False))
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{name}"')
        try:
            yield url.update_query_dict({"options": f"-csearch_path={name}"}).render_as_string(hide_password=False)
        finally:
            with admin.begin() as connection:
                connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    finally:
        admin.dispose()


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    server = RedisServer()
    server.start()
    try:
        yield server.url
    finally:
        server.stop()


def wait_for_workers(log: Path, workers: int) -> None:
    """/health answers once one worker serves; wait until each has started its app."""
    deadline = time.monotonic() + STARTUP_SECONDS
    while log.read_text(errors="replace").count("Application startup complete") < workers:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{workers} workers did not all start (log: {log})")
        time.sleep(0.5)


@contextlib.contextmanager
def served_crowddesk(
    config: str, project: Path, actions_pid: int, action_endpoint: str, postgres_url: str, workdir: Path
) -> Iterator[Served]:
    """`crowddesk run` as `config` says, on a fresh database (and a private Redis)."""
    workers = 2 if config == POSTGRES_REDIS_2 else 1
    port = free_port()
    log = workdir / f"{config}.log"
    with contextlib.ExitStack() as stack:
        env = {**os.environ, ACTION_ENDPOINT_ENV: action_endpoint, "HF_HUB_OFFLINE": "1"}
        if config == SQLITE_1:
            env[DATABASE_URL_ENV] = f"sqlite:///{workdir / f'{config}.db'}"
        else:
            env[DATABASE_URL_ENV] = stack.enter_context(postgres_schema(postgres_url))
            env[REDIS_URL_ENV] = stack.enter_context(private_redis())
        command = crowddesk_command("run", "--project", str(project), "--port", str(port), "--workers", str(workers))
        server = start_http_server(command, f"http://127.0.0.1:{port}/health", log, env=env, timeout=STARTUP_SECONDS)
        stack.callback(stop, server)
        wait_for_workers(log, workers)
        yield Served(f"http://127.0.0.1:{port}{WEBHOOK}", server.pid, actions_pid)


def rasa_config(rasa_python: Path, epochs: int | None) -> str:
    """Rasa's own default config.yml (pipeline and policies), read from the installed Rasa;
    `epochs`, if given, for every component that trains in epochs."""
    probe = "import os, rasa; print(os.path.dirname(rasa.__file__))"
    found = subprocess.run([str(rasa_python), "-c", probe], capture_output=True, text=True, check=True)
    rasa_dir = Path(found.stdout.strip())
    config = yaml.safe_load((rasa_dir / "engine/recipes/config_files/default_config.yml").read_text())
    config["assistant_id"] = "crowddesk-capacity-benchmark"
    if epochs is not None:
        for component in [*config["pipeline"], *config["policies"]]:
            if "epochs" in component:
                component["epochs"] = epochs
    return yaml.safe_dump(config, sort_keys=False)


def rasa_project(target: Path, rasa_python: Path, epochs: int | None) -> Path:
    """A copy of the demo for Rasa: its config.yml replaced by Rasa's defaults (CrowdDesk's
    components do not exist there) and a credentials.yml with the REST channel alone (Rasa has no
    web chat channel); domain, data and actions unchanged."""
    target.mkdir(parents=True)
    copy_demo_project(target)
    (target / "config.yml").write_text(rasa_config(rasa_python, epochs), encoding="utf-8")
    (target / "credentials.yml").write_text("rest:\n", encoding="utf-8")
    return target


def train_rasa(rasa_python: Path, root: Path, logs: Path) -> float:
    return timed_run(
        [str(rasa_python), "-m", "rasa", "train", "--out", "models", "--fixed-model-name", RASA_MODEL_NAME],
        root,
        {**os.environ, **RASA_ENV},
        logs / "rasa-train.log",
    )


@contextlib.contextmanager
def served_rasa(rasa_python: Path, root: Path, workdir: Path) -> Iterator[Served]:
    """`rasa run --enable-api` with the REST channel, the demo's actions on Rasa's rasa_sdk."""
    actions_port, port = free_port(), free_port()
    (root / "endpoints.yml").write_text(
        f'action_endpoint:\n  url: "http://127.0.0.1:{actions_port}/webhook"\n', encoding="utf-8"
    )
    actions = _foreign_action_server(root, actions_port, str(rasa_python))
    try:
        command = [
            str(rasa_python),
            "-m",
            "rasa",
            "run",
            "--enable-api",
            "--model",
            str(RASA_MODEL),
            "--credentials",
            "credentials.yml",
            "--endpoints",
            "endpoints.yml",
            "--interface",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        env = {**os.environ, **RASA_ENV}
        server = start_http_server(
            command, f"http://127.0.0.1:{port}/status", workdir / "rasa-run.log", cwd=root, env=env
        )
        try:
            yield Served(f"http://127.0.0.1:{port}{WEBHOOK}", server.pid, actions.pid)
        finally:
            stop(server)
    finally:
        stop(actions)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, dict[str, dict[str, float | None]]]:
    """Each configuration's numbers divided by each baseline's (BASELINES) from the same run."""

    def figures(result: dict[str, Any]) -> dict[str, float]:
        return {
            "lone_p50": result["lone"]["p50_ms"],
            "load_p50": result["load"]["p50_ms"],
            "load_p99": result["load"]["p99_ms"],
            "server_cpu_ms_per_message": result["load"]["server_cpu_ms_per_message"],
            "capacity": result["capacity_msg_s"],
        }

    compared: dict[str, dict[str, dict[str, float | None]]] = {}
    for config, result in results.items():
        mine = figures(result)
        for baseline in BASELINES:
            if baseline == config or baseline not in results:
                continue
            theirs = figures(results[baseline])
            compared.setdefault(config, {})[baseline] = {
                key: round(mine[key] / theirs[key], 2) if theirs[key] else None for key in mine
            }
    return compared


def targets_met(config: str, result: dict[str, Any]) -> dict[str, bool]:
    """CrowdDesk's targets for one of its configurations (the capacity one for TARGET_CAPACITY_CONFIG)."""
    met = {
        "lone_p50_ms": result["lone"]["p50_ms"] <= TARGETS["lone_p50_ms"],
        "load_p50_ms": result["load"]["p50_ms"] <= TARGETS["load_p50_ms"],
        "load_p99_ms": result["load"]["p99_ms"] <= TARGETS["load_p99_ms"],
    }
    if config == TARGET_CAPACITY_CONFIG:
        met["capacity_msg_s"] = result["capacity_msg_s"] >= TARGETS["capacity_msg_s"]
    return met


@dataclass(frozen=True)
class Outside:
    """What the run takes from outside: the PostgreSQL server, Rasa, and what an earlier run trained."""

    postgres_url: str
    rasa_python: Path | None = None
    rasa_model: Path | None = None  # the demo's Rasa model from an earlier run (`--keep`): no `rasa train`
    project: Path | None = None  # a trained copy of the demo: no `crowddesk train`


@dataclass
class Stage:
    """What every configuration's server starts from; `serve` fills in the machine's Rasa version
    and what training Rasa took."""

    settings: Settings
    outside: Outside
    workdir: Path
    project: Path  # the trained demo
    actions_pid: int
    action_endpoint: str
    machine: dict[str, Any]
    train_seconds: dict[str, float]

    @contextlib.contextmanager
    def serve(self, config: str) -> Iterator[Served]:
        if config != RASA:
            with served_crowddesk(
                config, self.project, self.actions_pid, self.action_endpoint, self.outside.postgres_url, self.workdir
            ) as served:
                yield served
            return
        rasa_python = self.outside.rasa_python
        if rasa_python is None:
            raise RuntimeError("needs --rasa-python")
        self.machine["rasa"] = check_rasa(rasa_python)
        root = rasa_project(self.workdir / "rasa", rasa_python, self.settings.rasa_epochs)
        if self.outside.rasa_model is None:
            print("  training the demo bot on Rasa (rasa train) ...", flush=True)
            self.train_seconds["rasa"] = round(train_rasa(rasa_python, root, self.workdir), 1)
        else:
            (root / "models").mkdir()
            shutil.copy(self.outside.rasa_model, root / RASA_MODEL)
        with served_rasa(rasa_python, root, self.workdir) as served:
            yield served


# What makes one configuration fail without voiding the others' numbers: a server that does not
# start or train, an unreachable database, a Rasa interpreter that does not work (SystemExit).
CONFIG_FAILURES = (RuntimeError, OSError, subprocess.SubprocessError, SQLAlchemyError, aiohttp.ClientError, SystemExit)


def run(settings: Settings, outside: Outside, workdir: Path) -> dict[str, Any]:
    """Train the demo, then serve and measure every configuration of `settings` in turn; the
    results document."""
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    machine = accuracy_machine_info()
    run_id = uuid.uuid4().hex[:8]
    train_seconds: dict[str, float] = {}
    project = outside.project
    if project is None:
        (workdir / "demo").mkdir()
        project = copy_demo_project(workdir / "demo")
        print("training the demo bot (crowddesk train) ...", flush=True)
        train_started = time.perf_counter()
        train(project, workdir / "crowddesk-train.log")
        train_seconds["crowddesk"] = round(time.perf_counter() - train_started, 1)
    results: dict[str, dict[str, Any]] = {}
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        port = free_port()
        actions = start_action_server(project, port=port)
        stack.callback(stop, actions)
        endpoint = f"http://127.0.0.1:{port}/webhook"
        stage = Stage(settings, outside, workdir, project, actions.pid, endpoint, machine, train_seconds)
        for config in settings.configs:
            print(f"{config} ...", flush=True)
            try:
                with stage.serve(config) as served:
                    results[config] = uvloop.run(measure(served, project, settings, f"{run_id}-{config}"))
            except CONFIG_FAILURES as error:
                failed[config] = f"{type(error).__name__}: {error}"
                print(f"  {config} failed: {failed[config]}", flush=True)
    return {
        "benchmark": "capacity",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "load_average_1m_at_start": machine["load_average_1m_at_start"],
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "settings": {
            **asdict(settings),
            "rasa_model": str(outside.rasa_model) if outside.rasa_model else None,
            "project": str(outside.project) if outside.project else "the demo, trained by this run",
            "load_rate": LOAD_RATE,
            "p99_limit_ms": P99_LIMIT_MS,
            "error_limit": ERROR_LIMIT,
            "request_timeout_s": REQUEST_TIMEOUT,
            "conversation_messages": CONVERSATION_MESSAGES,
            "customer_gap_s": CUSTOMER_GAP_SECONDS,
            "arrivals": "Poisson, seeded",
            "texts": "the demo's NLU examples (without hand-off and out-of-scope), shuffled with seed 0, a counter "
            "appended to each",
            "generator": "asyncio (uvloop) + aiohttp, open loop, in the benchmark's process",
        },
        "train_seconds": train_seconds,
        "targets": {**TARGETS, "capacity_config": TARGET_CAPACITY_CONFIG},
        "results": results,
        "ratios": ratios(results),
        "targets_met": {config: targets_met(config, result) for config, result in results.items() if config != RASA},
        "failed": failed,
    }


def number(value: float | None, digits: int = 1) -> str:
    return "" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def print_tables(results: dict[str, Any]) -> None:
    measured: dict[str, dict[str, Any]] = results["results"]
    print(
        format_table(
            [
                "config",
                "lone p50 ms",
                f"{LOAD_RATE:g}/s p50 ms",
                "p99 ms",
                "errors",
                "silent",
                "server CPU ms/msg",
                "server cores",
                "generator CPU ms/msg",
                "capacity msg/s",
            ],
            [
                [
                    config,
                    number(result["lone"]["p50_ms"]),
                    number(result["load"]["p50_ms"]),
                    number(result["load"]["p99_ms"]),
                    f"{result['load']['errors']}/{result['load']['messages']}",
                    str(result["load"]["silent"]),
                    number(result["load"]["server_cpu_ms_per_message"]),
                    number(result["load"]["server_cores"], 2),
                    number(result["load"]["generator_cpu_ms_per_message"], 2),
                    f"{result['capacity_msg_s']:g}" + ("" if result["capacity_bounded"] else "+"),
                ]
                for config, result in measured.items()
            ],
        )
    )
    rows = [
        [config, f"÷ {baseline}", *(number(value, 2) for value in figures.values())]
        for config, against in results["ratios"].items()
        for baseline, figures in against.items()
    ]
    if rows:
        print(format_table(["config", "ratio", "lone p50", "load p50", "load p99", "CPU/msg", "capacity"], rows))
    print(
        format_table(
            [
                "config",
                "msg/s",
                "answered/s",
                "p50 ms",
                "p99 ms",
                "errors",
                "server cores",
                "send lag p99 ms",
                "passed",
            ],
            [
                [
                    config,
                    f"{step['rate']:g}",
                    number(step["answered_per_second"]),
                    number(step["p50_ms"]),
                    number(step["p99_ms"]),
                    f"{step['error_share']:.1%}",
                    number(step["server_cores"], 2),
                    number(step["send_lag_p99_ms"]),
                    "yes" if step["passed"] else "no",
                ]
                for config, result in measured.items()
                for step in result["capacity_steps"]
            ],
        )
    )
    targets = results["targets"]
    print(
        f"targets: lone p50 <= {targets['lone_p50_ms']:g} ms; at {LOAD_RATE:g} msg/s p50 <= "
        f"{targets['load_p50_ms']:g} ms, p99 <= {targets['load_p99_ms']:g} ms; capacity >= "
        f"{targets['capacity_msg_s']:g} msg/s with {targets['capacity_config']}"
    )
    for config, met in results["targets_met"].items():
        print(f"  {config}: " + ", ".join(f"{name} {'met' if ok else 'MISSED'}" for name, ok in met.items()))
    print(
        f"load average (1 min) {results['load_average_1m_at_start']} at the start, "
        f"{results['load_average_1m_at_end']} at the end"
    )
    for config, reason in results["failed"].items():
        print(f"{config}: not measured, {reason}")


def config_names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    if not names or any(name not in CONFIGS for name in names):
        raise argparse.ArgumentTypeError(f"expected configurations among {','.join(CONFIGS)}, got {text!r}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rasa-python", type=Path, help="a Python 3.10 with rasa==3.6.21: adds the rasa-3.6 run")
    parser.add_argument(
        "--configs",
        type=config_names,
        help=f"comma-separated, of {','.join(CONFIGS)} (default: all; rasa-3.6 only with --rasa-python)",
    )
    parser.add_argument("--duration", type=float, help=f"seconds at {LOAD_RATE:g} msg/s (default 20)")
    parser.add_argument("--step-duration", type=float, help="seconds per capacity rate (default 15)")
    parser.add_argument(
        "--rates", type=comma_separated_ints, help="capacity rates, msg/s, ascending (default 50,...,500)"
    )
    parser.add_argument(
        "--rasa-epochs", type=int, help="epochs of every Rasa component that trains in epochs (default: Rasa's, 100)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: a few seconds per part, rates 50,100,200, Rasa trained 1 epoch (unless set)",
    )
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(POSTGRES_URL_VARIABLE, DEFAULT_POSTGRES_URL),
        help="PostgreSQL server (a schema of the run's own is created and dropped)",
    )
    parser.add_argument(
        "--rasa-model", type=Path, help="the demo's Rasa model from an earlier run's --keep folder (skips rasa train)"
    )
    parser.add_argument(
        "--project", type=Path, help="an already trained copy of the demo project, e.g. KEPT/demo (skips training)"
    )
    parser.add_argument("--keep", type=Path, help="keep the trained copies, models and server logs in this new folder")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "capacity.json", help="JSON results file")
    args = parser.parse_args(argv)

    base = replace(QUICK, rasa_epochs=1) if args.quick else Settings()
    configs = args.configs or (CONFIGS if args.rasa_python else CONFIGS[:3])
    settings = replace(
        base,
        configs=configs,
        rates=tuple(sorted(args.rates)) if args.rates else base.rates,
        duration=args.duration or base.duration,
        step_duration=args.step_duration or base.step_duration,
        rasa_epochs=args.rasa_epochs or base.rasa_epochs,
    )
    outside = Outside(args.postgres_url, args.rasa_python, args.rasa_model, args.project)
    if args.keep is not None:
        args.keep.mkdir(parents=True, exist_ok=False)
        results = run(settings, outside, args.keep)
    else:
        with tempfile.TemporaryDirectory(prefix="crowddesk-capacity-") as workdir:
            results = run(settings, outside, Path(workdir))
    print_tables(results)
    print(f"wrote {write_results('capacity', results, args.out)}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
