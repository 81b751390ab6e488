"""The scorecard on real volumes: 1M conversations / 10M events, on PostgreSQL and on SQLite.

    python -m benchmarks.scorecard [--scale 1.0] [--backends postgresql,sqlite] [--keep]

Each database is built by the project's migrations and loaded with benchmarks/scorecard_data.py's
seeded traffic (180 days, ~10 events a conversation, a quarter handed off). Then, on each:
- the 30-day scorecard (`scorecard(engine, period)`), the same broken down by day (the dashboard's
  data) and limited to one channel: the first run ("cold": just after loading), then the median of
  REPEATS more;
- the write cost of one turn (`ConversationStore.record_turn`, a quarter of them opening a
  ticket), median over --turns turns with the reporting indexes and as many with them dropped.
Targets: ≤ 1 s on PostgreSQL, ≤ 3 s on SQLite, indexes adding ≤ 0.5 ms to a turn.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Engine, bindparam, text

from benchmarks import RESULTS_DIR, accuracy_machine_info, write_results
from benchmarks.scorecard_data import END, live_turns
from benchmarks.scorecard_load import create_postgres_database, drop_postgres_database, load
from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.dialogue.answered import first_answer
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.reporting.period import Dimension, Period
from crowddesk.bot.reporting.scorecard import Scorecard, scorecard

DATABASE = "crowddesk_bench"
PERIOD = Period(END - timedelta(days=30), END)
CHANNEL = "telegram"
REPEATS = 5
WARM_UP_TURNS = 20
TARGET_S = {"postgresql": 1.0, "sqlite": 3.0}
TARGET_TURN_MS = 0.5
# The indexes the scorecard's queries use on what a turn writes (bot/conversations/migrations 0002,
# 0003); those on Helpful / Not helpful presses (knowledge_base 0003) cost a write per press only.
REPORTING_INDEXES = (
    "ix_conversations_created_at",
    "ix_conversations_channel_id",
    "ix_events_type_timestamp_conversation",
    "ix_events_type_name_timestamp_conversation",
    "ix_handoffs_created_at",
    "ix_handoffs_first_response_at",
    "ix_handoffs_resolved_at",
)


def time_scorecard(engine: Engine, period: Period, by: Dimension | None = None) -> dict[str, Any]:
    """Seconds of the first call and the median of REPEATS more; the last scorecard's headline."""
    runs = []
    for _ in range(REPEATS + 1):
        started = time.perf_counter()
        card = scorecard(engine, period, by)
        runs.append(time.perf_counter() - started)
    return {"cold_s": round(runs[0], 3), "warm_s": round(statistics.median(runs[1:]), 3), "headline": _headline(card)}


def _headline(card: Scorecard) -> dict[str, Any]:
    return {h.name: h.current for h in card.headline()}


def time_turns(engine: Engine, count: int, seed: int, *, outcomes: bool) -> list[float]:
    """Milliseconds to store each of `count` turns, after WARM_UP_TURNS not timed; with `outcomes`,
    as the engine stores them, keeping when the bot answered on the conversation's row."""
    store = ConversationStore(engine)
    ids = np.random.default_rng(seed).integers(1, _max_conversation_id(engine) + 1, size=count).tolist()
    with engine.connect() as connection:
        existing = [
            (sender_id, channel)
            for sender_id, channel in connection.execute(
                text("SELECT sender_id, channel FROM conversations WHERE id IN :ids").bindparams(
                    bindparam("ids", expanding=True)
                ),
                {"ids": ids},
            )
        ]
    costs = []
    for number, turn in enumerate(live_turns(count + WARM_UP_TURNS, existing, seed)):
        started = time.perf_counter()
        answered_at = first_answer(turn.events) if outcomes else None
        store.record_turn(
            turn.sender_id, turn.channel, turn.events, {}, 0, "bot", turn.latest_message, turn.new_handoff,
            answered_at=answered_at,
        )  # fmt: skip
        if number >= WARM_UP_TURNS:
            costs.append((time.perf_counter() - started) * 1000)
    return costs


def _max_conversation_id(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(text("SELECT max(id) FROM conversations")).scalar_one())


def reporting_index_definitions(engine: Engine) -> dict[str, str]:
    """The CREATE INDEX statement of each reporting index, as the database reports it."""
    if engine.dialect.name == "postgresql":
        query = "SELECT indexname, indexdef FROM pg_indexes WHERE indexname IN :names"
    else:
        query = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND name IN :names"
    statement = text(query).bindparams(bindparam("names", expanding=True))
    with engine.connect() as connection:
        return {str(name): str(sql) for name, sql in connection.execute(statement, {"names": list(REPORTING_INDEXES)})}


