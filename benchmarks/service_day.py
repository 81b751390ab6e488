"""A day of service, simulated: what the bot changes for customers waiting on a small team.

    python -m benchmarks.service_day [--customers 600] [--agents 2 5 10] [--top 4] [--held-out 8]

The bot is the learning-loop benchmark's copy of the demo (`benchmarks/kb_loop.py`): trained
without `--held-out` BANKING77 topics and served as users run it. One weekday of social traffic
(`bot/simulation/traffic.py`: the day's arrival curve, popular topics asked most, a share of
questions about topics nobody taught the bot) meets it over the REST webhook; each customer reads
the replies as `bot/simulation/customer.py` does (taps their topic among clarification buttons,
presses Not helpful on a wrong answer, asks for a person or leaves). Customers the bot did not
answer and who asked for a person wait in the queue of `bot/simulation/team.py` (first come,
first served, a 08-20 UTC shift, three conversations per agent, lognormal reply times).

A customer got a **useful first reply** when the bot answered from the entry for their question
(the moment they asked, after any button they tapped) or when a person first replied to their
ticket. Shares are over all the day's customers, those who left unanswered included, for N
agents, with the bot and with people alone (every customer straight to the queue, same arrivals).
Then agents answer day 1's tickets, the content team reads the gap report of day 1 and approves
its top `--top` topics without an entry (as kb_loop does), and day 2 (new seed, same distribution)
is played against the bot; the same day 2, played by the bot before approval, is the comparison.

Questions are BANKING77's test split (Casanueva et al. 2020, CC BY 4.0, read from `--data`): repeat
questions from the topics the bot covers, new ones from the held-out topics, split in halves so
that day 2 never asks a question day 1 taught the bot word for word.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pygal
from pygal.style import Style

from benchmarks import RESULTS_DIR, write_results
from benchmarks.datasets import default_data_dir, load_banking77
from benchmarks.kb_loop import (
    FALLBACK_RESPONSE,
    FAQ_PREFIX,
    SEED,
    Bench,
    Loop,
    Topics,
    approve_top_topics,
    desk_tokens,
    split_topics,
    trained_copy,
)
from benchmarks.latency import HANDOFF_RESPONSES, machine_info
from benchmarks.serving import served_project
from crowddesk.bot.conversations.outbox import payload_message
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.simulation.customer import Customer, served_entry
from crowddesk.bot.simulation.operation import MAX_MESSAGES
from crowddesk.bot.simulation.team import Staffing, Team
from crowddesk.bot.simulation.traffic import Question, QuestionMix, arrivals
from tests.demo_bot import REPO

DAY_ONE = datetime(2026, 12, 7, tzinfo=UTC)  # a Monday: both days follow a weekday's curve
WITHIN = (timedelta(minutes=30), timedelta(minutes=60))
AUTOMATED = ("answer_from_kb", "response")  # the bot's first reply settled it, rightly or not
GAPS_SHOWN = 8  # topics of the gap report printed, largest first
# The bot's table: heading -> share in bot_summary.
BOT_SHARES = {
    "automated": "automated_share",
    "answered usefully": "answered_by_the_bot_share",
    "handed off": "handed_off_share",
    "left unanswered": "left_unanswered_share",
}
# Light for within 30 minutes, dark for within 60: people alone grey, the bot orange, then green.
STYLE = Style(
    background="#ffffff",
    plot_background="#ffffff",
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif",
    colors=("#b8bec9", "#6b7280", "#f2b36b", "#d9822b", "#7cc48f", "#1e7a3c"),
)
# The table's columns: (day, play); day 2 is played by the bot as trained and after approval.
COLUMNS = (
    ("day_1", "people alone"),
    ("day_1", "with the bot"),
    ("day_2", "people alone"),
    ("day_2", "with the bot"),
    ("day_2", "after approval"),
)


@dataclass(frozen=True)
class Visit:
    """When a customer came, when a reply of the bot answered their question (None: none did) and
    when they were handed to a person (None: they were not)."""

    arrived_at: datetime
    answered_at: datetime | None = None
    handed_off_at: datetime | None = None


@dataclass(frozen=True)
class Served:
    """One customer's conversation with the bot: their visit, their BANKING77 topic, the text they
    asked, the bot's first move, whether that was an answer from the right entry, their ticket."""

    visit: Visit
    topic: str
    text: str
    first_outcome: str
    first_right: bool
    ticket_id: str | None


