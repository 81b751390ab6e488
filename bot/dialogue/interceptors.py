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
from crowddesk.bot.dialogue.kb_feedback import SORRY_UNHELPFUL, THANKS_FOR_HELPFUL, answered_entry, read_press
from crowddesk.bot.dialogue.policy import Decision, DecisionKind, HandoffReason
from crowddesk.bot.dialogue.turn import Turn, last_bot_action
from crowddesk.bot.project.config import FeedbackSettings
from crowddesk.knowledge_base.usage import record_feedback
from crowddesk.nlu.rating import RATING_ENTITY, parse_rating
from crowddesk.nlu.types import Entity, IntentScore, Parse

# A rating answer is stored as this intent (the rating buttons' payload) and thanked for.
RATE_INTENT = "rate"
THANKS_FOR_RATING = "utter_thanks_for_rating"


@dataclass(frozen=True)
class Intercepted:
    """A message read without NLU: what it meant, and either the reply (a domain response, sent
    when the domain has it) or the decision to carry out instead."""

    parse: Parse
    reply: str | None = None
    decision: Decision | None = None


class TurnInterceptor(Protocol):
    async def intercept(self, turn: Turn) -> Intercepted | None:
        """Claim `turn.message` (and add the turn's writes) or return None to pass it on."""
        ...


class RatingAnswer:
    """Stores the answer to the rating question on the customer's last resolved ticket.

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
        if last_bot_action(await turn.history()) != RATING_RESPONSE:
            return None
        if await asyncio.to_thread(self.tickets.rate, turn.sender_id, rating) is None:
            return None
        score = IntentScore(RATE_INTENT, 1.0)
        entity = Entity(RATING_ENTITY, rating, 0, len(text), "rating")
        return Intercepted(Parse(text, score, [score], [entity]), reply=THANKS_FOR_RATING)


class AnswerFeedback:
    """Counts a Helpful / Not helpful press (the first on each answer only) and replies to it;
    "Not helpful" offers a person or hands off, as `feedback.on_unhelpful` says."""

    def __init__(self, settings: FeedbackSettings) -> None:
        self.settings = settings

    async def intercept(self, turn: Turn) -> Intercepted | None:
        press = read_press(turn.message.text)
        if press is None:
            return None
        entry_id = answered_entry(await turn.history(), press.answer_id)
        parse = press.parse(turn.message.text)
        if entry_id is not None:
            turn.writes.append(
                partial(
                    record_feedback,
                    answer_id=press.answer_id,
                    entry_id=entry_id,
                    sender_id=turn.sender_id,
                    helpful=press.helpful,
                )
            )
        if press.helpful:
            return Intercepted(parse, reply=THANKS_FOR_HELPFUL)
        if self.settings.on_unhelpful == "handoff":
            handoff = Decision(
                DecisionKind.HAND_OFF,
                1.0,
                handoff_reason=HandoffReason.CUSTOMER_REQUEST,
                handoff_detail=f"{entry_id or 'the answer'} marked not helpful",
            )
            return Intercepted(parse, decision=handoff)
        turn.failed_turns += 1  # the bot failed, as with "no, that's not it" after an answer
        return Intercepted(parse, reply=SORRY_UNHELPFUL)
