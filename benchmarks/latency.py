"""Latency and throughput of the REST webhook: the demo bot under 1, 8 and 32 concurrent conversations.

    python -m benchmarks.latency [--data ../shared/datasets/banking77] [--concurrency 1,8,32]

What runs: the demo project, copied to a temporary folder and trained with `crowddesk train`, served
by `crowddesk run` (uvicorn; the embedded SQLite store in a fresh file) with its custom actions on
`crowddesk run actions`, both subprocesses on free 127.0.0.1 ports. An async httpx load generator
plays N customers at once. Each customer greets, asks FAQ questions taken from the BANKING77 test
split (Casanueva et al. 2020, CC BY 4.0; never used to build the demo) and thanks the bot; when the
bot hands the conversation to a human, the customer leaves and a new one arrives (a handed-off
conversation is silent, so its messages would not measure the bot). Each level sends a fixed number
of messages, then stops; latency is per message, from request to reply, as the customer sees it.
No question is asked twice in a run (the server keeps the vectors of recent texts, so a repeat
would cost it less than a new question); greetings and thanks come from a few stock phrases, as
they do in real chats, and the share of messages served from that cache is reported per level.

Every concurrency runs twice. Back to back (think 0): each customer sends the next message as
soon as the reply arrives, which measures throughput; latency there is mostly queueing, since
with N customers always waiting, latency = N / throughput (Little's law: 32 customers at 200
msg/s wait 160 ms each). Paced: customers pause a random time (exponential, mean --think-ms)
before each next message, as people typing do; that measures the latency a customer sees while
32 conversations are active.

The floor is the least a message can cost: one encode and one knowledge-base search, in-process,
with the server's thread settings. The load generator runs on the same machine and its CPU time is
reported, since it competes with the server for the same cores. So is the server's CPU time per
message (from /proc): on a shared machine, wall-clock latency moves with everyone else's load,
CPU per message much less.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import platform
import random
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import RESULTS_DIR, write_results
from benchmarks.datasets import default_data_dir, load_banking77

# crowddesk_command and start_http_server are also imported from here (benchmarks/rasa36.py).
from benchmarks.serving import crowddesk_command, served_project, start_http_server, train  # noqa: F401
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.assemble import assemble
from crowddesk.nlu.encoders import use_serving_threads
from tests.demo_bot import copy_demo_project

TARGETS = {"p50_ms": 10.0, "p99_ms": 40.0, "messages_per_second": 200.0, "at_concurrency": 32}

GREETINGS = ["hi", "hello there", "good morning", "hey, I have a question"]
THANKS = ["thanks a lot", "thank you!", "great, thanks", "ok thank you"]
QUESTIONS_PER_CONVERSATION = 3
# Replies that mean the bot gave the conversation to a human (the customer then leaves).
HANDOFF_RESPONSES = ("utter_handoff", "utter_out_of_scope")
FLOOR_QUERIES = 100


@dataclass
class LevelResult:
    concurrency: int
    think_ms: float  # mean pause of a customer between a reply and their next message
    messages: int
    seconds: float
    messages_per_second: float
    p50_ms: float
    p99_ms: float
    mean_ms: float
    max_ms: float
    errors: int
    conversations: int
    outcomes: dict[str, int]
    client_cpu_share: float  # CPU seconds of the load generator per wall second (1.0 = one core)
    server_cpu_share: float  # the same for the server process (all its threads)
    server_cpu_ms_per_message: float
    encoder_cache_hit_share: float  # messages whose text the server had encoded before
    load_average_before: float


@dataclass
class Customers:
    """Scripted customers: greet, ask FAQ questions, say thanks."""

    questions: list[str]
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    asked: int = 0  # questions handed out so far in this run

    def conversation(self, slot: int, number: int) -> Iterator[str]:
        rng = random.Random(f"{slot}-{number}")
        yield rng.choice(GREETINGS)
        for _ in range(QUESTIONS_PER_CONVERSATION):
            if self.asked == len(self.questions):
                raise RuntimeError(
                    f"the run needs more than the {len(self.questions)} test questions; send fewer messages"
                )
            self.asked += 1
            yield self.questions[self.asked - 1]
        yield rng.choice(THANKS)

    def sender(self, concurrency: int, think_ms: float, slot: int, number: int) -> str:
        # Unique per level: a conversation handed off in one level would be silent in the next.
        return f"bench-{self.run_id}-c{concurrency}-t{think_ms:g}-s{slot}-n{number}"


def outcome(replies: list[dict[str, Any]], handoff_texts: frozenset[str]) -> str:
    """What the bot did with one message, judged from its replies as a channel sees them."""
    if not replies:
        return "silent"
    if any((reply.get("custom") or {}).get("kb_entry") for reply in replies):
        return "answer_from_kb"
    if any(reply.get("buttons") for reply in replies):
        return "clarify"
    if any(reply.get("text") in handoff_texts for reply in replies):
        return "handoff"
    return "response"


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    """p50, p99, mean and max of request latencies, in milliseconds."""
    ms = np.asarray(seconds) * 1000.0
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 2),
        "p99_ms": round(float(np.percentile(ms, 99)), 2),
        "mean_ms": round(float(ms.mean()), 2),
        "max_ms": round(float(ms.max()), 2),
    }


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, all threads, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_level(
    url: str,
    customers: Customers,
    concurrency: int,
    total: int,
    handoff_texts: frozenset[str],
    server_pid: int,
    think_ms: float = 0.0,
) -> LevelResult:
    """`concurrency` customers send `total` messages between them, each waiting for its reply
    and then pausing for an exponentially distributed time with mean `think_ms` (0: at once)."""
    latencies: list[float] = []
    outcomes: Counter[str] = Counter()
    errors = 0
    senders: set[str] = set()
    sent = itertools.count()

    async def customer(client: httpx.AsyncClient, slot: int) -> None:
        nonlocal errors
        pauses = random.Random(slot)
        for number in itertools.count():
            sender = customers.sender(concurrency, think_ms, slot, number)
            for text in customers.conversation(slot, number):
                if next(sent) >= total:
                    return
                senders.add(sender)
                start = time.perf_counter()
                response = await client.post(url, json={"sender": sender, "message": text})
                latencies.append(time.perf_counter() - start)
                if response.status_code != 200:
                    errors += 1
                    break
                kind = outcome(response.json(), handoff_texts)
                outcomes[kind] += 1
                if think_ms:
                    await asyncio.sleep(pauses.expovariate(1000.0 / think_ms))
                if kind == "handoff":
                    break

    load_before = os.getloadavg()[0]
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=60.0) as client:
        wall_start, cpu_start = time.perf_counter(), time.process_time()
        server_cpu_start = process_cpu_seconds(server_pid)
        cache_before = await encoder_cache(client, url)
        await asyncio.gather(*(customer(client, slot) for slot in range(concurrency)))
        seconds = time.perf_counter() - wall_start
        cpu = time.process_time() - cpu_start
        server_cpu = process_cpu_seconds(server_pid) - server_cpu_start
        cache_after = await encoder_cache(client, url)
    return LevelResult(
        concurrency=concurrency,
        think_ms=think_ms,
        messages=len(latencies),
        seconds=round(seconds, 3),
        messages_per_second=round(len(latencies) / seconds, 1),
        **latency_summary(latencies),
        errors=errors,
        conversations=len(senders),
        outcomes=dict(sorted(outcomes.items())),
        client_cpu_share=round(cpu / seconds, 2),
        server_cpu_share=round(server_cpu / seconds, 2),
        server_cpu_ms_per_message=round(1000 * server_cpu / len(latencies), 2),
        encoder_cache_hit_share=round((cache_after["hits"] - cache_before["hits"]) / len(latencies), 3),
        load_average_before=round(load_before, 2),
    )


async def encoder_cache(client: httpx.AsyncClient, webhook_url: str) -> dict[str, int]:
    """The server's encoder-cache counters, from its /health."""
    health = await client.get(httpx.URL(webhook_url).join("/health"))
    health.raise_for_status()
    return health.json()["encoder_cache"]