def first_useful_replies(visits: Sequence[Visit], team: Team) -> list[datetime | None]:
    """When each customer first got a useful reply: the bot's answer, else the first reply of the
    agent who took their ticket (tickets taken in the order they were opened); None: never."""
    waiting = sorted(
        (visit.handed_off_at, i)
        for i, visit in enumerate(visits)
        if visit.answered_at is None and visit.handed_off_at is not None
    )
    replied = {i: team.take(opened_at).replied_at for opened_at, i in waiting}
    return [visit.answered_at or replied.get(i) for i, visit in enumerate(visits)]


def shares_within(visits: Sequence[Visit], replies: Sequence[datetime | None]) -> list[float]:
    """The share of `visits` whose first useful reply came within each of WITHIN of arriving."""
    waits = [reply - visit.arrived_at for visit, reply in zip(visits, replies, strict=True) if reply is not None]
    return [sum(wait <= limit for wait in waits) / len(visits) for limit in WITHIN]


def straight_to_people(visits: Sequence[Visit]) -> list[Visit]:
    """The same customers without a bot: each hands their question to the queue on arriving."""
    return [Visit(visit.arrived_at, handed_off_at=visit.arrived_at) for visit in visits]


def serve(bench: Bench, customer: Customer, question: Question, topic: str, arrived_at: datetime) -> Served:
    """One customer's conversation over the webhook: they send what they make of each reply after
    reading it, until they leave, get a ticket or have sent MAX_MESSAGES; the bot's replies take
    no simulated time. `question.topic` is the entry that answers it."""
    sender = bench.new_sender()
    text, elapsed = question.text, timedelta()
    answered_at: datetime | None = None
    first: tuple[str, bool] | None = None
    for _ in range(MAX_MESSAGES):
        raw = bench.say(sender, text)
        replies = [payload_message(reply) for reply in raw]
        right = served_entry(replies) == question.topic
        if first is None:
            first = (bench.outcome(raw), right)
        if right and answered_at is None:
            answered_at = arrived_at + elapsed
        ticket = bench.ticket(sender)
        if ticket is not None:
            visit = Visit(arrived_at, answered_at, arrived_at + elapsed)
            return Served(visit, topic, question.text, *first, ticket["id"])
        then = customer.next_message(question, replies)
        if then is None:
            break
        elapsed += then.after
        if then.last:
            bench.say(sender, then.text)
            break
        text = then.text
    assert first is not None, "MAX_MESSAGES is at least one"
    return Served(Visit(arrived_at, answered_at), topic, question.text, *first, None)


@dataclass(frozen=True)
class DayPlan:
    """What one simulated day asks: the traffic's volume and mix, and its seed."""

    customers: float
    repeat: list[Question]
    new: list[Question]
    new_share: float
    seed: int


def play_day(bench: Bench, plan: DayPlan, handoff_intents: Sequence[str], label_of: dict[str, str]) -> list[Served]:
    """Every customer of the day, in arrival order; `label_of` maps an entry to its topic. The
    customers' choices draw on a generator of their own, so that a plan played twice asks the
    same questions at the same moments whatever the bot replies."""
    traffic = np.random.default_rng(plan.seed)
    day = DAY_ONE + timedelta(days=plan.seed - SEED)
    moments = arrivals(traffic, day, 1, plan.customers)
    mix = QuestionMix(traffic, plan.repeat, plan.new, plan.new_share)
    asked = [mix.draw() for _ in moments]
    customer = Customer(np.random.default_rng((plan.seed, 1)), handoff_intents)
    served = []
    for moment, question in zip(moments, asked, strict=True):
        served.append(serve(bench, customer, question, label_of[str(question.topic)], moment))
        if len(served) % 100 == 0:
            print(f"  {len(served)} of {len(moments)} customers served", flush=True)
    return served


