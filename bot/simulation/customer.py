"""A customer reading the bot's replies and deciding what to send next: press Helpful on an
answer to their question, Not helpful on a wrong one, pick their topic among the bot's
suggestions, or ask for a person when the bot can't help; and rate the person who helped."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import timedelta

import numpy as np

from crowddesk.bot.dialogue.interceptors import RATE_INTENT
from crowddesk.bot.dialogue.kb_feedback import read_press
from crowddesk.bot.simulation.traffic import Question
from crowddesk.connectors.types import OutboundMessage
from crowddesk.nlu.payload import parse_payload

ASK_FOR_A_PERSON = "can I talk to a person please"
PRESS_HELPFUL = 0.3  # most customers who got their answer just leave
PRESS_NOT_HELPFUL = 0.6
WANT_A_PERSON = 0.7  # when the bot could not help
RATE = 0.6  # customers who answer the satisfaction question
SECONDS_TO_READ = (20.0, 90.0)


@dataclass(frozen=True)
class Reply:
    """What the customer sends next, after reading for `after`; `last`: then they leave."""

    text: str
    after: timedelta
    last: bool = False


def served_entry(replies: Sequence[OutboundMessage]) -> str | None:
    """The knowledge-base entry the bot answered from, if it did."""
    for reply in replies:
        entry = reply.custom.get("kb_entry")
        if entry:
            return str(entry)
    return None


def asks_rating(replies: Sequence[OutboundMessage]) -> bool:
    """The bot asked how it went (the rating question's buttons)."""
    return any(_intent(button.payload) == RATE_INTENT for reply in replies for button in reply.buttons)


class Customer:
    """How customers of a project act; `handoff_intents` are the project's ways to ask for a
    person (config.yml), whose buttons they press when they want one."""

    def __init__(self, rng: np.random.Generator, handoff_intents: Sequence[str]) -> None:
        self.rng, self.handoff_intents = rng, tuple(handoff_intents)

    def next_message(self, question: Question, replies: Sequence[OutboundMessage]) -> Reply | None:
        """What the customer who asked `question` sends after `replies`; None: they leave."""
        payloads = [button.payload for reply in replies for button in reply.buttons]
        entry = served_entry(replies)
        if entry is not None:
            useful = entry == question.topic
            presses = [p for p in payloads if (press := read_press(p)) is not None and press.helpful is useful]
            reply = self._maybe(PRESS_HELPFUL if useful else PRESS_NOT_HELPFUL, presses)
            return replace(reply, last=useful) if reply is not None else None
        mine = [p for p in payloads if question.topic is not None and _names(p, question.topic)]
        if mine:
            return self._reading(mine[0])
        return self.ask_for_a_person(replies)

    def ask_for_a_person(self, replies: Sequence[OutboundMessage]) -> Reply | None:
        """When the bot could not help: press its button for a person (or ask in words), or leave."""
        if self.rng.random() >= WANT_A_PERSON:
            return None
        person = [b.payload for reply in replies for b in reply.buttons if _intent(b.payload) in self.handoff_intents]
        return self._reading(person[0] if person else ASK_FOR_A_PERSON)

    def rating(self, waited: timedelta) -> str | None:
        """The answer to "how did we do" (1 to 5), kinder the sooner a useful reply came (the
        bot's: at once); None when the customer doesn't answer."""
        if self.rng.random() >= RATE:
            return None
        minutes = waited.total_seconds() / 60
        mean = 4.6 if minutes <= 30 else 4.0 if minutes <= 60 else 3.2 if minutes <= 240 else 2.3
        return str(int(np.clip(round(self.rng.normal(mean, 0.8)), 1, 5)))

    def _maybe(self, chance: float, texts: Sequence[str]) -> Reply | None:
        return self._reading(texts[0]) if texts and self.rng.random() < chance else None

    def _reading(self, text: str) -> Reply:
        return Reply(text, timedelta(seconds=float(self.rng.uniform(*SECONDS_TO_READ))))


def _intent(payload: str) -> str | None:
    parsed = parse_payload(payload)
    return None if parsed is None else parsed.intent


def _names(payload: str, topic: str) -> bool:
    """The button's payload points at `topic`: its intent, or the knowledge-base entry it names."""
    parsed = parse_payload(payload)
    return parsed is not None and topic in (parsed.intent, *parsed.entities.values())
