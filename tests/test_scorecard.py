"""The scorecard on SQLite and PostgreSQL: every figure of a small known week, the period's
boundaries, the channel filter, the breakdowns, and `crowddesk report`'s output and refusals."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from crowddesk.bot.cli.main import main
from crowddesk.bot.conversations import store as store_module
from crowddesk.bot.conversations.store import ConversationStore, NewHandoff
from crowddesk.bot.desk import tickets as tickets_module
from crowddesk.bot.desk.agents import Agent, AgentDirectory
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.project.config import SlaSettings
from crowddesk.bot.reporting.durations import Durations
from crowddesk.bot.reporting.metrics import Outcomes
from crowddesk.bot.reporting.period import Period, period_from
from crowddesk.bot.reporting.scorecard import Csat, UnhelpfulEntry, scorecard
from crowddesk.errors import Rejected
from crowddesk.knowledge_base import usage as usage_module
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.knowledge_base.usage import record_feedback
from tests.demo_bot import copy_demo_project

SINCE = datetime(2026, 11, 23, tzinfo=UTC)  # a Monday
UNTIL = SINCE + timedelta(days=7)
WEEK = Period(SINCE, UNTIL, "rest")


class Clock:
    """The time the conversation store, the desk and the KB feedback stamp their rows with."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = SINCE
        clock = self

        class SetDatetime(datetime):
            @classmethod
            def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
                return clock.now if tz is None else clock.now.astimezone(tz)

        for module in (store_module, tickets_module, usage_module):
            monkeypatch.setattr(module, "datetime", SetDatetime)

    def at(self, moment: datetime) -> None:
        self.now = moment


class Desk:
    """Customers' turns stored as the engine stores them, and agents working their tickets."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.clock = clock
        self.conversations = ConversationStore(engine)
        self.tickets = TicketDesk(engine)
        self.agents = AgentDirectory(engine)
        self.monitor = SlaMonitor(engine, SlaSettings(), clock=lambda: clock.now)

    def turn(self, sender: str, at: datetime, *events: dict[str, Any], channel: str = "rest", **options: Any) -> None:
        self.clock.at(at)
        stamped = [{**event, "timestamp": at.timestamp()} for event in events]
        owner = "queued" if options.get("new_handoff") else "bot"
        self.conversations.record_turn(sender, channel, stamped, {}, 0, owner, None, **options)

    def ask(self, sender: str, at: datetime, text: str, intent: str, *then: dict[str, Any], **options: Any) -> None:
        asked = {"event": "user", "text": text, "parse_data": {"text": text, "intent": {"name": intent}}}
        self.turn(sender, at, asked, *then, **options)

    def press(self, sender: str, at: datetime, answer_id: str, entry_id: str, *, helpful: bool) -> None:
        """A Helpful / Not helpful press, counted in the turn's transaction as the interceptor does."""
        press = {"event": "user", "text": f'/kb_feedback{{"helpful": {str(helpful).lower()}, "answer": "{answer_id}"}}'}
        count = partial(record_feedback, answer_id=answer_id, entry_id=entry_id, sender_id=sender, helpful=helpful)
        self.turn(sender, at, press, also=count)

    def hand_off(self, sender: str, at: datetime, text: str, reason: str, *, channel: str = "rest") -> str:
        ticket = NewHandoff(reason, "normal", {"intent": {"name": "dispute"}}, at + timedelta(minutes=30))
        self.ask(
            sender, at, text, "dispute", *say("utter_handoff"), handoff(reason), channel=channel, new_handoff=ticket
        )
        open_ticket = self.conversations.active_handoff(sender)
        assert open_ticket is not None
        return open_ticket.id

    def work(self, ticket: str, agent: Agent, opened: datetime, reply: int, resolve: int, rating: int) -> None:
        """`agent` replies `reply` minutes after the ticket opened, resolves it at `resolve`, gets `rating`."""
        self.clock.at(opened + timedelta(minutes=reply - 1))
        self.tickets.claim(ticket, agent)
        self.clock.at(opened + timedelta(minutes=reply))
        sent = self.tickets.reply(ticket, agent, "Let me look into it.")
        self.clock.at(opened + timedelta(minutes=resolve))
        self.tickets.resolve(ticket, agent)
        self.tickets.rate(sent.ticket.sender_id, rating)

    def check_sla(self, at: datetime) -> None:
        self.clock.at(at)
        self.monitor.check()