def measure_floor(project: Path, questions: Sequence[str], database: Path) -> dict[str, float]:
    """One encode + one KB search per message, in this process, one message at a time."""
    bot = assemble(project, database_url=f"sqlite:///{database}")
    encoder, knowledge_base = bot.nlu.encoder, bot.knowledge_base
    sample = list(questions[:FLOOR_QUERIES])
    for text in sample[:20]:  # warm-up: first calls allocate and JIT nothing, but page in weights
        knowledge_base.search(text, encoder.encode([text])[0])
    encode_ms, search_ms, total_ms = [], [], []
    for text in sample:
        start = time.perf_counter()
        vector = encoder.encode([text])[0]
        encoded = time.perf_counter()
        knowledge_base.search(text, vector)
        done = time.perf_counter()
        encode_ms.append((encoded - start) * 1000)
        search_ms.append((done - encoded) * 1000)
        total_ms.append((done - start) * 1000)
    bot.database.dispose()
    return {
        "queries": len(sample),
        "p50_ms": round(float(np.percentile(total_ms, 50)), 2),
        "p99_ms": round(float(np.percentile(total_ms, 99)), 2),
        "encode_p50_ms": round(float(np.percentile(encode_ms, 50)), 2),
        "search_p50_ms": round(float(np.percentile(search_ms, 50)), 3),
        "messages_per_second_one_at_a_time": round(1000.0 / float(np.mean(total_ms)), 1),
    }


