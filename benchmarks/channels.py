"""The cost of each channel connector: webhook-to-reply latency and messages per second, per channel.

    python -m benchmarks.channels [--channels rest,telegram,slack,twilio] [--messages 200] [--concurrency 16]

For each channel the trained demo bot is served by `crowddesk run` (uvicorn, its outbox worker,
an SQLite store in a fresh file; the custom actions on `crowddesk run actions`), a subprocess on
127.0.0.1 whose credentials.yml lists that channel alone, pointed at the channel's fake platform
server (tests/fakes) running in this process. Customers write as the platform would deliver
their messages: signed webhooks (`benchmarks/channel_adapters.py`). Every message comes from a
customer of its own, so neither the outbox's one-message-at-a-time order per recipient nor a
conversation's state links two measurements, and every channel gets the same texts in the same
order (BANKING77 test questions, Casanueva et al. 2020, CC BY 4.0), each new to its server.

- Latency: after a few warm-up messages, N messages one at a time, each timed from the moment
  its webhook POST is sent to the moment the fake platform server accepts the first reply (the
  fake stamps the arrival in its own thread). REST answers inline: its reply is the HTTP
  response. The next message goes once all replies of the last one have arrived and, on a
  channel with a rate limit, 1/limit seconds after the last reply: the outbox's pacing then
  never holds a reply back, so this is the latency of a lone message.
- Throughput: M messages sent with C webhook POSTs in flight, timed from the first send until
  every reply has reached the fake server.

The outbox never sends faster than a connector's `max_messages_per_second` (Twilio's long code:
1 a second). A run at the configured limit sends at most `LIMITED_SECONDS` worth of messages in
each part; when its replies per second reach `BOUND_SHARE` of the limit, the limit is
the bottleneck and the channel runs again in a server where the connector's limit is lifted
(labelled so), which shows what the connector itself costs. REST runs first, always: besides
being the reference for the ratios, its inline replies tell how many replies each text gets.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import random
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import yaml

from benchmarks import RESULTS_DIR, write_results
from benchmarks.channel_adapters import ADAPTERS, ARRIVED, ChannelAdapter, FakePlatform, timed
from benchmarks.datasets import default_data_dir, load_banking77
from benchmarks.latency import machine_info, process_cpu_seconds
from benchmarks.serving import crowddesk_command, start_http_server, train
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.endpoints import ACTION_ENDPOINT_ENV
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.connectors.registry import connector_class
from tests.demo_bot import copy_demo_project, free_port
from tests.fakes.server import FakeAPIServer

REFERENCE = "rest"
LIMITED_SECONDS = 20.0
BOUND_SHARE = 0.8
REPLY_TIMEOUT = 60.0  # seconds a reply may take beyond what the channel's rate limit itself needs

# `crowddesk run` in a process where one connector's rate limit is lifted: a limit of 0 means
# the outbox never paces that channel. Arguments: the channel, then `crowddesk run`'s.
SERVE_WITHOUT_RATE_LIMIT = (
    "import sys\n"
    "from crowddesk.connectors.registry import connector_class\n"
    "connector_class(sys.argv[1]).max_messages_per_second = 0.0\n"
    "from crowddesk.bot.cli.main import main\n"
    "sys.exit(main(['run', *sys.argv[2:]]))\n"
)


@dataclass(frozen=True)
class Settings:
    """What to measure: the channels, and how many messages each part sends."""

    channels: tuple[str, ...] = tuple(ADAPTERS)
    warmup: int = 5
    latency_messages: int = 50
    messages: int = 200
    concurrency: int = 16

    def texts_needed(self) -> int:
        return self.warmup + self.latency_messages + self.messages


@dataclass
class ChannelRun:
    """One channel's numbers; `*_ratio_to_rest` compare them with the REST run of the same benchmark."""

    channel: str
    rate_limit: float  # messages/s the outbox allows this channel (0: not paced)
    limit_lifted: bool
    latency_messages: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    webhook_p50_ms: float  # the webhook's own HTTP round trip (for REST, the same as the latency)
    throughput_messages: int
    concurrency: int
    throughput_seconds: float
    messages_per_second: float
    replies_per_second: float
    throughput_p50_ms: float  # first reply of each message while C were in flight
    replies_expected: int
    replies_received: int
    errors: int  # webhooks answered with anything but 200
    server_cpu_ms_per_message: float  # during the throughput part
    limit_is_bottleneck: bool | None  # None where there is no limit to reach
    load_average_before: float
    p50_ratio_to_rest: float | None = None
    throughput_ratio_to_rest: float | None = None
    cpu_ratio_to_rest: float | None = None

    @property
    def label(self) -> str:
        return f"{self.channel} (limit lifted)" if self.limit_lifted else self.channel


