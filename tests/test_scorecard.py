"""The scorecard on SQLite and PostgreSQL: every figure of a small known week, the period's
boundaries, the channel filter, the breakdowns, and `crowddesk report`'s output and refusals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from crowddesk.bot.cli.main import main
from crowddesk.bot.reporting.durations import Durations, WaitHistogram
from crowddesk.bot.reporting.metrics import Outcomes
from crowddesk.bot.reporting.period import Period, period_from
from crowddesk.bot.reporting.scorecard import Csat, UnhelpfulEntry, scorecard
from crowddesk.errors import Rejected
from tests.demo_bot import copy_demo_project
from tests.known_week import SINCE, UNTIL, WEEK, day


def test_every_figure_of_a_known_week(week: Engine) -> None:
    figures = scorecard(week, WEEK).current

    assert (figures.outcomes.conversations, figures.customer_messages) == (5, 9)
    assert (figures.kb_answers, figures.clarifications, figures.handoffs) == (3, 1, 2)
    assert figures.outcomes == Outcomes(conversations=5, handed_off=2, automated=3)
    assert (figures.outcomes.handoff_rate, figures.outcomes.automated_resolution_rate) == (0.4, 0.6)
    assert figures.handoffs_by_reason == {"low_confidence": 1, "out_of_scope": 1}
    assert (figures.kb_helpful, figures.kb_not_helpful) == (1, 1)
    assert figures.first_reply == Durations(2, 32.5, 42.5, within_30_min=0.5, within_60_min=1.0)
    assert figures.still_waiting == 0
    # Replies after 20 and 45 minutes: one in 15-30, one in 30-45 (edges are included), none waiting.
    assert figures.first_reply_histogram == WaitHistogram((0, 1, 1, 0, 0, 0, 0), still_waiting=0)
    assert figures.resolution == Durations(2, 70.0, 86.0, within_30_min=0.0, within_60_min=0.5)
    assert (figures.sla_warnings, figures.sla_breaches) == (1, 1)
    assert figures.tickets_per_agent == {"ana": 1, "bo": 1}
    assert figures.csat == Csat({1: 0, 2: 0, 3: 1, 4: 0, 5: 1}) and figures.csat.mean == 4.0
    assert figures.most_unhelpful == [UnhelpfulEntry("faq/fees", "What are the fees?", 1)]


def test_the_previous_period_is_the_same_length_just_before(week: Engine) -> None:
    card = scorecard(week, WEEK)

    assert card.period.previous() == Period(SINCE - timedelta(days=7), SINCE, "rest")
    previous = card.previous
    assert (previous.outcomes.conversations, previous.handoffs, previous.still_waiting) == (1, 1, 1)
    assert (previous.outcomes.handoff_rate, previous.outcomes.automated_resolution_rate) == (1.0, 0.0)
    assert previous.first_reply == Durations(0, None, None, None, None)
    assert previous.first_reply_histogram == WaitHistogram((0,) * 7, still_waiting=1)
    headline = {h.name: h for h in card.headline()}
    assert (headline["conversations"].current, headline["conversations"].previous) == (5, 1)
    assert headline["conversations"].change == 4
    assert headline["automated_resolution_rate"].change == 0.6
    assert headline["first_reply_p50_minutes"].change is None


def test_the_period_includes_its_start_and_excludes_its_end(week: Engine) -> None:
    from_the_last_second = Period(SINCE - timedelta(seconds=1), SINCE, "rest")
    from_the_end = Period(UNTIL, UNTIL + timedelta(days=1), "rest")

    assert scorecard(week, from_the_last_second).current.outcomes.conversations == 1
    assert scorecard(week, from_the_end).current.outcomes.conversations == 1
    # Outcomes after the end do not count: at the end of its first minute c4 had no reply yet.
    first_minutes = Period(SINCE, day(2, 11, 1), "rest")
    figures = scorecard(week, first_minutes).current
    assert (figures.outcomes.handed_off, figures.still_waiting, figures.first_reply.count) == (1, 1, 0)


def test_all_channels_or_one(week: Engine) -> None:
    everywhere = scorecard(week, Period(SINCE, UNTIL)).current
    telegram = scorecard(week, Period(SINCE, UNTIL, "telegram")).current

    assert (everywhere.outcomes.conversations, telegram.outcomes.conversations) == (7, 2)
    assert (everywhere.kb_answers, telegram.kb_answers) == (4, 1)
    assert (telegram.handoffs, telegram.still_waiting, telegram.outcomes.automated) == (1, 1, 1)
    assert telegram.handoffs_by_reason == {"customer_request": 1}
    assert telegram.kb_not_helpful == 0 and telegram.most_unhelpful == []


def test_breakdowns_by_day_week_channel_intent_and_agent(week: Engine) -> None:
    by_day = scorecard(week, WEEK, "day").breakdown
    assert by_day is not None
    assert by_day.columns[:5] == ("conversations", "customer_messages", "kb_answers", "clarifications", "handoffs")
    assert [(key, values[:5]) for key, values in by_day.rows] == [
        ("2026-11-24", [2, 3, 1, 0, 0]),
        ("2026-11-25", [2, 3, 1, 1, 1]),
        ("2026-11-26", [1, 3, 1, 0, 1]),
    ]
    # handed off, automated (conversations), their rates, SLA breaches
    assert [values[5:] for _, values in by_day.rows] == [[0, 2, 0.0, 1.0, 0], [1, 1, 0.5, 0.5, 0], [1, 0, 1.0, 0.0, 1]]

    by_week = scorecard(week, Period(SINCE - timedelta(days=7), UNTIL + timedelta(days=7), "rest"), "week").breakdown
    assert by_week is not None
    assert [(key, values[0]) for key, values in by_week.rows] == [
        ("2026-11-16", 1),
        ("2026-11-23", 5),
        ("2026-11-30", 1),
    ]

    by_channel = scorecard(week, Period(SINCE, UNTIL), "channel").breakdown
    assert by_channel is not None
    assert [(key, values[0]) for key, values in by_channel.rows] == [("rest", 5), ("telegram", 2)]

    by_intent = scorecard(week, WEEK, "intent").breakdown
    assert by_intent is not None and by_intent.columns == ("customer_messages", "handoffs")
    assert by_intent.rows == [("faq", [4, 0]), ("(none)", [2, 0]), ("dispute", [2, 2]), ("greet", [1, 0])]

    by_agent = scorecard(week, WEEK, "agent").breakdown
    assert by_agent is not None
    assert by_agent.as_dict()["rows"] == [
        {
            "agent": "ana",
            "tickets": 1,
            "replied": 1,
            "first_reply_p50_minutes": 20.0,
            "first_reply_p90_minutes": 20.0,
            "first_reply_within_30_min": 1.0,
            "resolved": 1,
            "sla_breaches": 0,
            "csat_mean": 5.0,
        },
        {
            "agent": "bo",
            "tickets": 1,
            "replied": 1,
            "first_reply_p50_minutes": 45.0,
            "first_reply_p90_minutes": 45.0,
            "first_reply_within_30_min": 0.0,
            "resolved": 1,
            "sla_breaches": 1,
            "csat_mean": 3.0,
        },
    ]


def test_the_queue_is_read_on_every_hour_and_at_the_end(week: Engine) -> None:
    # On the web channel, "before" has waited since just before the week; c4 and c5 were
    # answered within the hour they arrived, so on the hour the queue held that one ticket.
    web = scorecard(week, WEEK).current.queue
    assert len(web.moments) == 7 * 24 and (web.moments[0], web.moments[-1]) == (day(0, 1), UNTIL)
    assert set(web.waiting) == {1} and (web.peak, web.peak_at) == (1, day(0, 1))
    # A period ending while c4 waited (opened at 11:00, answered at 11:20) ends on its queue.
    mid_wait = scorecard(week, Period(SINCE, day(2, 11, 10), "rest")).current.queue
    assert (mid_wait.moments[-1], mid_wait.waiting[-1], mid_wait.peak_at) == (day(2, 11, 10), 2, day(2, 11, 10))
    # On all channels, Telegram's t2 joined at noon on Saturday and was never answered.
    everywhere = scorecard(week, Period(SINCE, UNTIL)).current.queue
    level = dict(zip(everywhere.moments, everywhere.waiting))
    assert (level[day(5, 12)], level[day(5, 13)], level[UNTIL]) == (1, 2, 2)
    assert (everywhere.peak, everywhere.peak_at) == (2, day(5, 13))
    assert scorecard(week, Period(SINCE, UNTIL)).as_dict()["current"]["people"]["queue"]["peak"] == 2


def test_the_wait_histogram_splits_exactly_at_the_targets() -> None:
    waits = [0, 15, 15.01, 30, 30.01, 60, 61, 120, 240, 240.01, 2000]

    histogram = WaitHistogram.of(waits, still_waiting=3)

    assert histogram == WaitHistogram((2, 2, 1, 1, 2, 1, 2), still_waiting=3)
    within_30, within_60 = sum(histogram.counts[:2]) / len(waits), sum(histogram.counts[:4]) / len(waits)
    durations = Durations.of(waits)
    assert (durations.within_30_min, durations.within_60_min) == (round(within_30, 4), round(within_60, 4))


def test_an_empty_period_has_zeros_and_no_rates(db_engine: Engine) -> None:
    figures = scorecard(db_engine, WEEK).current

    assert figures.outcomes == Outcomes(0, 0, 0) and (figures.handoffs, figures.kb_helpful) == (0, 0)
    assert figures.outcomes.handoff_rate is None and figures.outcomes.automated_resolution_rate is None
    assert figures.csat.mean is None and figures.most_unhelpful == []


def test_a_period_must_end_after_it_starts() -> None:
    with pytest.raises(Rejected, match="ends"):
        Period(UNTIL, SINCE)
    assert period_from(None, "2026-11-30", None, datetime.now(UTC)) == Period(SINCE, UNTIL)
    assert period_from("2026-11-23T00:00:00+01:00", None, "rest", UNTIL).since == SINCE - timedelta(hours=1)
    with pytest.raises(Rejected, match="ISO date"):
        period_from("last monday", None, None, UNTIL)


@pytest.fixture
def report(week: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Any]:
    """Runs `crowddesk report` on the week's database: (exit code, stdout, stderr)."""
    (tmp_path / "project").mkdir()
    project = copy_demo_project(tmp_path / "project")
    url = week.url.render_as_string(hide_password=False)

    def run(*options: str) -> tuple[int, str, str]:
        code = main(["report", "--project", str(project), "--database-url", url, *options])
        out, err = capsys.readouterr()
        return code, out, err

    yield run


