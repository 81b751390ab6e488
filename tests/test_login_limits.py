"""Sign-in back-off per account and per address, and failures that cost the same for any id."""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crowddesk.bot.desk.agents import AgentDirectory, AuthError
from crowddesk.bot.desk.login_limits import LoginLimiter

PASSWORD = "correct horse battery"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def limiter(db_engine: Engine) -> LoginLimiter:
    return LoginLimiter(db_engine)


def fail(
    limiter: LoginLimiter, times: int, agent_id: str = "ana", address: str = "10.0.0.1", at: datetime = START
) -> None:
    for _ in range(times):
        limiter.failed(agent_id, address, now=at)


def test_an_account_is_locked_after_five_failures_and_each_further_one_doubles_the_wait(
    limiter: LoginLimiter,
) -> None:
    fail(limiter, 4)
    assert limiter.refusal("ana", "10.0.0.9", now=START) is None
    fail(limiter, 1)
    refusal = limiter.refusal("ana", "10.0.0.9", now=START)
    assert refusal is not None and refusal.retry_after == 60
    assert refusal.reason == "too many failed sign-ins from this account; try again in 60 s"
    assert limiter.refusal("bo", "10.0.0.9", now=START) is None  # colleagues are not locked out

    after_lock = START + timedelta(seconds=61)
    assert limiter.refusal("ana", "10.0.0.9", now=after_lock) is None
    fail(limiter, 1, at=after_lock)
    assert limiter.refusal("ana", "10.0.0.9", now=after_lock).retry_after == 120  # type: ignore[union-attr]
    fail(limiter, 10, at=after_lock)  # the wait never exceeds the window
    assert limiter.refusal("ana", "10.0.0.9", now=after_lock).retry_after == 15 * 60  # type: ignore[union-attr]


def test_a_success_or_a_quiet_quarter_hour_forgets_an_accounts_failures(limiter: LoginLimiter) -> None:
    fail(limiter, 4)
    limiter.succeeded("ana")
    fail(limiter, 4)
    assert limiter.refusal("ana", "10.0.0.2", now=START) is None

    quiet = START + timedelta(minutes=16)
    fail(limiter, 1, at=quiet)  # counted from one again: 4 + 1 would have locked it
    assert limiter.refusal("ana", "10.0.0.2", now=quiet) is None


def test_an_address_is_locked_after_twenty_failures_across_accounts_and_a_success_keeps_it(
    limiter: LoginLimiter,
) -> None:
    for n in range(19):
        limiter.failed(f"guess-{n}", "10.0.0.3", now=START)
    limiter.succeeded("guess-0")
    assert limiter.refusal("someone", "10.0.0.3", now=START) is None
    limiter.failed("guess-19", "10.0.0.3", now=START)
    refusal = limiter.refusal("someone", "10.0.0.3", now=START)
    assert refusal is not None and "from this address" in refusal.reason
    assert limiter.refusal("someone", "10.0.0.4", now=START) is None


def test_login_answers_429_with_retry_after_for_real_and_unknown_ids_alike(demo_client: TestClient) -> None:
    agents = demo_client.app.state.bot.agents
    real = f"agent-{uuid.uuid4().hex[:8]}"
    agents.add(real, "Ana Agent", password=PASSWORD)
    # A client of its own, so its address's budget is not shared with other tests.
    client = TestClient(demo_client.app, client=(f"10.1.{uuid.uuid4().int % 250}.7", 50000))

    for agent_id in (real, f"nobody-{uuid.uuid4().hex[:8]}"):
        for _ in range(5):
            wrong = client.post("/desk/api/login", json={"agent_id": agent_id, "password": "wrong guess"})
            assert wrong.status_code == 401 and wrong.json()["error"] == "wrong agent id or password"
        locked = client.post("/desk/api/login", json={"agent_id": agent_id, "password": PASSWORD})
        assert locked.status_code == 429
        wait = int(locked.headers["retry-after"])
        assert 50 <= wait <= 60  # a minute from the fifth failure
        assert locked.json()["error"] == f"too many failed sign-ins from this account; try again in {wait} s"


def test_a_successful_sign_in_resets_the_accounts_failures(demo_client: TestClient) -> None:
    agents = demo_client.app.state.bot.agents
    ana = f"agent-{uuid.uuid4().hex[:8]}"
    agents.add(ana, "Ana Agent", password=PASSWORD)
    client = TestClient(demo_client.app, client=(f"10.2.{uuid.uuid4().int % 250}.8", 50000))

    def login(password: str) -> int:
        return client.post("/desk/api/login", json={"agent_id": ana, "password": password}).status_code

    assert [login("typo!") for _ in range(4)] + [login(PASSWORD)] == [401] * 4 + [200]
    assert [login("typo!") for _ in range(4)] == [401] * 4


@pytest.fixture
def scrypt_calls(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The parameters of each scrypt computation (the real one still runs)."""
    calls: list[dict[str, Any]] = []
    real: Callable[..., bytes] = hashlib.scrypt

    def counted(password: bytes, **params: Any) -> bytes:
        calls.append({k: v for k, v in params.items() if k != "salt"})
        return real(password, **params)

    monkeypatch.setattr(hashlib, "scrypt", counted)
    return calls


def test_unknown_disabled_and_password_less_ids_cost_one_scrypt_like_a_wrong_password(
    db_engine: Engine,
    scrypt_calls: list[dict[str, Any]],
) -> None:
    agents = AgentDirectory(db_engine)
    agents.add("ana", "Ana", password=PASSWORD)
    agents.add("bo", "Bo", password=PASSWORD)
    agents.disable("bo")
    agents.add("cy", "Cy")  # token-only account
    with pytest.raises(AuthError):
        agents.authenticate_password("warm-up", "x")  # the stand-in hash is made once per process
    scrypt_calls.clear()

    for agent_id in ("ana", "nobody", "bo", "cy"):
        with pytest.raises(AuthError, match=r"^wrong agent id or password$"):
            agents.authenticate_password(agent_id, "not it")
    assert len(scrypt_calls) == 4 and all(call == scrypt_calls[0] for call in scrypt_calls)
