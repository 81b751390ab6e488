"""Messages read before NLU, in order: a rating after a resolved ticket, a press of Helpful /
Not helpful on a knowledge-base answer. Each interceptor either claims the message, saying what
it meant and how the turn ends, or passes it on (None), as Bolt's middleware does."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from crowddesk.bot.desk.rating import RATING_RESPONSE
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.dialogue.kb_feedback import (
    SORRY_UNHELPFUL,
    THANKS_FOR_HELPFUL,
    FeedbackPress,
    answered_entry,
    count_press,
    read_press,
)
from crowddesk.bot.dialogue.policy import Decision, DecisionKind, HandoffReason
from crowddesk.bot.dialogue.turn import History, Turn, last_bot_action
from crowddesk.bot.project.config import FeedbackSettings
from crowddesk.knowledge_base.usage import rate_answer
from crowddesk.nlu.rating import RATING_ENTITY, parse_rating
from crowddesk.nlu.types import Entity, IntentScore, Parse

# A rating answer is stored as this intent (the rating buttons' payload) and thanked for.
RATE_INTENT = "rate"
THANKS_FOR_RATING = "utter_thanks_for_rating"


@dataclass(frozen=True)
class Intercepted:
    """A message read without NLU: what it meant, and either the replies (domain responses, each
    sent when the domain has it) or the decision to carry out instead."""

    parse: Parse
    replies: tuple[str, ...] = ()
    decision: Decision | None = None


class TurnInterceptor(Protocol):
    async def intercept(self, turn: Turn) -> Intercepted | None:
        """Claim `turn.message` (and add the turn's writes) or return None to pass it on."""
        ...


class RatingAnswer:
    """Stores the answer to the rating question: on the answer the customer had just pressed
    Helpful on (the bot's CSAT), else on their last resolved ticket (people's CSAT).

    Only a message that reads as a rating is checked against the conversation, so the history
    is read for those alone.
    """

    def __init__(self, tickets: TicketDesk) -> None:
        self.tickets = tickets

    async def intercept(self, turn: Turn) -> Intercepted | None:
        text = turn.message.text
        rating = parse_rating(text)
        if rating is None or turn.record is None:
            return None
        history = turn.history
        if last_bot_action(history) != RATING_RESPONSE:
            return None
        press = _press_before_question(history)
        if press is not None:
            turn.writes.append(partial(rate_answer, answer_id=press.answer_id, rating=rating))
        elif await asyncio.to_thread(self.tickets.rate, turn.sender_id, rating) is None:
            return None
        score = IntentScore(RATE_INTENT, 1.0)
        entity = Entity(RATING_ENTITY, rating, 0, len(text), "rating")
        return Intercepted(Parse(text, score, [score], [entity]), replies=(THANKS_FOR_RATING,))


def _pressed(history: History, answer_id: str) -> bool:
    """The customer already pressed Helpful or Not helpful on answer `answer_id`."""
    presses = (read_press(str(event.get("text") or "")) for event in history if event["event"] == "user")
    return any(press is not None and press.answer_id == answer_id for press in presses)


def _press_before_question(history: History) -> FeedbackPress | None:
    """The Helpful press the rating question followed, when the customer's last message was one."""
    for event in reversed(history):
        if event["event"] == "user":
            press = read_press(str(event.get("text") or ""))
            return press if press is not None and press.helpful and press.answer_id else None
    return None


class AnswerFeedback:
    """Counts a Helpful / Not helpful press (the first on each answer only) and replies to it;
    "Not helpful" offers a person or hands off, as `feedback.on_unhelpful` says."""

    def __init__(self, settings: FeedbackSettings) -> None:
        self.settings = settings

    async def intercept(self, turn: Turn) -> Intercepted | None:
        press = read_press(turn.message.text)
        if press is None:
            return None
        history = turn.history
        entry_id = answered_entry(history, press.answer_id)
        parse = press.parse(turn.message.text)
        if entry_id is not None:
            turn.writes.append(
                partial(
                    count_press,
                    answer_id=press.answer_id,
                    entry_id=entry_id,
                    sender_id=turn.sender_id,
                    helpful=press.helpful,
                )
            )
        if press.helpful:
            rate = self.settings.ask_rating and entry_id is not None and not _pressed(history, press.answer_id)
            return Intercepted(parse, replies=(THANKS_FOR_HELPFUL, RATING_RESPONSE) if rate else (THANKS_FOR_HELPFUL,))
        if self.settings.on_unhelpful == "handoff":
            handoff = Decision(
                DecisionKind.HAND_OFF,
                1.0,
                handoff_reason=HandoffReason.CUSTOMER_REQUEST,
                handoff_detail=f"{entry_id or 'the answer'} marked not helpful",
            )
            return Intercepted(parse, decision=handoff)
        turn.failed_turns += 1  # the bot failed, as with "no, that's not it" after an answer
        return Intercepted(parse, replies=(SORRY_UNHELPFUL,))