def machine_info() -> dict[str, Any]:
    import faiss
    import torch

    cpu_model = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    return {
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cpu": cpu_model,
        "logical_cores": os.cpu_count(),
        "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "numpy": np.__version__,
    }


def print_table(floor: dict[str, float], levels: Sequence[LevelResult]) -> None:
    print(
        f"\nfloor (encode + KB search, in-process): p50 {floor['p50_ms']:.2f} ms, "
        f"p99 {floor['p99_ms']:.2f} ms (encode p50 {floor['encode_p50_ms']:.2f} ms, "
        f"search p50 {floor['search_p50_ms']:.3f} ms)"
    )
    print(
        format_table(
            [
                "conversations",
                "think ms",
                "messages",
                "msg/s",
                "p50 ms",
                "p99 ms",
                "max ms",
                "errors",
                "server CPU ms/msg",
                "server cores",
                "client cores",
                "cache hits",
                "outcomes",
            ],
            [
                [
                    str(level.concurrency),
                    f"{level.think_ms:.0f}",
                    str(level.messages),
                    f"{level.messages_per_second:.1f}",
                    f"{level.p50_ms:.2f}",
                    f"{level.p99_ms:.2f}",
                    f"{level.max_ms:.1f}",
                    str(level.errors),
                    f"{level.server_cpu_ms_per_message:.1f}",
                    f"{level.server_cpu_share:.2f}",
                    f"{level.client_cpu_share:.2f}",
                    f"{level.encoder_cache_hit_share:.0%}",
                    ", ".join(f"{k} {v}" for k, v in level.outcomes.items()),
                ]
                for level in levels
            ],
        )
    )


