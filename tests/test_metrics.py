"""The Prometheus `/metrics` route: turn counters, queue gauges, and who may scrape them."""

from __future__ import annotations

import time
import uuid

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.metrics import PUBLIC_ENV
from crowddesk.connectors.webchat import SOCKET_PATH
from tests.demo_bot import API_ACCESS, API_AUTH
from tests.test_end_to_end import say

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(client: TestClient, headers: dict[str, str] = API_AUTH) -> Samples:
    """Every sample of the exposition, by name and sorted labels."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    """How much a sample rose between two scrapes (the demo client is shared by other tests)."""
    key = (name, tuple(sorted(labels.items())))
    return after[key] - before.get(key, 0.0)


def test_turns_and_the_ticket_queue_show_in_the_metrics(demo_client: TestClient, sender: str) -> None:
    before = scrape(demo_client)
    say(demo_client, "It's been a week and my new card still hasn't arrived", sender)
    say(demo_client, "I want to talk to a real person please", sender)
    after = scrape(demo_client)

    assert grew(before, after, "crowddesk_messages_total", channel="rest") == 2
    assert grew(before, after, "crowddesk_decisions_total", kind="answer_from_kb") == 1
    assert grew(before, after, "crowddesk_decisions_total", kind="hand_off") == 1
    assert grew(before, after, "crowddesk_handoffs_total", reason="customer_request") == 1
    assert grew(before, after, "crowddesk_turn_seconds_count") == 2
    assert grew(before, after, "crowddesk_open_tickets", status="queued") == 1
    # Each message was encoded once: a miss, or a hit when an earlier test sent the same text.
    lookups = [grew(before, after, f"crowddesk_encoder_cache_{kind}_total") for kind in ("hits", "misses")]
    assert sum(lookups) >= 2
    for gauge in ("crowddesk_outbox_pending", "crowddesk_outbox_failed", "crowddesk_sla_breaches"):
        assert (gauge, ()) in after


def test_open_web_chat_tabs_show_as_open_sessions(demo_client: TestClient) -> None:
    before = scrape(demo_client)[("crowddesk_open_sessions", (("channel", "webchat"),))]
    with demo_client.websocket_connect(f"{SOCKET_PATH}?session={uuid.uuid4()}") as socket:
        assert socket.receive_json()["type"] == "history"
        assert scrape(demo_client)[("crowddesk_open_sessions", (("channel", "webchat"),))] == before + 1
    # Closing the tab is noticed when the server next reads the socket.
    for _ in range(50):
        if scrape(demo_client)[("crowddesk_open_sessions", (("channel", "webchat"),))] == before:
            break
        time.sleep(0.05)
    assert scrape(demo_client)[("crowddesk_open_sessions", (("channel", "webchat"),))] == before
    assert scrape(demo_client)[("crowddesk_open_sessions", (("channel", "rest"),))] == 0


def test_metrics_need_the_api_token(demo_client: TestClient) -> None:
    response = demo_client.get("/metrics")
    assert response.status_code == 401
    assert "API token" in response.json()["error"]


def test_metrics_can_be_opened_to_a_scraper_on_a_private_network(
    demo_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PUBLIC_ENV, "1")
    # A second app in the process: its registry is its own, so the metric names don't clash.
    public = TestClient(create_app(demo_client.app.state.bot, API_ACCESS))
    assert ("crowddesk_messages_total", (("channel", "rest"),)) not in scrape(public, headers={})
