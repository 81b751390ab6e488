"""The service-day benchmark's arithmetic: who got a useful first reply when, with the bot and
with people alone, on a team whose times are fixed so that every wait can be worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np

from benchmarks.service_day import (
    Visit,
    day_half,
    first_useful_replies,
    shares_within,
    straight_to_people,
)
from crowddesk.bot.conversations.outbox import payload_message
from crowddesk.bot.simulation.customer import served_entry
from crowddesk.bot.simulation.team import Staffing, Team

NINE = datetime(2026, 12, 7, 9, tzinfo=UTC)


def minutes(n: float) -> timedelta:
    return timedelta(minutes=n)


def one_agent() -> Team:
    """One agent, one conversation at a time: the first reply 20 minutes after taking a ticket,
    resolved 10 minutes later (no spread, so no chance)."""
    staffing = Staffing(agents=1, concurrent=1, reply_minutes=20, resolve_minutes=10, spread=0.0)
    return Team(np.random.default_rng(0), staffing)


def test_people_alone_queue_behind_each_other() -> None:
    customers = [Visit(NINE), Visit(NINE + minutes(5)), Visit(NINE + minutes(10))]

    replies = first_useful_replies(straight_to_people(customers), one_agent())

    # Taken at 9:00, 9:30, 10:00 (each after the previous is resolved); first replies 20 min later.
    assert replies == [NINE + minutes(20), NINE + minutes(50), NINE + minutes(80)]
    assert shares_within(customers, replies) == [1 / 3, 2 / 3]


def test_the_bot_answers_at_once_and_shortens_the_queue_for_the_others() -> None:
    with_bot = [
        Visit(NINE, handed_off_at=NINE + minutes(1)),
        Visit(NINE + minutes(5), answered_at=NINE + minutes(5.5)),
        Visit(NINE + minutes(10), handed_off_at=NINE + minutes(11)),
    ]

    replies = first_useful_replies(with_bot, one_agent())

    # The third ticket is taken at 9:31, when the first is resolved, not behind the second.
    assert replies == [NINE + minutes(21), NINE + minutes(5.5), NINE + minutes(51)]
    assert shares_within(with_bot, replies) == [2 / 3, 1.0]


def test_a_customer_who_leaves_unanswered_counts_against_the_share() -> None:
    left = [Visit(NINE), Visit(NINE + minutes(1), answered_at=NINE + minutes(1))]

    replies = first_useful_replies(left, one_agent())

    assert replies == [None, NINE + minutes(1)]
    assert shares_within(left, replies) == [0.5, 0.5]


def test_tickets_opened_after_the_shift_wait_for_the_morning() -> None:
    late = [Visit(NINE + timedelta(hours=12), handed_off_at=NINE + timedelta(hours=12))]  # 21:00, shift ends 20:00

    replies = first_useful_replies(late, one_agent())

    assert replies == [datetime(2026, 12, 8, 8, 20, tzinfo=UTC)]
    assert shares_within(late, replies) == [0.0, 0.0]


def test_day_two_never_asks_what_day_one_asked() -> None:
    questions = [f"question {i}" for i in range(41)]

    first, second = day_half(questions, 0), day_half(questions, 1)

    assert not set(first) & set(second)
    assert sorted(first + second) == sorted(questions)


def test_a_webhook_reply_reads_as_the_engine_wrote_it() -> None:
    reply = {
        "recipient_id": "c-1",
        "text": "Your card arrives in 3-5 days.",
        "buttons": [{"title": "Helpful", "payload": "/kb_feedback"}],
        "custom": {"kb_entry": "faq/card_arrival"},
    }

    message = payload_message(reply)

    assert message.as_rasa() == reply
    assert served_entry([message]) == "faq/card_arrival"