@dataclass
class Timings:
    """What one part of a run measured."""

    first_reply: list[float] = field(default_factory=list)  # seconds from send to first reply
    webhook: list[float] = field(default_factory=list)  # seconds of the webhook's HTTP round trip
    replies_expected: int = 0
    replies_received: int = 0
    errors: int = 0
    last_reply_at: float = 0.0  # perf_counter


def milliseconds(seconds: Sequence[float], q: float) -> float:
    """The q-th percentile of `seconds`, in milliseconds (NaN for none)."""
    return round(float(np.percentile(np.asarray(seconds) * 1000.0, q)), 1) if seconds else math.nan


class Customers:
    """Sends customer i's message (text i) on one channel and collects its replies."""

    def __init__(
        self,
        adapter: ChannelAdapter,
        fake: FakeAPIServer | None,
        base_url: str,
        texts: Sequence[str],
        replies_per_text: list[int],
        client: httpx.AsyncClient,
        reply_timeout: float,
    ) -> None:
        self.adapter = adapter
        self.fake = fake
        self.base_url = base_url
        self.texts = texts
        # Filled by the REST run (its replies are the webhook's response), read by the others.
        self.replies_per_text = replies_per_text
        self.client = client
        self.reply_timeout = reply_timeout
        self.last_reply_at = 0.0  # perf_counter of the last reply of the messages sent one at a time

    async def post(self, index: int) -> tuple[float, float, httpx.Response]:
        """Customer `index`'s webhook: when it was sent and answered, and the response."""
        webhook = self.adapter.inbound(self.adapter.customer(index), index + 1, self.texts[index])
        sent = time.perf_counter()
        response = await self.client.post(self.base_url + webhook.path, content=webhook.body, headers=webhook.headers)
        return sent, time.perf_counter(), response

    async def one_at_a_time(self, indices: range, spacing: float = 0.0) -> Timings:
        """Each message once the last one's replies are in and `spacing` seconds have passed
        since the last reply (the channel's pacing interval, so it never holds a reply back)."""
        timings = Timings()
        for index in indices:
            await asyncio.sleep(max(0.0, self.last_reply_at + spacing - time.perf_counter()))
            sent, answered, response = await self.post(index)
            timings.webhook.append(answered - sent)
            if response.status_code != 200:
                timings.errors += 1
                continue
            if self.fake is None:
                self._inline(index, response, answered, sent, timings)
            else:
                arrivals = await asyncio.to_thread(self._replies, {self.adapter.customer(index): index})
                self._count(arrivals, {self.adapter.customer(index): (index, sent)}, timings)
            self.last_reply_at = timings.last_reply_at
        return timings

    async def concurrently(self, indices: range, concurrency: int) -> Timings:
        timings = Timings()
        slots = asyncio.Semaphore(concurrency)

        async def send(index: int) -> tuple[int, float, float, httpx.Response]:
            async with slots:
                return (index, *await self.post(index))

        sent_at: dict[str, tuple[int, float]] = {}
        for index, sent, answered, response in await asyncio.gather(*(send(index) for index in indices)):
            timings.webhook.append(answered - sent)
            if response.status_code != 200:
                timings.errors += 1
            elif self.fake is None:
                self._inline(index, response, answered, sent, timings)
            else:
                sent_at[self.adapter.customer(index)] = (index, sent)
        if self.fake is not None:
            arrivals = await asyncio.to_thread(self._replies, {address: i for address, (i, _) in sent_at.items()})
            self._count(arrivals, sent_at, timings)
        return timings

    def _inline(self, index: int, response: httpx.Response, answered: float, sent: float, timings: Timings) -> None:
        replies = len(response.json())
        self.replies_per_text[index] = replies
        timings.first_reply.append(answered - sent)
        timings.replies_expected += replies
        timings.replies_received += replies
        timings.last_reply_at = max(timings.last_reply_at, answered)

    def _replies(self, customers: dict[str, int]) -> dict[str, list[float]]:
        """Wait until every customer in `customers` (address -> text index) has the replies its
        text gets; the arrival times of their replies, by customer (fewer after a timeout)."""
        assert self.fake is not None and self.adapter.platform is not None
        platform: FakePlatform[Any] = self.adapter.platform
        wanted = sum(self.replies_per_text[index] for index in customers.values())

        def addressed(call: dict[str, Any]) -> bool:
            return platform.recipient(call) in customers

        try:
            calls = self.fake.wait_for(platform.reply_method, wanted, self.reply_timeout, addressed)
        except AssertionError:  # the fake's way of saying they did not all arrive in time
            calls = self.fake.calls(platform.reply_method, addressed)
        arrivals: dict[str, list[float]] = defaultdict(list)
        for call in calls:
            arrivals[platform.recipient(call)].append(call[ARRIVED])
        return arrivals

    def _count(self, arrivals: dict[str, list[float]], sent_at: dict[str, tuple[int, float]], timings: Timings) -> None:
        for address, (index, sent) in sent_at.items():
            expected = self.replies_per_text[index]
            received = sorted(arrivals.get(address, []))
            timings.replies_expected += expected
            timings.replies_received += min(len(received), expected)
            if received:
                timings.first_reply.append(received[0] - sent)
                timings.last_reply_at = max(timings.last_reply_at, received[-1])