def day_plan(topics: Topics, entry_for: dict[str, str], day: int, args: argparse.Namespace) -> DayPlan:
    """Day `day` (0 or 1): repeat questions of covered topics, new ones from that day's half of
    each held-out topic's test questions; each question names the entry that answers it."""
    repeat = [Question(text, entry_for[topic]) for topic in topics.covered for text in topics.test[topic]]
    new = [Question(text, entry_for[topic]) for topic in topics.held_out for text in day_half(topics.test[topic], day)]
    return DayPlan(args.customers, repeat, new, args.new_share, SEED + day)


def day_half(questions: list[str], day: int) -> list[str]:
    """Day 0's or day 1's half of a topic's questions; the halves never share a question."""
    half = len(questions) // 2
    return questions[:half] if day == 0 else questions[half:]


def bot_summary(served: Sequence[Served]) -> dict[str, Any]:
    """What the bot did with a day's customers, N-independent."""
    automated = [s for s in served if s.first_outcome in AUTOMATED]
    return {
        "customers": len(served),
        "first_outcomes": dict(Counter(s.first_outcome for s in served).most_common()),
        "automated_share": round(len(automated) / len(served), 4),
        "precision": round(sum(s.first_right for s in automated) / len(automated), 4) if automated else None,
        "answered_by_the_bot_share": round(sum(s.visit.answered_at is not None for s in served) / len(served), 4),
        "handed_off_share": round(sum(s.ticket_id is not None for s in served) / len(served), 4),
        "left_unanswered_share": round(
            sum(s.visit.answered_at is None and s.ticket_id is None for s in served) / len(served), 4
        ),
    }


def team_shares(visits: Sequence[Visit], agents: int, seed: int) -> dict[str, Any]:
    """Within-30 / within-60 shares of `visits` when a team of `agents` works their tickets."""
    team = Team(np.random.default_rng((seed, agents)), Staffing(agents))
    within_30, within_60 = shares_within(visits, first_useful_replies(visits, team))
    tickets = sum(v.answered_at is None and v.handed_off_at is not None for v in visits)
    return {"within_30_min": round(within_30, 4), "within_60_min": round(within_60, 4), "tickets": tickets}