def test_report_shows_the_headline_against_the_previous_week(report: Any) -> None:
    code, out, _ = report("--since", "2026-11-23", "--until", "2026-11-30", "--channel", "rest")

    assert code == 0
    lines = out.splitlines()
    assert lines[0] == (
        "Scorecard 2026-11-23 00:00 to 2026-11-30 00:00 UTC, channel rest; "
        "previous period 2026-11-16 00:00 to 2026-11-23 00:00"
    )
    rows = {line.split("  ")[0]: line.split() for line in lines[3 : lines.index("")]}
    assert rows["Conversations (new customers)"][-3:] == ["5", "1", "+4"]
    assert rows["Resolved by the bot alone"][-4:] == ["60.0%", "0.0%", "+60.0", "pts"]
    assert rows["First reply within 30 min"][-3:] == ["50.0%", "-", "-"]
    assert rows["CSAT (1-5), human-handled"][-3:] == ["4.00", "-", "-"]
    assert "Most often marked Not helpful" in lines
    assert any(line.split() == ["faq/fees", "What", "are", "the", "fees?", "1"] for line in lines)


def test_report_as_json_and_csv(report: Any) -> None:
    period = ["--since", "2026-11-23", "--until", "2026-11-30", "--channel", "rest"]

    code, out, _ = report(*period, "--json")
    assert code == 0
    document = json.loads(out)
    assert document["period"] == {"since": SINCE.isoformat(), "until": UNTIL.isoformat(), "channel": "rest"}
    assert document["current"]["people"]["first_reply"] == {
        "count": 2,
        "p50_minutes": 32.5,
        "p90_minutes": 42.5,
        "within_30_min": 0.5,
        "within_60_min": 1.0,
    }
    assert document["current"]["bot"]["conversations"]["automated_resolution_rate"] == 0.6
    assert document["breakdown"] is None

    code, out, _ = report(*period, "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {row["metric"]: (row["current"], row["previous"], row["change"]) for row in rows}["handoff_rate"] == (
        "0.4",
        "1.0",
        "-0.6",
    )

    code, out, _ = report(*period, "--csv", "--by", "day")
    assert code == 0
    assert list(csv.reader(io.StringIO(out)))[:2] == [
        ["day", "conversations", "customer_messages", "kb_answers", "clarifications", "handoffs", "handed_off",
         "automated", "handoff_rate", "automated_resolution_rate", "sla_breaches"],
        ["2026-11-24", "2", "3", "1", "0", "0", "0", "2", "0.0", "1.0", "0"],
    ]  # fmt: skip


