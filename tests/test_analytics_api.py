"""The dashboard's API (/analytics/api) on SQLite and PostgreSQL, over the known week: who may read
what, the refusals, and that it shows the scorecard's own numbers, charts included."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.reporting import api as analytics_api
from crowddesk.bot.reporting.scorecard import scorecard
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.services import provide
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.nlu.encoders import Encoder
from tests.known_week import WEEK

THE_WEEK = {"since": "2026-11-23", "until": "2026-11-30", "channel": "rest"}
EMPTY_WEEK = {"since": "2026-01-05", "until": "2026-01-12"}


class Reader:
    """An HTTP client of the dashboard's API signed in as one account (or none)."""

    def __init__(self, client: TestClient, token: str | None) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"} if token else {}

    def __call__(self, path: str, status: int = 200, /, **params: Any) -> Any:
        response = self.client.get(f"/analytics/api{path}", params=params, headers=self.headers)
        assert response.status_code == status, response.text
        return response.json()


@pytest.fixture
def dashboard(week: Engine, minilm_encoder: Encoder) -> Iterator[dict[str, Reader]]:
    """The dashboard's API on the known week, and a reader per account: the week's agents ana and
    bo, an editor, an admin, and nobody."""
    agents = AgentDirectory(week)
    agents.add("ed", "Ed", role="editor")
    agents.add("root", "Root", role="admin")
    knowledge_base = KnowledgeBase(KnowledgeBaseStore(week), minilm_encoder, lexical_weight=0.3, top_k=3)
    app = FastAPI()
    install_error_handlers(app)
    provide(app, agents, week, LiveIndex(knowledge_base), Redactor())
    app.include_router(analytics_api.router)
    with TestClient(app) as client:
        readers = {name: Reader(client, agents.issue_token(name)) for name in ("ana", "bo", "ed", "root")}
        yield {**readers, "nobody": Reader(client, None)}


def test_nothing_is_shown_without_signing_in(dashboard: dict[str, Reader]) -> None:
    for path in ("/scorecard", "/gaps"):
        assert dashboard["nobody"](path, 401) == {"error": "missing bearer token"}


def test_the_payload_is_the_scorecard_of_the_period_by_day(week: Engine, dashboard: dict[str, Reader]) -> None:
    payload = dashboard["ed"]("/scorecard", **THE_WEEK)

    assert payload["scorecard"] == json.loads(json.dumps(scorecard(week, WEEK, "day").as_dict()))
    headline = {h["name"]: h for h in payload["headline"]}
    assert headline["conversations"] == {
        "name": "conversations",
        "label": "Conversations (new customers)",
        "unit": "count",
        "current": 5,
        "previous": 1,
        "change": 4,
    }
    assert (headline["automated_resolution_rate"]["unit"], headline["automated_resolution_rate"]["change"]) == (
        "share",
        0.6,
    )
    people = payload["scorecard"]["current"]["people"]
    assert people["first_reply_histogram"] == {
        "edges_minutes": [15, 30, 45, 60, 120, 240],
        "counts": [0, 1, 1, 0, 0, 0, 0],
        "still_waiting": 0,
    }
    assert people["tickets_per_agent"] == {"ana": 1, "bo": 1}
    assert payload["channels"] == ["rest", "telegram"]
    charts = payload["charts"]
    assert set(charts) == {"automation", "first_reply", "sla", "queue", "csat"}
    assert all("<svg" in svg and "<script src" not in svg for svg in charts.values())
    assert "50% within 30 min, 100% within 60 min (2 replied)" in charts["first_reply"]
    assert "Conversations per day: 60% resolved by the bot alone, 40% handed off" in charts["automation"]
    assert "SLA kept on 1 of 2 tickets (50%)" in charts["sla"]
    assert "CSAT (1-5): people 4.00 from 2 ratings; bot answers not rated" in charts["csat"]
    assert "Tickets waiting for a person, on the hour: at most 1" in charts["queue"]


def test_an_agent_sees_the_team_and_only_their_own_tickets(dashboard: dict[str, Reader]) -> None:
    for reader, other in (("ana", "bo"), ("bo", "ana")):
        response = dashboard[reader].client.get(
            "/analytics/api/scorecard", params=THE_WEEK, headers=dashboard[reader].headers
        )
        payload = response.json()
        assert payload["scorecard"]["current"]["people"]["tickets_per_agent"] == {reader: 1}
        assert payload["scorecard"]["previous"]["people"]["tickets_per_agent"] == {reader: 0}
        assert payload["scorecard"]["current"]["volume"]["conversations"] == 5  # the team's figures
        assert not re.search(rf"\b{other}\b", response.text), f"{reader} sees {other}"

    admin = dashboard["root"]("/scorecard", **THE_WEEK)
    assert admin["scorecard"]["current"]["people"]["tickets_per_agent"] == {"ana": 1, "bo": 1}


