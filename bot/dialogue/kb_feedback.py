""" "Did that answer your question?": Helpful / Not helpful buttons on knowledge-base answers.

Each answer gets an id, kept in its bot event (`custom.answer_id`) and in its buttons'
payloads (`/kb_feedback{"helpful": true, "answer": "<id>"}`), so a press names the answer, and
through it the entry, without NLU. The texts and button titles are domain responses.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from crowddesk.bot.conversations.store import mark_unhelpful
from crowddesk.bot.desk.rating import RATING_RESPONSE
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.config import FeedbackSettings
from crowddesk.bot.project.domain import FEEDBACK_INTENT, Domain
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.connectors.types import Button, OutboundMessage
from crowddesk.knowledge_base.types import KBEntry
from crowddesk.knowledge_base.usage import record_feedback
from crowddesk.nlu.payload import parse_payload
from crowddesk.nlu.types import Entity, IntentScore, Parse

ASK_FEEDBACK = "utter_ask_kb_feedback"
THANKS_FOR_HELPFUL = "utter_kb_feedback_helpful"
SORRY_UNHELPFUL = "utter_kb_feedback_unhelpful"
ANSWER_ENTITY = "answer"
HELPFUL_ENTITY = "helpful"
# 16 hex digits keep the fullest payload under Telegram's 64 bytes of callback data.
ANSWER_ID_LENGTH = 16
MAX_ANSWER_ID_LENGTH = 32  # kb_feedback.answer_id
SETTINGS_KEY = "config.yml: policies[SupportPolicy].feedback"


@dataclass(frozen=True)
class FeedbackPress:
    """A press of Helpful (`helpful`) or Not helpful on the answer `answer_id`."""

    answer_id: str
    helpful: bool

    def parse(self, text: str) -> Parse:
        """The press as the turn's parse: intent kb_feedback, the payload's values as entities."""
        intent = IntentScore(FEEDBACK_INTENT, 1.0)
        return Parse(
            text,
            intent,
            [intent],
            [
                Entity(HELPFUL_ENTITY, self.helpful, 0, 0, extractor="payload"),
                Entity(ANSWER_ENTITY, self.answer_id, 0, 0, extractor="payload"),
            ],
        )


def read_press(text: str) -> FeedbackPress | None:
    """The feedback `text` gives, or None when it is not a feedback payload.

    A payload with a missing or malformed answer id is still a press (acknowledged, never
    counted): sent on to NLU, its intent would be one no rule knows.
    """
    payload = parse_payload(text)
    if payload is None or payload.intent != FEEDBACK_INTENT:
        return None
    answer_id = payload.entities.get(ANSWER_ENTITY)
    if not (isinstance(answer_id, str) and 0 < len(answer_id) <= MAX_ANSWER_ID_LENGTH):
        answer_id = ""
    return FeedbackPress(answer_id, payload.entities.get(HELPFUL_ENTITY) is True)


def served_answer(event: Mapping[str, Any]) -> tuple[str, str] | None:
    """(answer id, entry id) when `event` is a bot message serving a KB entry with feedback buttons."""
    if event["event"] != "bot":
        return None
    custom = (event.get("data") or {}).get("custom") or {}
    if custom.get("answer_id") and custom.get("kb_entry"):
        return str(custom["answer_id"]), str(custom["kb_entry"])
    return None


def answered_entry(events: Iterable[Mapping[str, Any]], answer_id: str) -> str | None:
    """The KB entry of the conversation's answer `answer_id`, if the conversation has it."""
    for event in events:
        served = served_answer(event)
        if answer_id and served is not None and served[0] == answer_id:
            return served[1]
    return None


class KBAnswers:
    """Builds the message that serves a KB entry, asking for feedback when that is enabled."""

    def __init__(self, domain: Domain, renderer: ResponseRenderer, settings: FeedbackSettings) -> None:
        self.settings = settings
        self.renderer = renderer
        if settings.enabled:
            check_feedback_responses(domain, settings)

    def message(self, turn: Turn, entry: KBEntry, confidence: float) -> OutboundMessage:
        """The entry's answer, the feedback question and buttons, and its source as the last line."""
        sender = turn.sender_id
        source = f"\n\nSource: {entry.source_url}" if entry.source_url else ""
        custom = {"kb_entry": entry.id, "source_url": entry.source_url, "confidence": round(confidence, 4)}
        if not self.settings.enabled:
            return OutboundMessage(sender, entry.answer + source, custom=custom)
        answer_id = uuid.uuid4().hex[:ANSWER_ID_LENGTH]
        ask = turn.render(self.renderer, ASK_FEEDBACK)
        buttons = tuple(Button(b.title, _with_answer(b.payload, answer_id)) for b in ask.buttons)
        question = f"\n\n{ask.text}" if ask.text.strip() else ""
        return OutboundMessage(
            sender, entry.answer + question + source, buttons, custom={**custom, "answer_id": answer_id}
        )


def count_press(session: Session, *, answer_id: str, entry_id: str, sender_id: str, helpful: bool) -> None:
    """In the turn's transaction: count the first press on answer `answer_id` for its entry; a
    first Not helpful also marks the conversation as not resolved by the bot (the scorecard)."""
    counted = record_feedback(session, answer_id=answer_id, entry_id=entry_id, sender_id=sender_id, helpful=helpful)
    if counted and not helpful:
        mark_unhelpful(session, sender_id, datetime.now(UTC))


def check_feedback_responses(domain: Domain, settings: FeedbackSettings) -> None:
    """ValueError naming the setting and the response when the domain lacks what feedback needs."""
    needed = [ASK_FEEDBACK, THANKS_FOR_HELPFUL]
    if settings.on_unhelpful == "offer_handoff":
        needed.append(SORRY_UNHELPFUL)
    if settings.ask_rating:
        needed.append(RATING_RESPONSE)
    missing = [name for name in needed if name not in domain.responses]
    if missing:
        raise ValueError(f"{SETTINGS_KEY}.enabled is true, but the domain has no response {', '.join(missing)}")
    for variation in domain.responses[ASK_FEEDBACK]:
        votes = {press.get(HELPFUL_ENTITY) for press in _button_values(variation.buttons)}
        if votes != {True, False}:
            raise ValueError(
                f"{SETTINGS_KEY}: each variation of {ASK_FEEDBACK} needs a button with payload "
                f"'/{FEEDBACK_INTENT}{{\"helpful\": true}}' and one with "
                f"'/{FEEDBACK_INTENT}{{\"helpful\": false}}'"
            )


def _button_values(buttons: Iterable[Any]) -> list[dict[str, Any]]:
    payloads = (parse_payload(button.payload) for button in buttons)
    return [p.entities for p in payloads if p is not None and p.intent == FEEDBACK_INTENT]


def _with_answer(payload: str, answer_id: str) -> str:
    parsed = parse_payload(payload)
    if parsed is None or parsed.intent != FEEDBACK_INTENT:
        return payload  # another button the domain adds to the question, e.g. a person
    entities = {**parsed.entities, ANSWER_ENTITY: answer_id}
    return f"/{FEEDBACK_INTENT}{json.dumps(entities, separators=(',', ':'))}"