def turn_cost(engine: Engine, turns: int) -> dict[str, Any]:
    """Turn write cost with what the scorecard needs, the reporting indexes and the outcome kept on
    the conversation's row (half the turns before dropping the indexes, half after creating them
    again, so drift over the run weighs on both sides), and without either."""
    definitions = reporting_index_definitions(engine)
    with_indexes = time_turns(engine, turns // 2, seed=1, outcomes=True)
    with engine.begin() as connection:
        for name in definitions:
            connection.exec_driver_sql(f"DROP INDEX {name}")
    try:
        without_indexes = time_turns(engine, turns, seed=2, outcomes=False)
    finally:
        with engine.begin() as connection:
            for sql in definitions.values():
                connection.exec_driver_sql(sql)
    with_indexes += time_turns(engine, turns - turns // 2, seed=3, outcomes=True)
    summary = {"with_indexes": _summary(with_indexes), "without_indexes": _summary(without_indexes)}
    return {
        "turns": turns,
        "indexes": sorted(definitions),
        **summary,
        "delta_ms": round(summary["with_indexes"]["median_ms"] - summary["without_indexes"]["median_ms"], 3),
    }


def _summary(costs: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(costs), 3), "p90_ms": round(float(np.percentile(costs, 90)), 3)}


def run_backend(url: str, scale: float, turns: int, say: Callable[[str], None]) -> dict[str, Any]:
    """Load one database, then time the scorecard and a turn's write on it."""
    engine, loaded = load(url, scale, say)
    try:
        result: dict[str, Any] = {**loaded, "load_average_1m_before_timing": round(os.getloadavg()[0], 2)}
        timed: tuple[tuple[str, Period, Dimension | None], ...] = (
            ("scorecard", PERIOD, None),
            ("by_day", PERIOD, "day"),
            ("channel", Period(PERIOD.since, PERIOD.until, CHANNEL), None),
        )
        for name, period, by in timed:
            say(f"  {engine.dialect.name}: timing {name}")
            result[name] = time_scorecard(engine, period, by)
        say(f"  {engine.dialect.name}: timing turn writes")
        result["turn_write"] = turn_cost(engine, turns)
        result["load_average_1m_after"] = round(os.getloadavg()[0], 2)
        return result
    finally:
        engine.dispose()


def print_table(results: dict[str, dict[str, Any]]) -> None:
    """One row per database: rows, load time, scorecard timings, turn write cost, target."""
    rows = []
    for backend, r in results.items():
        turn = r["turn_write"]
        rows.append(
            [
                backend,
                f"{r['rows']['conversations']:,} / {r['rows']['events']:,}",
                f"{r['load_s']:.0f}",
                f"{r['scorecard']['cold_s']:.2f} / {r['scorecard']['warm_s']:.2f}",
                f"{r['by_day']['warm_s']:.2f}",
                f"{r['channel']['warm_s']:.2f}",
                f"{turn['with_indexes']['median_ms']:.2f} / {turn['without_indexes']['median_ms']:.2f}",
                f"{turn['delta_ms']:+.2f}",
                f"{TARGET_S[backend]:.0f} s / {TARGET_TURN_MS} ms",
            ]
        )
    headers = [
        "database",
        "conversations / events",
        "load s",
        "scorecard cold / warm s",
        "by day s",
        "channel s",
        "turn ms with / without indexes",
        "Δ ms",
        "target",
    ]
    print(format_table(headers, rows))


def main(argv: Sequence[str] | None = None) -> int:
    """Load, time and report each backend asked for; write results/scorecard.json."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=1.0, help="× 1M conversations (0.01 for a quick run)")
    parser.add_argument("--backends", default="postgresql,sqlite", help="comma-separated: postgresql, sqlite")
    parser.add_argument(
        "--postgres-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help=f"the server; the benchmark creates (and drops) the database {DATABASE} on it",
    )
    parser.add_argument(
        "--workdir",
        type=Path,
        default=Path(tempfile.gettempdir()) / "crowddesk-scorecard",
        help="where the SQLite database is written",
    )
    parser.add_argument("--turns", type=int, default=500, help="turns timed with and without the indexes")
    parser.add_argument("--keep", action="store_true", help="keep both databases afterwards")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "scorecard.json")
    args = parser.parse_args(argv)
    machine = accuracy_machine_info()
    say = lambda line: print(line, flush=True)  # noqa: E731
    results = {}
    for backend in args.backends.split(","):
        say(f"{backend}: loading {args.scale:g} × 1M conversations")
        if backend == "postgresql":
            url = create_postgres_database(args.postgres_url, DATABASE)
            try:
                results[backend] = run_backend(url, args.scale, args.turns, say)
            finally:
                if not args.keep:
                    drop_postgres_database(args.postgres_url, DATABASE)
        else:
            path = args.workdir / "scorecard.db"
            results[backend] = run_backend(f"sqlite:///{path}", args.scale, args.turns, say)
            if not args.keep:
                for written in path.parent.glob(path.name + "*"):
                    written.unlink()
    print_table(results)
    payload = {
        "benchmark": "scorecard",
        "machine": machine,
        "scale": args.scale,
        "period": PERIOD.as_dict(),
        "channel": CHANNEL,
        "repeats": REPEATS,
        "targets": {"seconds": TARGET_S, "turn_index_cost_ms": TARGET_TURN_MS},
        "results": results,
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }
    write_results("scorecard", payload, args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