def approve_day_one(
    bench: Bench, topics: Topics, served: Sequence[Served], since: float, top: int, entry_for: dict[str, str]
) -> Loop:
    """Agents answer every ticket of day 1 (the demo's own answer for the topic), which files the
    suggestions; the content team then approves the top topics without an entry by gap volume.
    `entry_for` learns the approved entries."""
    demo = load_project(REPO).domain
    loop = Loop()
    for s in served:
        if s.ticket_id is None:
            continue
        bench.agent_answers(s.ticket_id, demo.responses[f"utter_{FAQ_PREFIX}{s.topic}"][0].text)
        if s.topic in topics.held_out:
            loop.topic_of_ticket[s.ticket_id] = s.topic
    asked = {s.text: s.topic for s in served}
    unasked = {topic: day_half(topics.test[topic], 1) for topic in topics.held_out}
    approve_top_topics(bench, asked, unasked, loop, since, top, entry_for)
    return loop


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Train and serve the bot copy, play day 2 as trained, day 1, the loop, day 2 again: the results."""
    machine = machine_info()
    topics = split_topics(load_banking77(args.data), args.held_out, random.Random(SEED))
    demo = load_project(REPO).domain
    handoff_texts = frozenset(r.text for name in HANDOFF_RESPONSES for r in demo.responses.get(name, []))
    fallback_texts = frozenset(r.text for r in demo.responses.get(FALLBACK_RESPONSE, []))
    project = args.project or trained_copy(topics.held_out, workdir)
    handoff_intents = load_project(project).config.policy.handoff_intents
    entry_for = {topic: f"{FAQ_PREFIX}{topic}" for topic in (*topics.covered, *topics.held_out)}
    load_before = os.getloadavg()[0]
    with served_project(project, workdir) as bot:
        bench = Bench(bot, handoff_texts, fallback_texts, desk_tokens(bot.database_url))
        # Day 2 as the bot would have served it without the loop is played first, so that it
        # stays out of day 1's gap report: the bot's replies do not depend on other customers.
        print(f"day 2 without the loop: about {args.customers:g} customers ...", flush=True)
        day_two_before = play_day(bench, day_plan(topics, entry_for, 1, args), handoff_intents, _labels(entry_for))
        started = time.time()
        print(f"day 1: about {args.customers:g} customers ...", flush=True)
        day_one = play_day(bench, day_plan(topics, entry_for, 0, args), handoff_intents, _labels(entry_for))
        print("the team answers day 1's tickets; the content team approves the gap report's top topics ...")
        loop = approve_day_one(bench, topics, day_one, started, args.top, entry_for)
        print("day 2 after approval ...", flush=True)
        day_two = play_day(bench, day_plan(topics, entry_for, 1, args), handoff_intents, _labels(entry_for))
        bench.http.close()
    days = {"day_1": {"with the bot": day_one}, "day_2": {"with the bot": day_two_before, "after approval": day_two}}
    return {
        "benchmark": "service_day",
        "machine": {**machine, "load_average_1m_before_serving": round(load_before, 2)},
        "settings": {
            "customers_per_weekday": args.customers,
            "new_question_share": args.new_share,
            "held_out_topics": topics.held_out,
            "top": args.top,
            "seeds": {"day_1": SEED, "day_2": SEED + 1},
            "staffing": {k: v for k, v in asdict(Staffing(1)).items() if k != "agents"},
            "data": "BANKING77 test.csv: covered topics repeat, held-out topics new (a half per day)",
            "server": "crowddesk run (uvicorn, SQLite file) + crowddesk run actions, subprocesses",
        },
        "bot": {day: {name: bot_summary(served) for name, served in plays.items()} for day, plays in days.items()},
        "gap_volumes": dict(loop.volumes.most_common()),
        "approvals": [asdict(a) for a in loop.approvals],
        "by_team_size": {
            str(agents): {day: scenarios(plays, agents) for day, plays in days.items()} for agents in args.agents
        },
        "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "load_average_1m_at_end": round(os.getloadavg()[0], 2),
    }


def scenarios(plays: dict[str, list[Served]], agents: int) -> dict[str, dict[str, Any]]:
    """A day's shares with people alone (every customer straight to the queue) and for each play."""
    visits = {name: [s.visit for s in served] for name, served in plays.items()}
    everyone = straight_to_people(next(iter(visits.values())))
    return {name: team_shares(v, agents, SEED) for name, v in {"people alone": everyone, **visits}.items()}


def _labels(entry_for: dict[str, str]) -> dict[str, str]:
    return {entry: topic for topic, entry in entry_for.items()}