@pytest.mark.parametrize(
    ("params", "status", "reason"),
    [
        ({"since": "yesterday"}, 400, "--since 'yesterday' is not an ISO date"),
        ({"since": "2026-11-30", "until": "2026-11-23"}, 400, "the period ends (2026-11-23T00:00:00+00:00) before"),
        ({"channel": "fax"}, 400, "no conversation came through channel 'fax'; channels: rest, telegram"),
        (
            {"since": "2025-01-01", "until": "2026-06-01"},
            400,
            "the dashboard shows at most 366 days; this period has 516",
        ),
        ({"since": "1969-12-25", "until": "1970-01-01"}, 400, "the period starts before 1970-01-01"),
        ({"until": "9999-12-31T23:00:00-05:00"}, 400, "the period reaches past the dates a calendar holds"),
        ({"since": "2" * 65}, 422, "since: String should have at most 64 characters"),
    ],
)
def test_a_bad_period_or_channel_is_refused_with_the_reason(
    dashboard: dict[str, Reader], params: dict[str, str], status: int, reason: str
) -> None:
    assert reason in dashboard["ed"]("/scorecard", status, **params)["error"]


def test_an_empty_period_has_zeros_and_charts_that_say_so(dashboard: dict[str, Reader]) -> None:
    payload = dashboard["ana"]("/scorecard", **EMPTY_WEEK)

    headline = {h["name"]: h for h in payload["headline"]}
    assert (headline["conversations"]["current"], headline["customer_messages"]["current"]) == (0, 0)
    assert headline["automated_resolution_rate"]["current"] is None and headline["csat_mean"]["current"] is None
    assert payload["scorecard"]["current"]["people"]["first_reply_histogram"]["counts"] == [0] * 7
    assert payload["scorecard"]["breakdown"]["rows"] == []
    for name, svg in payload["charts"].items():
        assert "No conversations in this period" in svg, name


def test_editors_get_the_periods_top_gaps_and_agents_are_told_why_not(dashboard: dict[str, Reader]) -> None:
    gaps = dashboard["ed"]("/gaps", since="2026-11-23", until="2026-11-30")

    # c3 clarified, c4 handed off, c5 marked its answer Not helpful and was handed off; t2 asked
    # for a person (no gap), and the handoff just before the week is outside it.
    assert (gaps["questions"], gaps["clustered"]) == (4, 4)
    assert "most recent" in gaps["note"]
    assert gaps["period"] == {
        "since": "2026-11-23T00:00:00+00:00",
        "until": "2026-11-30T00:00:00+00:00",
        "channel": None,
    }
    examples = [text for cluster in gaps["clusters"] for text in cluster["examples"]]
    assert sum(cluster["size"] for cluster in gaps["clusters"]) == 4
    assert {"my card", "I want to dispute a charge", "what does it cost", "that did not help"} == set(examples)
    assert "Top " in gaps["chart"] and "<svg" in gaps["chart"]
    assert (
        dashboard["root"]("/gaps", since="2026-11-23", until="2026-11-30", limit=1)["clusters"] == gaps["clusters"][:1]
    )

    assert dashboard["ana"]("/gaps", 403) == {"error": "role 'agent' can't read the gap report"}
    assert "No unanswered questions in this period" in dashboard["ed"]("/gaps", **EMPTY_WEEK)["chart"]
    assert "limit" in dashboard["ed"]("/gaps", 422, limit=0)["error"]


def test_only_the_most_recent_questions_are_clustered(
    dashboard: dict[str, Reader], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(analytics_api, "MAX_GAP_QUESTIONS", 2)

    gaps = dashboard["ed"]("/gaps", since="2026-11-23", until="2026-11-30")

    assert (gaps["questions"], gaps["clustered"]) == (4, 2)
    assert "only the 2 most recent questions" in gaps["note"]
    examples = {text for cluster in gaps["clusters"] for text in cluster["examples"]}
    assert examples == {"what does it cost", "that did not help"}  # c5's, the week's last
