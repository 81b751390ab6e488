"""Where the CPU of one message goes, and what the sentence encoder alone costs.

    python -m benchmarks.message_cost [--messages 300] [--project KEPT] [--keep KEPT]

What runs: the demo project, copied to a temporary folder and trained with `crowddesk train` (or
--project, a copy trained before, as --keep leaves it), assembled in this process as `crowddesk
run` assembles it (the embedded SQLite store in a fresh file, the model's ONNX export as the
encoder, the server's thread settings), its custom actions on `crowddesk run actions`. The texts
are benchmarks.capacity's: the demo's NLU examples, each with a counter appended, so that no text
repeats and no cache answers it; customers write 5 messages each.

- turn: `Engine.handle` one message at a time, then `CONCURRENT` conversations at once (their
  messages share encoder passes), CPU of this whole process (every thread) per message. No HTTP:
  benchmarks.capacity's "lone" server CPU minus this turn is what the web server adds.
- parts, each timed alone: on new texts, one encode with the served encoder, the intent
  classifier and the entity extractors on that vector, the knowledge-base search; on the
  conversations of the lone run, the store's read that starts a turn (`ConversationStore.for_turn`)
  and the write that ends it (`record_turn` of the conversation's last turn again). The turn minus
  the parts is the rest: the dialogue, slot filling, the policy, the thread hops.
- encoders, one message per encode, on the same texts: the served export (ONNX Runtime, float32),
  PyTorch (sentence-transformers, when installed) and an int8 dynamic quantization of the export
  made for this run, which is measured and not served (its vectors are not the trained ones: the
  table gives their cosine to the float32 vectors). Then the served encoder on texts of
  `TOKEN_COUNTS` tokens (one word repeated between [CLS] and [SEP]): what an encode costs
  whatever its length, and what each token adds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import accuracy_machine_info, write_results
from benchmarks.capacity import CONVERSATION_MESSAGES, Texts
from benchmarks.serving import train
from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.connectors.types import InboundMessage
from crowddesk.nlu.encoders import Encoder, load_encoder, use_serving_threads
from crowddesk.nlu.onnx_encoder import OnnxMiniLMEncoder
from tests.demo_bot import copy_demo_project, free_port

CONCURRENT = 8  # conversations at once in the batched turn measurement
WARM_UP = 20  # messages first handled untimed: weights paged in, statement caches filled
CHANNEL = "rest"
TOKEN_COUNTS = (4, 16, 32, 64)  # texts' lengths in tokens for the encoder's cost by length
LENGTH_REPEATS = 50
TEXTS = "benchmarks.capacity's: the demo's NLU examples, a counter appended"


def cpu_per_call_ms(call: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]) -> float:
    """Process CPU per call, in ms, of `call(*args)` for each of `arguments` in turn."""
    started = time.process_time()
    for args in arguments:
        call(*args)
    return (time.process_time() - started) / len(arguments) * 1000


async def turn_cpu_ms(bot: Bot, texts: Texts, count: int, run: str, at_once: int) -> tuple[float, list[str]]:
    """Process CPU per message of `count` messages through `Engine.handle`, `at_once`
    conversations at a time, each writing `CONVERSATION_MESSAGES` messages; and their senders."""
    messages = [
        InboundMessage(CHANNEL, f"{run}-{at_once}-{index // (at_once * CONVERSATION_MESSAGES)}-{index % at_once}", text)
        for index, text in enumerate(texts_after(texts, count))
    ]
    senders = list(dict.fromkeys(message.sender_id for message in messages))
    started = time.process_time()
    for first in range(0, count, at_once):
        await asyncio.gather(*(bot.engine.handle(message) for message in messages[first : first + at_once]))
    return (time.process_time() - started) / count * 1000, senders


def parts_cpu_ms(bot: Bot, texts: Texts, count: int, stored_senders: Sequence[str]) -> dict[str, float]:
    """CPU per message of each part of a turn, timed alone: understanding on new texts, the
    store's read and write on conversations of `CONVERSATION_MESSAGES` turns."""
    encoder, nlu, knowledge_base, store = bot.nlu.encoder, bot.nlu, bot.knowledge_base, bot.conversations
    classifier = nlu.classifier
    if classifier is None:
        raise RuntimeError("the demo model has no intent classifier")
    sample = texts_after(texts, count)
    encoded = [(text, encoder.encode([text])) for text in sample]
    read = cpu_per_call_ms(store.for_turn, [(sender,) for sender in stored_senders])
    return {
        "encode": cpu_per_call_ms(encoder.encode, [([text],) for text in texts_after(texts, count)]),
        "intent classifier": cpu_per_call_ms(lambda text, vector: classifier.predict([text], vector), encoded),
        "entities": cpu_per_call_ms(nlu.entities.extract, [(text,) for text in sample]),
        "knowledge-base search": cpu_per_call_ms(lambda text, vector: knowledge_base.search(text, vector[0]), encoded),
        "store read": read,
        "store write": cpu_per_call_ms(store.record_turn, next_turns(store, stored_senders)),
    }


