"""Synthetic support traffic for the scorecard benchmark, seeded and in chunks: conversations, their
events, hand-off tickets and Helpful / Not helpful presses, in the shapes the engine and the desk
write them (bot/dialogue/turn.py, executors.py, handoff.py; bot/desk/tickets.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from crowddesk.bot.conversations.states import ConversationOwner, TicketStatus
from crowddesk.bot.conversations.store import NewHandoff, event_row
from crowddesk.bot.dialogue.answered import first_answer
from crowddesk.bot.dialogue.executors import CLARIFY_ACTION
from crowddesk.bot.dialogue.handoff import HIGH_PRIORITY_REASONS, SlaTargets, transcript
from crowddesk.bot.dialogue.kb_feedback import SORRY_UNHELPFUL, THANKS_FOR_HELPFUL
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.policy import HandoffReason
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN
from crowddesk.bot.dialogue.turn import SUPPORT_POLICY
from crowddesk.bot.project.domain import FEEDBACK_INTENT

SEED = 20261201
# "Now" for the generated traffic: every event happened before it, tickets still open are open then.
END = datetime(2026, 12, 1, tzinfo=UTC)
DAYS = 180
CONVERSATIONS = 1_000_000  # at scale 1.0
CHUNK = 100_000
CHANNELS = ("webchat", "telegram", "slack", "whatsapp", "rest")
CHANNEL_SHARES = (0.40, 0.25, 0.15, 0.10, 0.10)
AGENTS = tuple(f"agent{number:02d}" for number in range(1, 21))
KB_ENTRIES = tuple(f"faq/topic-{number:03d}" for number in range(300))
RULE_POLICY = "RulePolicy"  # the project's dialogue: greetings, thanks, small talk

# What customers ask (intent, text); the bot's side of the dialogue answers the first two.
TOPICS = (
    ("greet", "hi there"),
    ("thank", "thanks, that helps"),
    ("reset_pin", "how do I reset my PIN?"),
    ("card_lost", "I lost my card, what now?"),
    ("transfer_pending", "my transfer has been pending for two days"),
    ("fees", "what are the fees for international payments?"),
    ("refund_status", "where is my refund?"),
    ("change_address", "how can I change my address?"),
    ("close_account", "I want to close my account"),
    ("card_declined", "why was my card declined?"),
    ("exchange_rate", "which exchange rate do you use?"),
    ("top_up", "my top-up did not arrive"),
    ("verify_identity", "how long does identity verification take?"),
    ("dispute_charge", "there is a charge I don't recognise"),
)
HANDOFF_REASONS = (
    (HandoffReason.LOW_CONFIDENCE, 0.35),
    (HandoffReason.CUSTOMER_REQUEST, 0.25),
    (HandoffReason.OUT_OF_SCOPE, 0.15),
    (HandoffReason.FAILED_TURNS, 0.10),
    (HandoffReason.FRUSTRATION, 0.08),
    (HandoffReason.ALWAYS_HUMAN, 0.05),
    (HandoffReason.NOT_COVERED, 0.02),
)
RATING_SHARES = (0.05, 0.07, 0.13, 0.35, 0.40)

# How a conversation goes: answered from the KB, by the dialogue, clarified then answered,
# clarified then abandoned, handed off to a person.
KB, DIALOGUE, CLARIFIED, ABANDONED, HANDOFF = range(5)
KIND_SHARES = (0.42, 0.14, 0.10, 0.09, 0.25)
FEEDBACK_SHARE = 0.25  # KB answers the customer pressed Helpful or Not helpful on
HELPFUL_SHARE = 0.75
THANKS_SHARE = 0.3  # answered conversations the customer closes with a thank-you
SECOND_QUESTION_SHARE = 0.1  # conversations where the customer asks one more thing first

CONVERSATION_COLUMNS = (
    "id", "sender_id", "channel", "owner", "slots", "failed_turns", "latest_message", "created_at", "updated_at",
    "answered_at", "handed_off_at", "unhelpful_at",
)  # fmt: skip
EVENT_COLUMNS = ("conversation_id", "seq", "type", "timestamp", "name", "data")
HANDOFF_COLUMNS = (
    "id", "conversation_id", "status", "reason", "priority", "packet", "created_at", "due_at", "assigned_to",
    "resolved_at", "assigned_at", "first_response_at", "rating", "sla_warned_at", "sla_breached_at",
)  # fmt: skip
FEEDBACK_COLUMNS = ("answer_id", "entry_id", "sender_id", "helpful", "created_at", "rating")


@dataclass
class Chunk:
    """Rows of some conversations, as tuples in the order of the *_COLUMNS above; JSON as text."""

    conversations: list[tuple[Any, ...]] = field(default_factory=list)
    events: list[tuple[Any, ...]] = field(default_factory=list)
    handoffs: list[tuple[Any, ...]] = field(default_factory=list)
    feedback: list[tuple[Any, ...]] = field(default_factory=list)


def conversation_count(scale: float) -> int:
    """How many conversations `scale` generates (at least one)."""
    return max(1, round(CONVERSATIONS * scale))


def chunks(scale: float, seed: int = SEED) -> Iterator[Chunk]:
    """The traffic of `scale` × 1M conversations over DAYS days before END, oldest first, CHUNK
    conversations at a time (ids 1, 2, ... in order of arrival)."""
    arrivals = _arrivals(conversation_count(scale), np.random.default_rng(seed))
    for start in range(0, len(arrivals), CHUNK):
        rng = np.random.default_rng([seed, start])
        yield _chunk(start + 1, arrivals[start : start + CHUNK], rng)


def _arrivals(count: int, rng: np.random.Generator) -> np.ndarray:
    """Sorted epoch seconds: busier on weekdays and in office hours, growing over the months."""
    days = np.arange(DAYS)
    weekday = np.array([(END - timedelta(days=DAYS - day)).weekday() for day in range(DAYS)])
    day_weights = np.where(weekday < 5, 1.0, 0.6) * (1 + 0.3 * days / DAYS)
    hours = np.arange(24)
    hour_weights = 0.15 + np.exp(-(((hours - 11) / 3.5) ** 2)) + 0.5 * np.exp(-(((hours - 20) / 2.5) ** 2))
    day = rng.choice(DAYS, size=count, p=day_weights / day_weights.sum())
    hour = rng.choice(24, size=count, p=hour_weights / hour_weights.sum())
    # The last hour stays empty: every conversation's turns end before END.
    seconds = np.minimum(day * 86_400 + hour * 3_600 + rng.uniform(0, 3_600, count), DAYS * 86_400 - 3_600)
    return np.sort((END - timedelta(days=DAYS)).timestamp() + seconds)


def _chunk(first_id: int, arrivals: np.ndarray, rng: np.random.Generator) -> Chunk:
    plan = _plan(len(arrivals), rng)
    chunk = Chunk()
    for row, started in enumerate(arrivals):
        _Conversation(first_id + row, float(started), {name: values[row] for name, values in plan.items()}).add_to(
            chunk
        )
    return chunk


def _plan(count: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """How each of `count` conversations goes, drawn at once: one array per choice."""
    return {
        "channel": rng.choice(len(CHANNELS), size=count, p=CHANNEL_SHARES),
        "kind": rng.choice(len(KIND_SHARES), size=count, p=KIND_SHARES),
        "topic": rng.integers(2, len(TOPICS), size=count),
        "second": rng.random(count) < SECOND_QUESTION_SHARE,
        "thanks": rng.random(count) < THANKS_SHARE,
        "press": rng.random(count) < FEEDBACK_SHARE,
        "helpful": rng.random(count) < HELPFUL_SHARE,
        "entry": np.minimum(rng.zipf(1.3, size=count) - 1, len(KB_ENTRIES) - 1),
        "before_handoff": rng.choice(3, size=count, p=(0.5, 0.3, 0.2)),  # nothing, a KB answer, a clarification
        "reason": rng.choice(len(HANDOFF_REASONS), size=count, p=[share for _, share in HANDOFF_REASONS]),
        "agent": np.minimum(rng.geometric(0.12, size=count) - 1, len(AGENTS) - 1),
        "reply_minutes": rng.lognormal(np.log(18), 0.9, size=count),
        "resolve_minutes": rng.lognormal(np.log(90), 1.0, size=count),
        "rated": rng.random(count) < 0.55,
        "rating": rng.choice(5, size=count, p=RATING_SHARES) + 1,
        "gaps": rng.uniform(15, 90, size=(count, 6)),
        "confidence": rng.uniform(0.3, 0.99, size=count),
        "ids": rng.integers(0, 2**63, size=(count, 3), dtype=np.int64),  # answer, ticket (two halves)
    }


class _Conversation:
    """One conversation's turns, built as the engine would record them, then its rows."""

    def __init__(self, conversation_id: int, started: float, plan: dict[str, Any]) -> None:
        self.id = conversation_id
        self.plan = plan
        self.channel = CHANNELS[plan["channel"]]
        self.sender_id = f"{self.channel}-{conversation_id:08d}"
        self.now = started
        self.gaps = iter(plan["gaps"])
        self.events: list[dict[str, Any]] = []
        self.latest: dict[str, Any] | None = None
        self.ticket: tuple[Any, ...] | None = None
        self.opened: datetime | None = None
        self.press: tuple[Any, ...] | None = None

    def add_to(self, chunk: Chunk) -> None:
        plan, kind = self.plan, int(self.plan["kind"])
        self.event("action", name="action_session_start")
        self.event("session_started")
        self.event("action", name=ACTION_LISTEN)
        if plan["second"]:
            self.ask(2 + (int(plan["topic"]) + 1) % (len(TOPICS) - 2))
            self.answer_from_kb(int(plan["entry"]) // 2)
        if kind == DIALOGUE:
            self.ask(0)
            self.dialogue("utter_greet")
        elif kind in (KB, CLARIFIED):
            self.ask(int(plan["topic"]))
            if kind == CLARIFIED:
                self.clarify()
                self.ask(int(plan["topic"]))
            answer_id = self.answer_from_kb(int(plan["entry"]))
            if plan["press"]:
                self.feedback(answer_id, KB_ENTRIES[int(plan["entry"])], helpful=bool(plan["helpful"]))
        elif kind == ABANDONED:
            self.ask(int(plan["topic"]))
            self.clarify()
        else:
            self.ask(int(plan["topic"]))
            if plan["before_handoff"] == 1:
                self.answer_from_kb(int(plan["entry"]))
                self.ask(int(plan["topic"]))
            elif plan["before_handoff"] == 2:
                self.clarify()
                self.ask(int(plan["topic"]))
            self.hand_off()
        if plan["thanks"] and kind != HANDOFF:
            self.ask(1)
            self.dialogue("utter_welcome")
        chunk.conversations.append(self.row())
        for seq, event in enumerate(self.events, start=1):
            row = {**event_row(self.id, seq, event), "data": json.dumps(event)}
            chunk.events.append(tuple(row[column] for column in EVENT_COLUMNS))
        if self.ticket is not None:
            chunk.handoffs.append(self.ticket)
        if self.press is not None:
            chunk.feedback.append(self.press)

    def event(self, kind: str, **data: Any) -> dict[str, Any]:
        self.now += 0.05
        event = {"event": kind, "timestamp": round(self.now, 3), **data}
        self.events.append(event)
        return event

    def action(self, name: str, policy: str = SUPPORT_POLICY) -> None:
        self.event("action", name=name, policy=policy, confidence=round(float(self.plan["confidence"]), 4))

    def say(self, action: str, text: str, buttons: list[dict[str, str]] | None = None, **custom: Any) -> None:
        data = {"buttons": buttons, "image": None, "custom": custom or None}
        self.event("bot", text=text, data=data, metadata={"utter_action": action})

    def ask(self, topic: int, parse: dict[str, Any] | None = None) -> None:
        """A customer turn starts: the message as understood."""
        self.now += float(next(self.gaps))
        intent, text = TOPICS[topic]
        confidence = round(float(self.plan["confidence"]), 4)
        self.latest = parse or {
            "text": text,
            "intent": {"name": intent, "confidence": confidence},
            "entities": [],
            "intent_ranking": [{"name": intent, "confidence": confidence}],
        }
        self.event(
            "user",
            text=self.latest["text"],
            input_channel=self.channel,
            message_id=f"{self.sender_id}-{len(self.events)}",
            parse_data=self.latest,
        )

    def listen(self) -> None:
        self.event("action", name=ACTION_LISTEN)

    def answer_from_kb(self, entry: int) -> str:
        answer_id = f"{int(self.plan['ids'][0]) + len(self.events):016x}"[-16:]
        self.action(ANSWER_ACTION)
        buttons = [
            {"title": "Helpful", "payload": f'/{FEEDBACK_INTENT}{{"helpful": true, "answer": "{answer_id}"}}'},
            {"title": "Not helpful", "payload": f'/{FEEDBACK_INTENT}{{"helpful": false, "answer": "{answer_id}"}}'},
        ]
        self.say(ANSWER_ACTION, f"Here is what {KB_ENTRIES[entry]} says.", buttons, kb_entry=KB_ENTRIES[entry],
                 answer_id=answer_id)  # fmt: skip
        self.listen()
        return answer_id

    def clarify(self) -> None:
        buttons = [{"title": title, "payload": f"/{intent}"} for intent, title in TOPICS[2:4]]
        self.action(CLARIFY_ACTION)
        self.say(CLARIFY_ACTION, "Did you mean one of these?", buttons)
        self.listen()

    def dialogue(self, response: str) -> None:
        """The project's rules answer, then choose to listen (recorded with their policy)."""
        self.action(response, RULE_POLICY)
        self.say(response, "You're welcome!" if response == "utter_welcome" else "Hello! How can I help?")
        self.action(ACTION_LISTEN, RULE_POLICY)

    def feedback(self, answer_id: str, entry_id: str, *, helpful: bool) -> None:
        text = f'/{FEEDBACK_INTENT}{{"helpful": {str(helpful).lower()}, "answer": "{answer_id}"}}'
        entities = [
            {"entity": "helpful", "value": helpful, "start": 0, "end": 0, "extractor": "payload"},
            {"entity": "answer", "value": answer_id, "start": 0, "end": 0, "extractor": "payload"},
        ]
        intent = {"name": FEEDBACK_INTENT, "confidence": 1.0}
        self.ask(0, {"text": text, "intent": intent, "entities": entities, "intent_ranking": [intent]})
        response = THANKS_FOR_HELPFUL if helpful else SORRY_UNHELPFUL
        self.action(response)
        self.say(response, "Thanks!" if helpful else "Sorry about that.")
        self.listen()
        # The answer's rating (asked after Helpful) comes in the customer's next turn, if at all.
        rating = int(self.plan["rating"]) if helpful and self.plan["rated"] else None
        self.press = (answer_id, entry_id, self.sender_id, helpful, _moment(self.now), rating)

    def hand_off(self) -> NewHandoff:
        """The turn that opens a ticket; the ticket as the engine asks the store for it."""
        plan = self.plan
        reason = HANDOFF_REASONS[int(plan["reason"])][0]
        priority = "high" if reason in HIGH_PRIORITY_REASONS else "normal"
        opened = self.opened = _moment(self.now)
        due = SlaTargets().due_at(self.channel, priority, opened)
        self.action("utter_handoff")
        self.say("utter_handoff", "A person will answer you here.")
        intent = self.latest["intent"] if self.latest else {"name": None, "confidence": 0.0}
        packet = {
            "sender_id": self.sender_id,
            "channel": self.channel,
            "reason": reason.value,
            "priority": priority,
            "created_at": opened.isoformat(),
            "sla_due_at": due.isoformat(),
            "summary": f"Customer asked: {intent['name']}. Handed off: {reason.value.replace('_', ' ')}.",
            "intent": intent,
            "entities": [],
            "kb_candidates": [],
            "transcript": transcript(self.events),
        }
        self.event("handoff", reason=reason.value, priority=priority, due_at=due.isoformat())
        self.listen()
        ticket_id = f"{int(plan['ids'][1]):016x}{int(plan['ids'][2]):016x}"
        self.ticket = _ticket(ticket_id, self.id, reason, priority, packet, opened, due, plan)
        return NewHandoff(reason.value, priority, packet, due)

    def row(self) -> tuple[Any, ...]:
        created = _moment(self.events[0]["timestamp"])
        owner = ConversationOwner.BOT
        if self.ticket is not None and self.ticket[2] != TicketStatus.RESOLVED:
            owner = ConversationOwner(self.ticket[2])
        latest = json.dumps(self.latest)
        # The outcome moments the store keeps in the turns' transactions.
        handed_off = None if self.ticket is None else self.opened
        unhelpful = None if self.press is None or self.press[3] else self.press[4]
        state = (self.id, self.sender_id, self.channel, owner.value, "{}", 0, latest, created, _moment(self.now))
        return (*state, first_answer(self.events), handed_off, unhelpful)


def _ticket(
    ticket_id: str,
    conversation_id: int,
    reason: HandoffReason,
    priority: str,
    packet: dict[str, Any],
    opened: datetime,
    due: datetime,
    plan: dict[str, Any],
) -> tuple[Any, ...]:
    """The ticket as the desk leaves it by END: replied, resolved and rated only if that came before END."""
    replied = opened + timedelta(minutes=float(plan["reply_minutes"]))
    resolved = replied + timedelta(minutes=float(plan["resolve_minutes"]))
    warning = due - timedelta(minutes=SlaTargets().settings.warning_minutes)
    first_response = replied if replied < END else None
    resolved_at = resolved if first_response is not None and resolved < END else None
    assigned_at = replied - timedelta(minutes=1) if replied - timedelta(minutes=1) < END else None
    status = TicketStatus.RESOLVED if resolved_at else TicketStatus.ASSIGNED if assigned_at else TicketStatus.QUEUED
    return (
        ticket_id,
        conversation_id,
        status.value,
        reason.value,
        priority,
        json.dumps(packet),
        opened,
        due,
        AGENTS[int(plan["agent"])] if assigned_at else None,
        resolved_at,
        assigned_at,
        first_response,
        int(plan["rating"]) if resolved_at and plan["rated"] else None,
        warning if warning < min(replied, END) else None,
        due if due < min(replied, END) else None,
    )


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


@dataclass(frozen=True)
class LiveTurn:
    """One customer turn as the engine hands it to `ConversationStore.record_turn`."""

    sender_id: str
    channel: str
    events: list[dict[str, Any]]
    latest_message: dict[str, Any] | None
    new_handoff: NewHandoff | None


def live_turns(count: int, existing: list[tuple[str, str]], seed: int = SEED) -> Iterator[LiveTurn]:
    """`count` turns stamped now: a new conversation's first turn answered from the KB, or a turn
    of one of the `existing` (sender id, channel) conversations; as many hand off as in the traffic."""
    rng = np.random.default_rng([seed, count])
    for number in range(count):
        plan = {name: values[0] for name, values in _plan(1, rng).items()}
        turn = _Conversation(0, time.time(), plan)
        if number % 2 and existing:
            turn.sender_id, turn.channel = existing[number % len(existing)]
        else:
            turn.sender_id = f"{turn.channel}-live-{seed}-{number:08d}"
            turn.event("action", name="action_session_start")
            turn.event("session_started")
            turn.event("action", name=ACTION_LISTEN)
        turn.ask(int(plan["topic"]))
        if number % round(1 / KIND_SHARES[HANDOFF]) == 0:
            new_handoff: NewHandoff | None = turn.hand_off()
        else:
            turn.answer_from_kb(int(plan["entry"]))
            new_handoff = None
        yield LiveTurn(turn.sender_id, turn.channel, turn.events, turn.latest, new_handoff)