@dataclass(frozen=True)
class Served:
    """A running server: where it listens and its process id (for its CPU time)."""

    base_url: str
    pid: int


@contextlib.contextmanager
def served_channel(
    adapter: ChannelAdapter,
    fake: FakeAPIServer | None,
    project: Path,
    model_dir: Path | None,
    action_endpoint: str,
    workdir: Path,
    *,
    lifted: bool,
) -> Iterator[Served]:
    """`crowddesk run` with `adapter`'s channel alone in its credentials.yml, on a fresh SQLite file."""
    workdir.mkdir(parents=True)
    block = None if fake is None or adapter.platform is None else adapter.platform.credentials(fake)
    credentials = workdir / "credentials.yml"
    credentials.write_text(yaml.safe_dump({adapter.name: block}), encoding="utf-8")
    port = free_port()
    arguments = [
        "--project",
        str(project),
        "--credentials",
        str(credentials),
        "--database-url",
        f"sqlite:///{workdir / 'crowddesk.db'}",
        "--port",
        str(port),
        *(["--model", str(model_dir)] if model_dir is not None else []),
    ]
    command = (
        [sys.executable, "-c", SERVE_WITHOUT_RATE_LIMIT, adapter.name, *arguments]
        if lifted
        else crowddesk_command("run", *arguments)
    )
    server = start_http_server(
        command,
        f"http://127.0.0.1:{port}/health",
        workdir / "server.log",
        env={**os.environ, ACTION_ENDPOINT_ENV: action_endpoint},
    )
    try:
        yield Served(f"http://127.0.0.1:{port}", server.pid)
    finally:
        stop(server)