def print_tables(results: dict[str, Any]) -> None:
    """The shares per team size and scenario, then what the bot did each day."""
    headers = ["agents", *(f"{day.replace('_', ' ')}: {name}" for day, name in COLUMNS)]
    rows = [
        [agents, *(within(shares[day][name]) for day, name in COLUMNS)]
        for agents, shares in results["by_team_size"].items()
    ]
    print("\nCustomers with a useful first reply within 30 / 60 minutes")
    print(format_table(headers, rows))
    bot_rows = [
        [
            f"{day.replace('_', ' ')}: {name}",
            str(b["customers"]),
            *(percent(b[key]) for key in BOT_SHARES.values()),
            "-" if b["precision"] is None else percent(b["precision"]),
        ]
        for day, plays in results["bot"].items()
        for name, b in plays.items()
    ]
    print()
    print(format_table(["bot", "customers", *BOT_SHARES, "precision"], bot_rows))
    largest = ", ".join(f"{topic} {n}" for topic, n in list(results["gap_volumes"].items())[:GAPS_SHOWN])
    print(f"\napproved: {', '.join(a['topic'] for a in results['approvals'])}; largest in the gap report: {largest}")


def within(shares: dict[str, Any]) -> str:
    """The shares within 30 and within 60 minutes as one table cell, "a % / b %"."""
    return f"{percent(shares['within_30_min'])} / {percent(shares['within_60_min'])}"


def percent(share: float) -> str:
    """A share (0-1) as a table cell, to a tenth of a point."""
    return f"{100 * share:.1f} %"


def draw_chart(results: dict[str, Any], path: Path) -> Path:
    """Grouped bars on day 2's traffic: per team size, the share of customers with a useful first
    reply within 30 and within 60 minutes, with people alone, the bot, the bot after approval."""
    customers = results["bot"]["day_2"]["with the bot"]["customers"]
    chart = pygal.Bar(
        width=860,
        height=420,
        title=f"A useful first reply on simulated day 2 ({customers} customers in every bar)",
        y_title="% of customers",
        range=(0, 100),
        legend_at_bottom=True,
        legend_at_bottom_columns=2,
        value_formatter=lambda share: f"{share:.0f} %",
        style=STYLE,
        js=(),  # a README image runs no scripts; pygal's default fetches its tooltips from a CDN
    )
    sizes = list(results["by_team_size"])
    chart.x_labels = [f"{agents} agents" for agents in sizes]
    for day, name in COLUMNS:
        if day != "day_2":
            continue
        for key, limit in (("within_30_min", "30"), ("within_60_min", "60")):
            values = [100 * results["by_team_size"][agents][day][name][key] for agents in sizes]
            chart.add(f"{name}, within {limit} min", values)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(chart.render())
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """Train, serve and play the days; print the tables, write the JSON results and the chart."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir("banking77"),
        help="BANKING77 folder (train.csv, test.csv); default ../shared/datasets/banking77",
    )
    parser.add_argument(
        "--customers", type=float, default=600, help="customers on the simulated weekday, on average (default 600)"
    )
    parser.add_argument(
        "--new-share", type=float, default=0.25, help="share of questions about held-out topics (default 0.25)"
    )
    parser.add_argument("--agents", type=int, nargs="+", default=[2, 5, 10], help="team sizes (default 2 5 10)")
    parser.add_argument("--held-out", type=int, default=8, help="topics the bot copy never saw (default 8)")
    parser.add_argument("--top", type=int, default=4, help="gap-report topics approved after day 1 (default 4)")
    parser.add_argument(
        "--project", type=Path, help="an already trained copy with the same held-out topics (skips training)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "service_day.json", help="JSON results file")
    parser.add_argument("--chart", type=Path, default=RESULTS_DIR / "service_day.svg", help="SVG chart file")
    args = parser.parse_args(argv)
    if not 1 <= args.top <= args.held_out:
        parser.error(f"--top must be between 1 and --held-out ({args.held_out}), got {args.top}")
    if not 0 <= args.new_share <= 1 or args.customers <= 0 or min(args.agents) < 1:
        parser.error("--new-share must be within 0-1, --customers and --agents positive")

    with tempfile.TemporaryDirectory(prefix="crowddesk-service-day-") as workdir:
        results = run(args, Path(workdir))
    print_tables(results)
    print(f"wrote {write_results('service_day', results, args.out)} and {draw_chart(results, args.chart)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
