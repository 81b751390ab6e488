"""The scorecard benchmark's synthetic traffic, loaded small into SQLite: the scorecard gives back
what the generator built (so the benchmark times the figures it claims to), and timing a turn's
write leaves the reporting indexes in place."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from benchmarks.scorecard import PERIOD, reporting_index_definitions, turn_cost
from benchmarks.scorecard_data import HANDOFF, KIND_SHARES, Chunk, chunks
from benchmarks.scorecard_load import load
from crowddesk.bot.dialogue.executors import CLARIFY_ACTION
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN
from crowddesk.bot.dialogue.turn import SUPPORT_POLICY
from crowddesk.bot.reporting.scorecard import scorecard

SCALE = 0.004  # 4,000 conversations over 180 days: ~700 in the 30-day period


@pytest.fixture(scope="module")
def traffic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Engine, Chunk]:
    path: Path = tmp_path_factory.mktemp("scorecard-benchmark") / "bench.db"
    engine, _ = load(f"sqlite:///{path}", SCALE, progress=lambda line: None)
    (generated,) = chunks(SCALE)  # one chunk at this scale, the same seeded rows as loaded
    return engine, generated


def in_period(moment: datetime) -> bool:
    return PERIOD.since <= moment < PERIOD.until


def expected(generated: Chunk) -> dict[str, Any]:
    """The figures read straight off the generated rows."""
    until = PERIOD.until.timestamp()
    started = {row[0]: row[1] for row in generated.conversations if in_period(row[7])}
    ticketed = {row[1] for row in generated.handoffs if row[6] < PERIOD.until}
    unhelpful = {row[2] for row in generated.feedback if not row[3] and row[4] < PERIOD.until}
    answered, actions = set(), []
    for conversation_id, _, kind, timestamp, _, data in generated.events:
        event = json.loads(data)
        if kind == "action" and PERIOD.since.timestamp() <= timestamp < until:
            actions.append(event["name"])
        dialogue = event.get("policy") not in (None, SUPPORT_POLICY) and event.get("name") != ACTION_LISTEN
        if kind == "action" and timestamp < until and (event["name"] == ANSWER_ACTION or dialogue):
            answered.add(conversation_id)
    return {
        "conversations": len(started),
        "handed_off": len(started.keys() & ticketed),
        "automated": sum(1 for c, sender in started.items() if c in answered - ticketed and sender not in unhelpful),
        "customer_messages": sum(
            1 for e in generated.events if e[2] == "user" and PERIOD.since.timestamp() <= e[3] < until
        ),
        "kb_answers": actions.count(ANSWER_ACTION),
        "clarifications": actions.count(CLARIFY_ACTION),
        "handoffs": sum(1 for row in generated.handoffs if in_period(row[6])),
        "kb_not_helpful": sum(1 for row in generated.feedback if in_period(row[4]) and not row[3]),
    }


def test_the_scorecard_of_the_generated_traffic_is_what_was_generated(traffic: tuple[Engine, Chunk]) -> None:
    engine, generated = traffic
    figures = scorecard(engine, PERIOD).current
    want = expected(generated)

    assert {
        "conversations": figures.outcomes.conversations,
        "handed_off": figures.outcomes.handed_off,
        "automated": figures.outcomes.automated,
        "customer_messages": figures.customer_messages,
        "kb_answers": figures.kb_answers,
        "clarifications": figures.clarifications,
        "handoffs": figures.handoffs,
        "kb_not_helpful": figures.kb_not_helpful,
    } == want
    # The traffic is what the benchmark says it is: ~10 events a conversation, a quarter handed off.
    assert 600 <= want["conversations"] <= 900
    assert figures.outcomes.handoff_rate == pytest.approx(KIND_SHARES[HANDOFF], abs=0.05)
    assert 9 <= len(generated.events) / len(generated.conversations) <= 11
    assert sum(figures.tickets_per_agent.values()) <= figures.handoffs


def test_timing_turn_writes_puts_the_reporting_indexes_back(traffic: tuple[Engine, Chunk]) -> None:
    engine, _ = traffic
    before = reporting_index_definitions(engine)

    cost = turn_cost(engine, turns=10)

    assert reporting_index_definitions(engine) == before
    assert sorted(before) == cost["indexes"]
    assert cost["with_indexes"]["median_ms"] > 0 and cost["without_indexes"]["median_ms"] > 0