def next_turns(store: ConversationStore, senders: Sequence[str]) -> list[tuple[Any, ...]]:
    """`record_turn` arguments storing each bot-owned conversation's last turn once more, as its next."""
    turns = []
    for sender in senders:
        record, events = store.for_turn(sender)
        last_user = max((i for i, event in enumerate(events) if event["event"] == "user"), default=None)
        if record is None or last_user is None:
            continue  # a person owns it: the bot stores no turn of its own there
        again = [{**event, "timestamp": time.time()} for event in events[last_user:]]
        turns.append(
            (
                *(sender, record.channel, again, record.slots, record.failed_turns, record.owner),
                *(record.latest_message, None, None, None, record.turns),  # no hand-off, other write or answer
            )
        )
    return turns


def texts_after(texts: Texts, count: int) -> list[str]:
    return [texts.next() for _ in range(count)]


def encoder_costs(served: Encoder, export: Path, texts: Texts, count: int, workdir: Path) -> dict[str, Any]:
    """CPU per one-message encode of the served export, PyTorch and an int8 quantization of the export."""
    sample = texts_after(texts, count)
    one_each = [([text],) for text in sample]  # encode's argument: a list of one text
    reference = served.encode(sample)
    quantized = workdir / "encoder-int8.onnx"
    from onnxruntime.quantization import QuantType, quantize_dynamic  # type: ignore[import-untyped]

    quantize_dynamic(export, quantized, weight_type=QuantType.QInt8, per_channel=True)
    encoders: dict[str, Encoder] = {"ONNX Runtime float32 (served)": served}
    encoders["ONNX Runtime int8 (not served)"] = OnnxMiniLMEncoder(quantized)
    try:
        encoders["PyTorch (training)"] = load_encoder(served.name)
    except ImportError as missing:  # a serving-only install has no torch
        print(f"  PyTorch not measured: {missing}", flush=True)
    rows: dict[str, Any] = {}
    for name, encoder in encoders.items():
        for text in sample[:WARM_UP]:
            encoder.encode([text])
        vectors = encoder.encode(sample)
        cosine = np.sum(vectors * reference, axis=1) / (
            np.linalg.norm(vectors, axis=1) * np.linalg.norm(reference, axis=1)
        )
        rows[name] = {
            "cpu_ms_per_encode": round(cpu_per_call_ms(encoder.encode, one_each), 2),
            "cosine_to_served_min": round(float(cosine.min()), 5),
            "cosine_to_served_mean": round(float(cosine.mean()), 5),
        }
    return {"texts": count, "encoders": rows, "served_by_length": cost_by_length(served)}