def test_report_breaks_down_in_a_table(report: Any) -> None:
    code, out, _ = report("--since", "2026-11-23", "--until", "2026-11-30", "--by", "agent")

    assert code == 0
    assert "By agent" in out.splitlines()
    assert any(line.split()[:4] == ["bo", "1", "1", "45.0"] and "0.0%" in line for line in out.splitlines())


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--since", "2026-11-30", "--until", "2026-11-23"], "ends (2026-11-23T00:00:00+00:00) before it starts"),
        (["--since", "yesterday"], "--since 'yesterday' is not an ISO date"),
        (["--by", "month"], "cannot break the scorecard down by 'month'; one of: day, week, channel, intent, agent"),
    ],
)
def test_report_refuses_bad_input(report: Any, options: list[str], message: str) -> None:
    code, out, err = report(*options)

    assert (code, out) == (1, "")
    assert err.startswith("error: ") and message in err


def test_report_defaults_to_the_last_seven_days(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "project").mkdir()
    project = copy_demo_project(tmp_path / "project")
    url = f"sqlite:///{tmp_path / 'empty.db'}"

    assert main(["report", "--project", str(project), "--database-url", url, "--json"]) == 0
    period = json.loads(capsys.readouterr().out)["period"]
    length = datetime.fromisoformat(period["until"]) - datetime.fromisoformat(period["since"])
    assert length == timedelta(days=7) and period["channel"] is None
