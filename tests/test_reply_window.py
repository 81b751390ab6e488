"""The reply window platforms enforce after a customer's last message, and the outbox keeping
what it needs across a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest

from crowddesk.bot.conversations.outbox import bot_event_message, message_payload, payload_message
from crowddesk.connectors.reply_window import HUMAN_AGENT_WINDOW, ReplyWindow, WindowState
from crowddesk.connectors.types import OutboundMessage

NOW = 1_800_000_000.0
HOUR = 3600.0


def written(hours_ago: float | None, *, by_agent: bool = False) -> OutboundMessage:
    wrote_at = None if hours_ago is None else NOW - hours_ago * HOUR
    return OutboundMessage("customer", "hello", customer_wrote_at=wrote_at, sent_by_agent=by_agent)


@pytest.mark.parametrize(
    ("hours_ago", "by_agent", "state"),
    [
        (None, False, WindowState.OPEN),  # answers the message just received
        (23.9, False, WindowState.OPEN),
        (24.1, False, WindowState.CLOSED),
        (24.1, True, WindowState.CLOSED),  # no human-agent allowance on this platform
    ],
)
def test_the_customer_service_window_lasts_24_hours(hours_ago: float | None, by_agent: bool, state: str) -> None:
    assert ReplyWindow().state(written(hours_ago, by_agent=by_agent), NOW) == state


@pytest.mark.parametrize(
    ("hours_ago", "by_agent", "state"),
    [
        (30, True, WindowState.HUMAN_AGENT),
        (30, False, WindowState.CLOSED),  # the bot gets no tag
        (24 * 7 - 1, True, WindowState.HUMAN_AGENT),
        (24 * 7 + 1, True, WindowState.CLOSED),
    ],
)
def test_a_person_may_answer_for_seven_days_where_the_platform_allows(
    hours_ago: float, by_agent: bool, state: str
) -> None:
    window = ReplyWindow(agent_open_for=HUMAN_AGENT_WINDOW)
    assert window.state(written(hours_ago, by_agent=by_agent), NOW) == state


def test_the_closed_reason_says_how_long_ago_and_what_reopens_it() -> None:
    reason = ReplyWindow(agent_open_for=timedelta(days=7)).closed_reason("Messenger", written(200, by_agent=True), NOW)
    assert "within 7 days" in reason and "200 hours ago" in reason and "send it again once they write" in reason


def test_an_agent_message_keeps_its_window_facts_through_the_outbox_payload() -> None:
    event = {"event": "bot", "text": "Hi, Sam here", "metadata": {"agent_id": "sam", "agent_name": "Sam"}}
    message = bot_event_message("customer", event, customer_wrote_at=NOW - 30 * HOUR)
    restored = payload_message(message_payload(message))
    assert restored.sent_by_agent and restored.customer_wrote_at == NOW - 30 * HOUR
    assert restored == message


def test_a_bot_reply_has_no_delivery_extras_in_its_rasa_shape() -> None:
    message = bot_event_message("customer", {"event": "bot", "text": "Hello"})
    assert not message.sent_by_agent and message.customer_wrote_at is None
    assert "delivery" not in message_payload(message)