def say(action: str, policy: str = "SupportPolicy", **data: Any) -> list[dict[str, Any]]:
    return [
        {"event": "action", "name": action, "policy": policy, "confidence": 0.9},
        {"event": "bot", "text": action, "data": data, "metadata": {"utter_action": action}},
    ]


def answer(entry_id: str, answer_id: str) -> list[dict[str, Any]]:
    return say("action_answer_from_kb", custom={"kb_entry": entry_id, "answer_id": answer_id})


def handoff(reason: str) -> dict[str, Any]:
    return {"event": "handoff", "reason": reason, "priority": "normal"}


def day(number: int, hour: int, minute: int = 0) -> datetime:
    """Hour `hour` of the period's day `number` (0: its Monday)."""
    return SINCE + timedelta(days=number, hours=hour, minutes=minute)


@pytest.fixture
def week(db_engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Engine:
    """On the web channel: 2 conversations the bot answered alone, 1 clarified then answered, 2
    handed off (replies after 20 and 45 minutes, the second after its SLA); around them, one on
    Telegram, one just before the period and one just after."""
    desk = Desk(db_engine, Clock(monkeypatch))
    knowledge = KnowledgeBaseStore(db_engine)
    knowledge.upsert(KBEntry(id="faq/pin", questions=["How do I reset my PIN?"], answer="In the app."))
    knowledge.upsert(KBEntry(id="faq/fees", questions=["What are the fees?"], answer="None."))
    ana, bo = desk.agents.add("ana", "Ana"), desk.agents.add("bo", "Bo")

    desk.ask("c1", day(1, 9), "reset my pin", "faq", *answer("faq/pin", "a1"))
    desk.press("c1", day(1, 9, 1), "a1", "faq/pin", helpful=True)
    desk.ask("c2", day(1, 10), "hello", "greet", *say("utter_greet", policy="RulePolicy"))
    desk.ask("c3", day(2, 9), "my card", "faq", *say("action_clarify"))
    desk.ask("c3", day(2, 9, 1), "/faq/pin", "faq", *answer("faq/pin", "a3"))
    c4 = desk.hand_off("c4", day(2, 11), "I want to dispute a charge", "out_of_scope")
    desk.work(c4, ana, day(2, 11), reply=20, resolve=50, rating=5)
    desk.ask("c5", day(3, 14), "what does it cost", "faq", *answer("faq/fees", "a5"))
    desk.press("c5", day(3, 14, 1), "a5", "faq/fees", helpful=False)
    c5 = desk.hand_off("c5", day(3, 14, 2), "that did not help", "low_confidence")
    desk.check_sla(day(3, 14, 28))  # 4 minutes before due: a warning
    desk.check_sla(day(3, 14, 33))  # past due, no reply: a breach
    desk.work(c5, bo, day(3, 14, 2), reply=45, resolve=90, rating=3)

    desk.ask("t1", day(4, 9), "reset my pin", "faq", *answer("faq/pin", "t1"), channel="telegram")
    desk.hand_off("t2", day(5, 12), "a person please", "customer_request", channel="telegram")
    desk.hand_off("before", SINCE - timedelta(seconds=1), "anyone there?", "low_confidence")
    desk.ask("after", UNTIL, "reset my pin", "faq", *answer("faq/pin", "a9"))
    return db_engine


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
    assert [values[5:] for _, values in by_day.rows] == [[0.0, 1.0, 0], [0.5, 0.5, 0], [1.0, 0.0, 1]]

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
        ["day", "conversations", "customer_messages", "kb_answers", "clarifications", "handoffs", "handoff_rate",
         "automated_resolution_rate", "sla_breaches"],
        ["2026-11-24", "2", "3", "1", "0", "0", "0.0", "1.0", "0"],
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
