"""The capacity benchmark's arithmetic, on given samples: percentiles, which capacity step passes,
where the sweep stops, the arrival schedule, and who writes each message under load."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from benchmarks.capacity import (
    CONVERSATION_MESSAGES,
    Step,
    arrival_times,
    capacity,
    customer_of,
    percentile_ms,
    ratios,
)


def step(rate: float, p99_ms: float, errors: int = 0, messages: int = 1000) -> Step:
    return Step(
        part="capacity",
        rate=rate,
        seconds=15.0,
        messages=messages,
        answered_per_second=rate,
        p50_ms=p99_ms / 3,
        p99_ms=p99_ms,
        max_ms=p99_ms * 2,
        errors=errors,
        error_share=errors / messages,
        error_kinds={"HTTP 500": errors} if errors else {},
        silent=0,
        send_lag_p99_ms=1.0,
        server_cpu_ms_per_message=5.0,
        server_cores=1.0,
        actions_cpu_ms_per_message=0.1,
        generator_cpu_ms_per_message=0.3,
        generator_cores=0.1,
        load_average_before=1.0,
    )


def test_percentiles_are_milliseconds_of_the_samples() -> None:
    seconds = [i / 1000 for i in range(1, 101)]  # 1 ms ... 100 ms

    assert percentile_ms(seconds, 50) == pytest.approx(50.5)
    assert percentile_ms(seconds, 99) == pytest.approx(99.01)
    assert percentile_ms(seconds, 100) == 100.0
    assert math.isnan(percentile_ms([], 50))


def test_capacity_is_the_last_rate_before_the_first_failure() -> None:
    steps = [step(50, 20), step(100, 40), step(150, 199.9), step(200, 450), step(250, 30)]

    assert capacity(steps) == (150, True)


def test_too_many_errors_fail_a_step_whatever_its_latency() -> None:
    steps = [step(50, 20), step(100, 20, errors=11), step(150, 20)]

    assert capacity(steps) == (50, True)
    assert capacity([step(50, 20, errors=10)]) == (50, False)  # 1 % is still within the limit


def test_a_failing_first_rate_means_no_capacity_and_a_clean_sweep_only_a_lower_bound() -> None:
    assert capacity([step(50, 201)]) == (0.0, True)
    assert capacity([step(50, 20), step(100, 30)]) == (100, False)


def test_arrivals_keep_the_rate_on_a_seeded_schedule() -> None:
    times = arrival_times(200, 30, seed=3)

    assert times == sorted(times) and times[0] > 0 and times[-1] < 30
    assert len(times) == pytest.approx(200 * 30, rel=0.05)
    assert arrival_times(200, 30, seed=3) == times
    assert arrival_times(200, 30, seed=4) != times


def test_customers_write_in_turn_then_leave_after_a_conversation() -> None:
    rate = 20  # 20 customers writing, each about once a second
    senders = [customer_of(index, rate) for index in range(2000)]

    assert set(Counter(senders).values()) == {CONVERSATION_MESSAGES}
    assert senders[:3] == [0, 1, 2] and senders[20] == 0
    assert customer_of(20 * CONVERSATION_MESSAGES, rate) == 20  # the first customer of the next group


def test_ratios_compare_each_configuration_with_the_baselines_of_the_same_run() -> None:
    def result(lone: float, p50: float, p99: float, cpu: float, capacity_msg_s: float) -> dict[str, object]:
        load = {"p50_ms": p50, "p99_ms": p99, "server_cpu_ms_per_message": cpu}
        return {"lone": {"p50_ms": lone}, "load": load, "capacity_msg_s": capacity_msg_s}

    results = {
        "sqlite-1": result(10, 20, 80, 8, 100),
        "postgres-redis-2": result(8, 10, 40, 10, 300),
        "rasa-3.6": result(40, 400, 2000, 30, 0),
    }

    compared = ratios(results)

    assert compared["postgres-redis-2"]["sqlite-1"] == {
        "lone_p50": 0.8,
        "load_p50": 0.5,
        "load_p99": 0.5,
        "server_cpu_ms_per_message": 1.25,
        "capacity": 3.0,
    }
    assert compared["postgres-redis-2"]["rasa-3.6"]["capacity"] is None  # Rasa passed no rate
    assert compared["rasa-3.6"]["sqlite-1"]["load_p50"] == 20.0
    assert set(compared["sqlite-1"]) == {"rasa-3.6"}