def measure_channel(
    adapter: ChannelAdapter,
    settings: Settings,
    texts: Sequence[str],
    replies_per_text: list[int],
    project: Path,
    model_dir: Path | None,
    action_endpoint: str,
    workdir: Path,
    *,
    lifted: bool = False,
) -> ChannelRun:
    """One channel, measured from warm-up to the last reply of its throughput part."""
    rate = 0.0 if adapter.platform is None or lifted else connector_class(adapter.name).max_messages_per_second
    # At the configured limit both parts are capped to what it lets through in LIMITED_SECONDS.
    latency_messages, messages = settings.latency_messages, settings.messages
    if rate > 0:
        cap = max(1, math.ceil(rate * LIMITED_SECONDS))
        latency_messages, messages = min(latency_messages, cap), min(messages, cap)
    # Twice the replies the limit lets through in the throughput part, and then some.
    reply_timeout = REPLY_TIMEOUT + (2 * 2 * messages / rate if rate > 0 else 0.0)
    first_latency = settings.warmup
    first_throughput = first_latency + settings.latency_messages
    name = f"{adapter.name}-lifted" if lifted else adapter.name

    with contextlib.ExitStack() as stack:
        fake = stack.enter_context(timed(adapter.platform.api)()) if adapter.platform is not None else None
        served = stack.enter_context(
            served_channel(adapter, fake, project, model_dir, action_endpoint, workdir / name, lifted=lifted)
        )

        async def drive() -> tuple[Timings, Timings, float, float, float]:
            limits = httpx.Limits(max_connections=settings.concurrency, max_keepalive_connections=settings.concurrency)
            async with httpx.AsyncClient(limits=limits, timeout=REPLY_TIMEOUT) as client:
                customers = Customers(adapter, fake, served.base_url, texts, replies_per_text, client, reply_timeout)
                spacing = 1 / rate if rate > 0 else 0.0
                await customers.one_at_a_time(range(first_latency), spacing)
                load = os.getloadavg()[0]
                latency = await customers.one_at_a_time(range(first_latency, first_latency + latency_messages), spacing)
                cpu_before = process_cpu_seconds(served.pid)
                started = time.perf_counter()
                throughput = await customers.concurrently(
                    range(first_throughput, first_throughput + messages), settings.concurrency
                )
                cpu = process_cpu_seconds(served.pid) - cpu_before
            return latency, throughput, started, cpu, load

        latency, throughput, started, cpu, load = asyncio.run(drive())

    seconds = max(throughput.last_reply_at - started, 1e-9)
    replies_per_second = throughput.replies_received / seconds
    return ChannelRun(
        channel=adapter.name,
        rate_limit=rate,
        limit_lifted=lifted,
        latency_messages=latency_messages,
        p50_ms=milliseconds(latency.first_reply, 50),
        p95_ms=milliseconds(latency.first_reply, 95),
        p99_ms=milliseconds(latency.first_reply, 99),
        max_ms=milliseconds(latency.first_reply, 100),
        webhook_p50_ms=milliseconds(latency.webhook, 50),
        throughput_messages=messages,
        concurrency=settings.concurrency,
        throughput_seconds=round(seconds, 3),
        messages_per_second=round(messages / seconds, 2),
        replies_per_second=round(replies_per_second, 2),
        throughput_p50_ms=milliseconds(throughput.first_reply, 50),
        replies_expected=latency.replies_expected + throughput.replies_expected,
        replies_received=latency.replies_received + throughput.replies_received,
        errors=latency.errors + throughput.errors,
        server_cpu_ms_per_message=round(1000 * cpu / messages, 2),
        limit_is_bottleneck=replies_per_second >= BOUND_SHARE * rate if rate > 0 else None,
        load_average_before=round(load, 2),
    )


def with_ratios(runs: list[ChannelRun]) -> list[ChannelRun]:
    reference = next(run for run in runs if run.channel == REFERENCE)
    return [
        replace(
            run,
            p50_ratio_to_rest=round(run.p50_ms / reference.p50_ms, 2),
            throughput_ratio_to_rest=round(run.messages_per_second / reference.messages_per_second, 3),
            cpu_ratio_to_rest=round(run.server_cpu_ms_per_message / reference.server_cpu_ms_per_message, 2),
        )
        for run in runs
    ]


def run(
    settings: Settings,
    texts: Sequence[str],
    project: Path,
    workdir: Path,
    *,
    model_dir: Path | None = None,
    action_endpoint: str | None = None,
) -> dict[str, Any]:
    """Measure every channel of `settings` (REST first) on the trained `project`; the results
    document. Without `action_endpoint` the project's actions are served for the run."""
    if len(texts) < settings.texts_needed():
        raise ValueError(f"{settings.texts_needed()} texts needed, {len(texts)} given")
    channels = [REFERENCE, *(name for name in settings.channels if name != REFERENCE)]
    unknown = [name for name in channels if name not in ADAPTERS]
    if unknown:
        raise ValueError(f"no benchmark adapter for {', '.join(unknown)}; known: {', '.join(ADAPTERS)}")
    load_at_start = os.getloadavg()[0]
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    replies_per_text = [1] * len(texts)
    runs: list[ChannelRun] = []
    failed: dict[str, str] = {}
    with contextlib.ExitStack() as stack:
        if action_endpoint is None:
            port = free_port()
            stack.callback(stop, start_action_server(project, port=port))
            action_endpoint = f"http://127.0.0.1:{port}/webhook"
        for name in channels:
            print(f"{name} ...", flush=True)
            arguments = (settings, texts, replies_per_text, project, model_dir, action_endpoint, workdir)
            try:
                runs.append(measure_channel(ADAPTERS[name], *arguments))
                if runs[-1].limit_is_bottleneck:
                    print(f"{name} with its rate limit lifted ...", flush=True)
                    runs.append(measure_channel(ADAPTERS[name], *arguments, lifted=True))
            except Exception as error:
                if name == REFERENCE:  # the others cannot be compared, nor their replies counted
                    raise
                # One broken connector (or fake) must not void the other channels' numbers.
                failed[name] = f"{type(error).__name__}: {error}"
                print(f"{name} failed: {failed[name]}", flush=True)
    return {
        "benchmark": "channels",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine_info(),
        "load_average_1m_at_start": round(load_at_start, 2),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "settings": {
            **asdict(settings),
            "channels": channels,
            "limited_seconds": LIMITED_SECONDS,
            "bound_share": BOUND_SHARE,
            "texts": "BANKING77 test split, shuffled with seed 0",
            "server": "crowddesk run (uvicorn, outbox worker, SQLite file) + crowddesk run actions, subprocesses",
        },
        "runs": [asdict(run) for run in with_ratios(runs)],
        "failed": failed,
    }


