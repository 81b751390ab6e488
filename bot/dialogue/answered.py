"""When the bot answered the customer, as the scorecard counts it: a knowledge-base answer, or a
response of the project's dialogue (rules, stories, forms); never the support policy's own
clarifications, hand-offs and requests to rephrase."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN
from crowddesk.bot.dialogue.turn import SUPPORT_POLICY


def answers_customer(event: Mapping[str, Any]) -> bool:
    """The event is an action that answered: the KB answer, or the dialogue's response."""
    if event.get("event") != "action":
        return False
    name, policy = event.get("name"), event.get("policy")
    return name == ANSWER_ACTION or (policy is not None and policy != SUPPORT_POLICY and name != ACTION_LISTEN)


def first_answer(events: Iterable[Mapping[str, Any]]) -> datetime | None:
    """When the first of `events` that answered the customer happened, if one did."""
    moments = [float(event["timestamp"]) for event in events if answers_customer(event)]
    return datetime.fromtimestamp(min(moments), UTC) if moments else None
