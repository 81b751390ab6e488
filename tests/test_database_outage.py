"""A database that goes away while the server runs (a restart, a failover): requests fail fast
with 503 and a reason while it is down, and service resumes by itself when it is back, on the
real PostgreSQL behind a TCP proxy the test cuts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import make_url

from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import assemble
from crowddesk.bot.training.trainer import TrainResult
from tests.db_fixtures import PostgresSchema
from tests.demo_bot import API_ACCESS
from tests.fakes.tcp_proxy import TcpProxy
from tests.test_end_to_end import tracker

pytestmark = pytest.mark.postgres


@pytest.fixture
def proxied_server(
    postgres_schema: PostgresSchema, demo_project: Path, demo_training: TrainResult, action_server_url: str
) -> Iterator[tuple[TestClient, TcpProxy]]:
    """The demo bot on the test PostgreSQL schema, reached through a proxy the test can cut."""
    url = make_url(postgres_schema.url)
    with TcpProxy((url.host or "127.0.0.1", url.port or 5432)) as proxy:
        bot = assemble(
            demo_project,
            model_dir=demo_training.model_dir,
            database_url=url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False),
            action_endpoint=action_server_url,
        )
        try:
            with TestClient(create_app(bot, API_ACCESS)) as client:
                yield client, proxy
        finally:
            postgres_schema.reset()


def test_requests_fail_fast_with_503_while_the_database_is_down_and_recover_without_a_restart(
    proxied_server: tuple[TestClient, TcpProxy],
) -> None:
    client, proxy = proxied_server
    sender = f"outage-{uuid.uuid4().hex[:8]}"
    health = client.get("/health")
    assert health.status_code == 200 and health.json()["database"] == "ok"

    proxy.cut()
    health = client.get("/health")
    assert health.status_code == 503
    assert health.json() == {"error": "the database is unavailable; try again shortly"}
    assert health.headers["retry-after"] == "5"
    refused = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "hi"})
    assert refused.status_code == 503 and "database is unavailable" in refused.json()["error"]
    assert "127.0.0.1" not in refused.text  # the driver's message names the server: never sent

    proxy.restore()
    assert client.get("/health").status_code == 200
    answered = client.post("/webhooks/rest/webhook", json={"sender": sender, "message": "hi"})
    assert answered.status_code == 200 and answered.json()
    # The refused attempt left nothing behind: the message is in the conversation once.
    texts = [e["text"] for e in tracker(client, sender)["events"] if e["event"] == "user"]
    assert texts == ["hi"]