def print_table(runs: Sequence[ChannelRun]) -> None:
    def number(value: float | None, digits: int) -> str:
        return "" if value is None or math.isnan(value) else f"{value:,.{digits}f}"

    print(
        format_table(
            [
                "channel",
                "limit msg/s",
                "p50 ms",
                "p95 ms",
                "p99 ms",
                "p50 ÷ REST",
                "webhook p50 ms",
                "msg/s",
                "÷ REST",
                "replies/s",
                "limit the bottleneck",
                "server CPU ms/msg",
                "CPU ÷ REST",
                "replies",
                "errors",
            ],
            [
                [
                    run.label,
                    number(run.rate_limit, 0) if run.rate_limit else "-",
                    number(run.p50_ms, 1),
                    number(run.p95_ms, 1),
                    number(run.p99_ms, 1),
                    number(run.p50_ratio_to_rest, 2),
                    number(run.webhook_p50_ms, 1),
                    number(run.messages_per_second, 1),
                    number(run.throughput_ratio_to_rest, 2),
                    number(run.replies_per_second, 1),
                    {True: "yes", False: "no", None: "-"}[run.limit_is_bottleneck],
                    number(run.server_cpu_ms_per_message, 1),
                    number(run.cpu_ratio_to_rest, 2),
                    f"{run.replies_received}/{run.replies_expected}",
                    str(run.errors),
                ]
                for run in runs
            ],
        )
    )


def benchmark_texts(data: Path, count: int) -> list[str]:
    texts = load_banking77(data).test.texts
    random.Random(0).shuffle(texts)
    return texts[:count]


def channel_names(text: str) -> tuple[str, ...]:
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [name for name in names if name not in ADAPTERS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected channels among {','.join(ADAPTERS)}, got {text!r}")
    return names


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--channels",
        type=channel_names,
        default=Settings.channels,
        help=f"comma-separated, of: {','.join(ADAPTERS)} (default: all; rest always runs, first)",
    )
    parser.add_argument(
        "--messages", type=int, default=Settings.messages, help="messages of the throughput part (default 200)"
    )
    parser.add_argument(
        "--concurrency", type=int, default=Settings.concurrency, help="webhooks in flight there (default 16)"
    )
    parser.add_argument(
        "--latency-messages",
        type=int,
        default=Settings.latency_messages,
        help="messages sent one at a time (default 50)",
    )
    parser.add_argument("--warmup", type=int, default=Settings.warmup, help="untimed messages first (default 5)")
    parser.add_argument("--data", type=Path, default=default_data_dir("banking77"), help="BANKING77 folder (test.csv)")
    parser.add_argument("--project", type=Path, help="an already trained copy of the demo project (skips training)")
    parser.add_argument("--output", type=Path, default=RESULTS_DIR / "channels.json", help="JSON results file")
    args = parser.parse_args(argv)
    settings = Settings(args.channels, args.warmup, args.latency_messages, args.messages, args.concurrency)

    texts = benchmark_texts(args.data, settings.texts_needed())
    with tempfile.TemporaryDirectory(prefix="crowddesk-channels-") as workdir:
        project = args.project
        if project is None:
            (Path(workdir) / "demo").mkdir()
            project = copy_demo_project(Path(workdir) / "demo")
            print("training the demo bot (crowddesk train) ...", flush=True)
            train(project, Path(workdir) / "train.log")
        results = run(settings, texts, project, Path(workdir) / "runs")
    print_table([ChannelRun(**run) for run in results["runs"]])
    print(
        f"load average (1 min) {results['load_average_1m_at_start']} at the start, "
        f"{results['load_average_1m_at_end']} at the end"
    )
    for name, reason in results["failed"].items():
        print(f"{name}: not measured, {reason}")
    print(f"wrote {write_results('channels', results, args.output)}")
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
