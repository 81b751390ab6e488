"""The simulated operation: the team works its queue first come first served within its shift,
customers arrive following the day's curve, `simulation.yml` errors point at the key, and a
simulated stretch played through the real demo bot leaves in the database exactly what the
scorecard then reports, stamped at the simulated moments, the same for the same seed."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.reporting.period import Period
from crowddesk.bot.reporting.scorecard import scorecard
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.simulation.operation import Played
from crowddesk.bot.simulation.team import Staffing, Team
from crowddesk.bot.simulation.traffic import arrivals, casual
from crowddesk.bot.simulation.traffic_file import read_traffic
from crowddesk.bot.simulation.weeks import simulate_weeks
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.errors import Conflict, Rejected
from tests.demo_bot import copy_demo_project, demo_bot_on_fresh_database

MONDAY = datetime(2026, 11, 23, tzinfo=UTC)


def test_a_ticket_opened_at_night_waits_for_the_morning_shift() -> None:
    team = Team(np.random.default_rng(0), Staffing(agents=1, shift_start_hour=8, shift_end_hour=20))
    handled = team.take(MONDAY + timedelta(hours=22))
    assert handled.taken_at == MONDAY + timedelta(days=1, hours=8)
    assert handled.taken_at < handled.replied_at < handled.resolved_at


def test_a_full_team_makes_the_next_ticket_wait_for_the_first_free_slot() -> None:
    team = Team(np.random.default_rng(0), Staffing(agents=2, concurrent=1))
    opened = MONDAY + timedelta(hours=10)
    first, second, third = (team.take(opened) for _ in range(3))
    assert {first.agent, second.agent} == {0, 1}, "two free agents share the first two tickets"
    assert first.taken_at == second.taken_at == opened
    assert third.taken_at == min(first.resolved_at, second.resolved_at)


def test_customers_arrive_by_the_day_curve_and_the_seed() -> None:
    days = 28  # four weeks from a Monday
    moments = arrivals(np.random.default_rng(1), MONDAY, days, per_weekday=400)
    assert moments == sorted(moments) and moments == arrivals(np.random.default_rng(1), MONDAY, days, 400)
    by_hour = np.bincount([m.hour for m in moments], minlength=24)
    assert by_hour[11] > 10 * by_hour[3], "late morning is busy, the small hours are quiet"
    weekday = sum(1 for m in moments if m.weekday() < 5) / 20
    weekend = sum(1 for m in moments if m.weekday() >= 5) / 8
    assert weekday == pytest.approx(400, rel=0.05) and weekend == pytest.approx(280, rel=0.07)


def test_a_repeat_question_is_typed_casually_but_keeps_its_words() -> None:
    rng = np.random.default_rng(3)
    asked = "How long does it take for my new card to arrive?"
    typed = [casual(rng, asked) for _ in range(200)]
    assert any(t.islower() for t in typed) and any(not t.endswith("?") for t in typed)
    words = set(asked.lower().rstrip("?").split())
    slipped = [t for t in typed if not set(t.lower().rstrip("?").split()) <= words]
    assert 0 < len(slipped) < len(typed) / 2, "some wordings have a typo, most don't"
    assert all(sorted(t.lower().rstrip("?")) == sorted(asked.lower().rstrip("?")) for t in typed)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("new_questions: [a]\nagnets: 3\n", "simulation.yml:2: agnets: unknown key"),
        ("agents: 0\nnew_questions: [a]\n", "simulation.yml:1: agents: expected a number from 1 to 1000"),
        ("new_questions: []\n", "simulation.yml:1: new_questions: list at least one"),
        ("new_questions:\n  - ok\n  - 3\n", "simulation.yml:3: new_questions[1]: expected a non-empty string"),
    ],
)
def test_a_wrong_simulation_file_names_the_line_and_key(tmp_path: Path, text: str, where: str) -> None:
    project = copy_demo_project(tmp_path)
    (project / "simulation.yml").write_text(text, encoding="utf-8")
    with pytest.raises(ProjectFileError, match=re.escape(where)):
        read_traffic(load_project(project))


def test_the_demo_describes_its_simulated_traffic(demo_project: Path) -> None:
    traffic, agents = read_traffic(load_project(demo_project))
    assert agents >= 2 and traffic.new and 0 < traffic.new_share < 1
    assert {q.topic for q in traffic.repeat} >= {"faq/card_arrival", "faq/lost_or_stolen_card"}


def _played_week(bot: Bot, now: datetime) -> Played:
    return asyncio.run(simulate_weeks(bot.project, bot.engine, bot.agents, bot.database, now, weeks=1))


def test_a_simulated_week_is_what_the_scorecard_reports(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    now = MONDAY + timedelta(days=2, hours=15)
    light = tmp_path_factory.mktemp("light-traffic")
    project = copy_demo_project(light)
    traffic = (demo_project / "simulation.yml").read_text(encoding="utf-8")
    (project / "simulation.yml").write_text(traffic.replace("customers_per_weekday: 150", "customers_per_weekday: 40"))
    bots = [demo_bot_on_fresh_database(project, demo_training, action_server_url, tmp_path_factory) for _ in range(2)]
    played = [_played_week(bot, now) for bot in bots]

    assert played[0].customers > 60 and played[0].tickets > 5 and played[0].ratings > 0
    week = Period(now - timedelta(days=8), now)
    first, second = (scorecard(bot.database, week).current for bot in bots)
    assert first == second, "the same seed plays the same week"
    assert first.outcomes.conversations == played[0].customers
    assert first.handoffs == played[0].tickets
    assert first.resolution.count == played[0].resolved
    assert first.csat.count > 0 and first.bot_csat.count > 0
    assert first.csat.count + first.bot_csat.count == played[0].ratings
    assert 0 < first.outcomes.automated < first.outcomes.conversations
    assert len(first.tickets_per_agent) >= 2, "the work is shared"
    # Stamped at the simulated moments, not when the test ran.
    assert scorecard(bots[0].database, Period(now, now + timedelta(days=3650))).current.outcomes.conversations == 0

    with pytest.raises(Conflict, match="already holds conversations"):
        _played_week(bots[0], now)
    with pytest.raises(Rejected, match="simulate 1 to 8 weeks, not 9"):
        asyncio.run(simulate_weeks(bots[0].project, bots[0].engine, bots[0].agents, bots[0].database, now, weeks=9))