def cost_by_length(encoder: Encoder) -> dict[str, float]:
    """CPU per one-text encode for texts of each of `TOKEN_COUNTS` tokens, and the least-squares
    line through them: the fixed cost of a pass and the cost of each token."""
    costs = {}
    for tokens in TOKEN_COUNTS:
        text = " ".join(["card"] * (tokens - 2))  # one token a word, plus [CLS] and [SEP]
        for _ in range(WARM_UP // 4):
            encoder.encode([text])
        costs[tokens] = cpu_per_call_ms(encoder.encode, [([text],)] * LENGTH_REPEATS)
    per_token, fixed = np.polyfit(list(costs), list(costs.values()), 1)
    return {
        **{f"{tokens}_tokens_ms": round(cost, 2) for tokens, cost in costs.items()},
        "fixed_ms": round(float(fixed), 2),
        "per_token_ms": round(float(per_token), 3),
    }


@contextlib.contextmanager
def trained_demo(project: Path | None, keep: Path | None) -> Iterator[tuple[Path, Path]]:
    """(the trained project, a scratch folder): --project as given, or the demo trained here."""
    workdir = Path(tempfile.mkdtemp(prefix="crowddesk-cost-"))
    try:
        if project is None:
            (workdir / "demo").mkdir()
            project = copy_demo_project(workdir / "demo")
            print("training the demo bot (crowddesk train) ...", flush=True)
            train(project, workdir / "crowddesk-train.log")
            if keep is not None:
                shutil.copytree(project, keep, dirs_exist_ok=True)
        yield project, workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def measure(bot: Bot, project: Path, messages: int, workdir: Path) -> dict[str, Any]:
    texts, run = Texts(project), uuid.uuid4().hex[:8]
    await turn_cpu_ms(bot, texts, WARM_UP, f"{run}-warm", 1)
    print(f"  {messages} turns one at a time, then {CONCURRENT} conversations at once ...", flush=True)
    lone, stored = await turn_cpu_ms(bot, texts, messages, run, 1)
    together, _ = await turn_cpu_ms(bot, texts, messages, run, CONCURRENT)
    print("  the parts, alone ...", flush=True)
    parts = await asyncio.to_thread(parts_cpu_ms, bot, texts, messages, stored)
    print("  the encoders ...", flush=True)
    export = bot.model.encoder_export
    if export is None or not export.is_file():
        raise RuntimeError("the trained model has no ONNX export")
    encoders = await asyncio.to_thread(encoder_costs, bot.nlu.encoder, export, texts, messages, workdir)
    measured_parts = sum(parts.values())
    return {
        "turn_cpu_ms_per_message": {"one at a time": round(lone, 2), f"{CONCURRENT} at once": round(together, 2)},
        "parts_cpu_ms_per_message": {name: round(value, 2) for name, value in parts.items()},
        "rest_of_turn_cpu_ms_per_message": round(lone - measured_parts, 2),
        "encoder": encoders,
    }


def run(messages: int, project: Path | None, keep: Path | None) -> dict[str, Any]:
    started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    machine = accuracy_machine_info()
    with trained_demo(project, keep) as (trained, workdir), contextlib.ExitStack() as stack:
        port = free_port()
        actions = start_action_server(trained, port=port)
        stack.callback(stop, actions)
        use_serving_threads()
        bot = assemble(
            trained, database_url=f"sqlite:///{workdir / 'cost.db'}", action_endpoint=f"http://127.0.0.1:{port}/webhook"
        )
        results = asyncio.run(_measured_and_closed(bot, trained, messages, workdir))
    return {
        "benchmark": "message_cost",
        "started": started,
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": machine,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
        "settings": {
            "messages": messages,
            "concurrent": CONCURRENT,
            "texts": TEXTS,
        },
        "results": results,
    }


async def _measured_and_closed(bot: Bot, project: Path, messages: int, workdir: Path) -> dict[str, Any]:
    try:
        return await measure(bot, project, messages, workdir)
    finally:
        await bot.aclose()


def print_tables(results: dict[str, Any]) -> None:
    turn, parts = results["turn_cpu_ms_per_message"], results["parts_cpu_ms_per_message"]
    lone, rest = turn["one at a time"], results["rest_of_turn_cpu_ms_per_message"]
    rows = [[name, f"{value:.2f}", f"{value / lone:.0%}"] for name, value in parts.items()]
    rows.append(["the rest: dialogue, slots, policy, thread hops", f"{rest:.2f}", f"{rest / lone:.0%}"])
    rows.append(["whole turn, one at a time", f"{lone:.2f}", "100%"])
    together = turn[f"{CONCURRENT} at once"]
    rows.append([f"whole turn, {CONCURRENT} conversations at once", f"{together:.2f}", f"{together / lone:.0%}"])
    print("\nCPU per message, in-process (no HTTP)")
    print(format_table(["part", "CPU ms", "vs whole turn"], rows))
    encoder = results["encoder"]
    served = encoder["encoders"]["ONNX Runtime float32 (served)"]["cpu_ms_per_encode"]
    rows = [
        [
            name,
            f"{row['cpu_ms_per_encode']:.2f}",
            f"{row['cpu_ms_per_encode'] / served:.2f}",
            f"{row['cosine_to_served_min']:.4f}",
        ]
        for name, row in encoder["encoders"].items()
    ]
    print("\nOne message per encode")
    print(format_table(["encoder", "CPU ms", "vs served", "min cosine to served"], rows))
    length = encoder["served_by_length"]
    by_tokens = ", ".join(f"{tokens} tokens {length[f'{tokens}_tokens_ms']:.2f} ms" for tokens in TOKEN_COUNTS)
    fit = f"fixed {length['fixed_ms']:.2f} ms + {length['per_token_ms']:.3f} ms a token"
    print(f"served encoder, CPU by length: {by_tokens}; {fit}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=300, help="messages per measurement (default 300)")
    parser.add_argument("--project", type=Path, help="an already trained copy of the demo (as --keep leaves it)")
    parser.add_argument("--keep", type=Path, help="copy the trained demo here, for --project next time")
    args = parser.parse_args(argv)
    if args.messages < CONCURRENT * CONVERSATION_MESSAGES:
        parser.error(f"--messages must be at least {CONCURRENT * CONVERSATION_MESSAGES}")
    results = run(args.messages, args.project, args.keep)
    print_tables(results["results"])
    print(f"\nwritten to {write_results('message_cost', results)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