def targets_met(levels: Sequence[LevelResult]) -> dict[str, bool] | None:
    """Latency from the paced level at the target concurrency, throughput from the back-to-back one
    (see the module docstring for why they cannot come from the same level)."""
    at = [level for level in levels if level.concurrency == TARGETS["at_concurrency"]]
    paced = next((level for level in at if level.think_ms > 0), None)
    saturated = next((level for level in at if level.think_ms == 0), None)
    if paced is None or saturated is None:
        return None
    return {
        "p50_ms": paced.p50_ms <= TARGETS["p50_ms"],
        "p99_ms": paced.p99_ms <= TARGETS["p99_ms"],
        "messages_per_second": saturated.messages_per_second >= TARGETS["messages_per_second"],
    }


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    questions = load_banking77(args.data).test.texts
    random.Random(0).shuffle(questions)
    project = args.project
    if project is None:
        (workdir / "demo").mkdir()
        project = copy_demo_project(workdir / "demo")
        print("training the demo bot (crowddesk train) ...", flush=True)
        train(project, workdir / "train.log")
    domain = load_project(project).domain
    handoff_texts = frozenset(
        response.text for name in HANDOFF_RESPONSES for response in domain.responses.get(name, [])
    )

    print("measuring the floor in-process ...", flush=True)
    use_serving_threads()  # as `crowddesk run` does, so the floor is the server's own minimum
    floor = measure_floor(project, questions, workdir / "floor.db")

    levels = []
    with served_project(project, workdir) as server:
        url = f"{server.base_url}/webhooks/rest/webhook"
        customers = Customers(questions)
        asyncio.run(run_level(url, customers, 4, args.warmup, handoff_texts, server.pid))
        for concurrency in args.concurrency:
            print(f"{concurrency} concurrent conversations ...", flush=True)
            back_to_back = max(args.messages, args.min_rounds * concurrency)
            levels.append(asyncio.run(run_level(url, customers, concurrency, back_to_back, handoff_texts, server.pid)))
            paced = max(100, args.min_rounds * concurrency)
            levels.append(
                asyncio.run(run_level(url, customers, concurrency, paced, handoff_texts, server.pid, args.think_ms))
            )
    return {
        "benchmark": "latency",
        "machine": machine_info(),
        "settings": {
            "concurrency": args.concurrency,
            "messages_per_level": args.messages,
            "min_rounds": args.min_rounds,
            "warmup_messages": args.warmup,
            "paced_think_ms": args.think_ms,
            "questions": "BANKING77 test split, shuffled with seed 0",
            "questions_per_conversation": QUESTIONS_PER_CONVERSATION,
            "store": "SQLite file (embedded default)",
            "server": "crowddesk run (uvicorn) + crowddesk run actions (rasa_sdk), subprocesses",
        },
        "targets": TARGETS,
        "floor": floor,
        "levels": [asdict(level) for level in levels],
        "targets_met": targets_met(levels),
    }


def comma_separated_ints(text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir("banking77"),
        help="BANKING77 folder (test.csv); default ../shared/datasets/banking77",
    )
    parser.add_argument(
        "--concurrency",
        type=comma_separated_ints,
        default=[1, 8, 32],
        help="concurrent conversations per level (default 1,8,32)",
    )
    parser.add_argument("--messages", type=int, default=600, help="messages per level (default 600)")
    parser.add_argument(
        "--min-rounds", type=int, default=25, help="at least this many messages per conversation slot (default 25)"
    )
    parser.add_argument(
        "--think-ms",
        type=float,
        default=250.0,
        help="mean pause between a reply and the next message at the paced levels (default 250)",
    )
    parser.add_argument("--warmup", type=int, default=40, help="untimed messages first (default 40)")
    parser.add_argument(
        "--project", type=Path, help="an already trained copy of the demo project (skips copying and training)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "latency.json", help="JSON results file")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="crowddesk-latency-") as workdir:
        results = run(args, Path(workdir))
    print_table(results["floor"], [LevelResult(**level) for level in results["levels"]])
    if results["targets_met"] is not None:
        print(
            f"targets at {TARGETS['at_concurrency']} conversations (paced: p50 <= "
            f"{TARGETS['p50_ms']:.0f} ms, p99 <= {TARGETS['p99_ms']:.0f} ms; back to back: "
            f">= {TARGETS['messages_per_second']:.0f} msg/s): {results['targets_met']}"
        )
    print(f"wrote {write_results('latency', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
