"""Property-based fuzz of every public HTTP route, generated from the server's own OpenAPI schema.

Schemathesis draws requests that fit each operation's schema (positive) and requests that break
it (negative: wrong types, missing fields, out-of-range numbers, odd strings) and sends them to
the demo bot served by uvicorn on 127.0.0.1, signed in as an admin where a route needs it. No
request may get a 5xx, and every refusal must say why. The budget is bounded and derandomized,
so a CI run is repeatable and takes about a minute.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode

from crowddesk.bot.server.app import create_app
from crowddesk.bot.training.trainer import TrainResult
from tests.demo_bot import API_ACCESS, API_AUTH, demo_bot_on_fresh_database, serving

EXAMPLES_PER_OPERATION = 12
# Routes that would end the fuzz's own session or never answer (a server-sent event stream).
NOT_FUZZED = r"/desk/api/stream|/logout|/tokens"
# Routes signed in with an agent account; the rest (tracker, parse) take the API token.
ACCOUNT_PREFIXES = ("/desk/api", "/kb/api", "/privacy/api", "/analytics/api")


@dataclass(frozen=True)
class FuzzTarget:
    url: str
    admin_auth: dict[str, str]


@pytest.fixture(scope="module")
def fuzz_target(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[FuzzTarget]:
    bot = demo_bot_on_fresh_database(demo_project, demo_training, action_server_url, tmp_path_factory)
    bot.agents.add("fuzz-admin", "Fuzz Admin", "admin")
    admin_auth = {"Authorization": f"Bearer {bot.agents.issue_token('fuzz-admin')}"}
    app = create_app(bot, API_ACCESS)
    with serving(app, log_level="critical", timeout_graceful_shutdown=2) as url:
        yield FuzzTarget(url, admin_auth)


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=lambda m: m.value)
def test_no_request_gets_a_server_error(fuzz_target: FuzzTarget, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzz_target.url}/openapi.json").exclude(path_regex=NOT_FUZZED)
    failures: list[str] = []
    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        auth = fuzz_target.admin_auth if operation.path.startswith(ACCOUNT_PREFIXES) else API_AUTH
        try:
            found = _failures(operation, mode, auth)
        except Unsatisfiable:  # negative mode: an operation without inputs can't be called wrongly
            continue
        failures.extend(found[:2])  # two examples per operation are enough to reproduce it
    assert operations >= 25, f"the schema lists only {operations} operations; is a router missing?"
    assert not failures, "\n".join(failures)


def _failures(operation: schemathesis.APIOperation, mode: GenerationMode, auth: dict[str, str]) -> list[str]:
    """The requests drawn for `operation` that got a server error or a refusal without a reason."""
    found: list[str] = []

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES_PER_OPERATION,
        deadline=None,
        derandomize=True,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def call(case: schemathesis.Case) -> None:
        response = case.call(headers=auth, timeout=60)
        if response.status_code >= 500 or (response.status_code >= 400 and not _has_reason(response)):
            found.append(
                f"{case.method} {case.formatted_path} query={case.query!r} "
                f"body={str(case.body)[:200]!r} -> {response.status_code} {response.text[:200]!r}"
            )

    call()
    return found


def _has_reason(response: object) -> bool:
    """A refusal carries `{"error": "..."}` (or FastAPI's `detail`), not an empty body."""
    try:
        body = response.json()  # type: ignore[attr-defined]
    except ValueError:
        return False
    return isinstance(body, dict) and bool(body.get("error") or body.get("detail"))
