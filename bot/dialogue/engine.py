"""The conversation engine: one message in, one decision, events persisted, replies out.

Turns of one conversation run one at a time (a per-conversation lock); CPU-bound NLU and
blocking database calls run in worker threads so the event loop keeps serving others. Turns of
different conversations that run at the same time share sentence-encoder passes
(`BatchingEncoder`), and a text seen recently ("hi", "thanks") reuses its vector (`CachedEncoder`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.states import ConversationOwner
from crowddesk.bot.conversations.store import ChannelConflict, ConversationRecord, ConversationStore, NewHandoff
from crowddesk.bot.conversations.transcript_redaction import TranscriptRedactor
from crowddesk.bot.desk.rating import RATING_RESPONSE
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.desk.wait_estimate import WaitEstimator
from crowddesk.bot.dialogue.action_client import ActionClient, ActionServerError
from crowddesk.bot.dialogue.batching import BatchingEncoder
from crowddesk.bot.dialogue.handoff import SlaTargets, build_handoff
from crowddesk.bot.dialogue.kb_feedback import (
    SORRY_UNHELPFUL,
    THANKS_FOR_HELPFUL,
    KBAnswers,
    answered_entry,
    read_press,
)
from crowddesk.bot.dialogue.policy import (
    ConversationContext,
    Decision,
    DecisionKind,
    HandoffReason,
    SupportPolicy,
)
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.responses import ResponseRenderer, bot_event_data
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from crowddesk.errors import Conflict, Rejected, TooLarge
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.knowledge_base.usage import count_served, record_feedback
from crowddesk.nlu.cached_encoder import CachedEncoder
from crowddesk.nlu.frustration import FrustrationDetector, FrustrationScore
from crowddesk.nlu.person_request import PersonRequestDetector
from crowddesk.nlu.pipeline import NLUPipeline, Understanding
from crowddesk.nlu.rating import RATING_ENTITY, parse_rating
from crowddesk.nlu.types import Entity, IntentScore, Parse

logger = logging.getLogger(__name__)

# The last button of every clarifying question: none of the guesses fits, get a person.
SOMETHING_ELSE = "Something else: talk to a person"
# Conversations whose last bot action the engine remembers (see `_last_answer_automated`).
REMEMBERED_CONVERSATIONS = 10_000
# A rating answer is stored as this intent (the rating buttons' payload) and thanked for.
RATE_INTENT = "rate"
THANKS_FOR_RATING = "utter_thanks_for_rating"
# The intent a message the models failed on is stored with (Rasa's name for "not understood").
UNREADABLE_INTENT = "nlu_fallback"

# A message the models failed on goes to a person, with nothing understood of it.
UNREADABLE_HANDOFF = Decision(DecisionKind.HAND_OFF, 0.0, handoff_reason=HandoffReason.UNREADABLE)


def _unread(text: str) -> Understanding:
    """What is known of a message the models failed on: its text, no intent, no vector."""
    nothing = IntentScore(UNREADABLE_INTENT, 0.0)
    return Understanding(Parse(text, nothing, [nothing]), None, False)


class MessageRejected(Rejected, ValueError):
    """The message can't be processed as sent (empty, too long, not now); nothing was stored."""


class MessageTooLong(MessageRejected, TooLarge):
    """The message is over the engine's character limit."""


class MessageConflict(MessageRejected, Conflict):
    """The conversation can't take the message: from another channel, or while its first
    delivery is still being processed."""


def channel_conflict(sender_id: str, owner: str, channel: str) -> MessageConflict:
    """A conversation is written only through the channel of its first message, so no one can
    inject text into it, or divert its agent replies, from another channel."""
    return MessageConflict(
        f"conversation {sender_id!r} belongs to the {owner} channel; it can't take messages from {channel}"
    )


@dataclass
class Turn:
    """What one message produced, accumulated before it is written in one transaction."""

    record: ConversationRecord | None
    channel: str
    slots: dict[str, Any]
    failed_turns: int
    events: list[dict[str, Any]] = field(default_factory=list)
    replies: list[OutboundMessage] = field(default_factory=list)
    handoff: NewHandoff | None = None
    outbox: Outbox | None = None
    """Where the replies are queued for delivery, in the turn's transaction (None: returned only)."""
    writes: list[Callable[[Session], Any]] = field(default_factory=list)
    """Other writes that commit with the turn or not at all (KB usage counts)."""
    original_text: str | None = None
    """The customer's text as sent, escaped, when the gateway had to repair it (for agents)."""

    def add(self, event: str, **data: Any) -> None:
        if event == "user" and self.original_text is not None:
            data["original_text"] = self.original_text
        self.events.append({"event": event, "timestamp": time.time(), **data})


class Engine:
    def __init__(
        self,
        *,
        domain: Domain,
        nlu: NLUPipeline,
        knowledge_base: KnowledgeBase,
        policy: SupportPolicy,
        store: ConversationStore,
        rules: dict[str, list[str]],
        actions: ActionClient | None,
        tickets: TicketDesk,
        wait_estimator: WaitEstimator,
        max_message_chars: int = 4000,
        redactor: Redactor | None = None,
    ) -> None:
        self.domain = domain
        self.encoder_cache = CachedEncoder(BatchingEncoder(nlu.encoder))
        self.nlu = NLUPipeline(self.encoder_cache, nlu.classifier, nlu.entities)
        self.knowledge_base = knowledge_base
        self.policy = policy
        self.store = store
        self.rules = rules
        self.actions = actions
        handoff = policy.settings.handoff
        self.sla = SlaTargets(handoff.sla)
        self.frustration = FrustrationDetector(
            handoff.frustration.extra_phrases, repeat_similarity=handoff.frustration.repeat_similarity
        )
        self.person_request = PersonRequestDetector(handoff.person_request.extra_phrases)
        self.tickets = tickets
        self.wait_estimator = wait_estimator
        self.max_message_chars = max_message_chars
        self.renderer = ResponseRenderer(domain)
        self.kb_answers = KBAnswers(domain, self.renderer, policy.settings.feedback)
        # config.yml privacy.redact_transcripts; `redactor` carries the project's redact_patterns.
        self.transcripts = (
            TranscriptRedactor(redactor or Redactor()) if policy.settings.privacy.redact_transcripts else None
        )
        self._locks: weakref.WeakValueDictionary[str, asyncio.Lock] = weakref.WeakValueDictionary()
        # sender -> (updated_at this engine wrote, was the bot's last action an automated answer).
        self._last_action: OrderedDict[str, tuple[datetime, bool]] = OrderedDict()

    def check(self, message: InboundMessage) -> None:
        if not message.text.strip():
            raise MessageRejected("message is empty")
        if len(message.text) > self.max_message_chars:
            raise MessageTooLong(f"message is {len(message.text)} characters; the limit is {self.max_message_chars}")

    def _lock(self, sender_id: str) -> asyncio.Lock:
        lock = self._locks.get(sender_id)
        if lock is None:
            lock = asyncio.Lock()
            self._locks[sender_id] = lock
        return lock

    async def handle(self, message: InboundMessage, *, outbox: Outbox | None = None) -> list[OutboundMessage]:
        """Process one customer message; returns the bot's replies (none while a human owns it).

        With `outbox`, the replies are also queued there in the transaction that stores the turn.
        """
        self.check(message)
        async with self._lock(message.sender_id):
            record = await asyncio.to_thread(self.store.get, message.sender_id)
            if record is not None and record.channel != message.channel:
                raise channel_conflict(message.sender_id, record.channel, message.channel)
            turn = Turn(
                record=record,
                channel=message.channel,
                slots=self._initial_slots(record),
                failed_turns=record.failed_turns if record else 0,
                outbox=outbox,
                original_text=message.original_text,
            )
            self._maybe_start_session(turn, record)
            owner = record.owner if record else ConversationOwner.BOT
            if owner != ConversationOwner.BOT:
                # A human owns the conversation: the message joins the ticket, the bot stays quiet.
                # Agents add events too, so what the engine remembers of it is no longer current.
                self._last_action.pop(message.sender_id, None)
                turn.add(
                    "user",
                    text=message.text,
                    input_channel=message.channel,
                    message_id=message.message_id,
                    parse_data=None,
                )
                await self._save(message.sender_id, turn, owner=owner, latest=record.latest_message if record else None)
                return []
            if await self._take_rating(message, turn, record) or await self._take_feedback(message, turn):
                return turn.replies
            unreadable = False
            try:
                understanding, candidates = await self.understand(message.text)
            except Exception:
                # The models failed on this message (the shared encoder pass already retried it
                # alone, so it is this message's own failure): a person reads it instead of the
                # customer getting an error, and the traceback goes to the log.
                logger.exception("NLU failed on a message from %s; handing it to a person", message.sender_id)
                understanding, candidates, unreadable = _unread(message.text), [], True
            parse = understanding.parse
            turn.add(
                "user",
                text=message.text,
                input_channel=message.channel,
                message_id=message.message_id,
                parse_data={**parse.as_rasa(), "kb_candidates": [c.as_dict() for c in candidates]},
            )
            self._fill_slots(turn, parse)
            last_answer_automated = await self._last_answer_automated(record)
            frustration = (
                FrustrationScore(())
                if understanding.from_payload or unreadable
                else await self._frustration(message, record)
            )
            decision = (
                UNREADABLE_HANDOFF
                if unreadable
                else self.policy.decide(
                    parse,
                    candidates,
                    ConversationContext(
                        turn.failed_turns,
                        last_answer_automated,
                        frustration,
                        self._person_request(message.text, understanding.from_payload),
                    ),
                    from_button=understanding.from_payload,
                )
            )
            await self._execute(message, turn, parse, candidates, decision)
            owner = ConversationOwner.QUEUED if turn.handoff else ConversationOwner.BOT
            turn.add("action", name="action_listen")
            saved = await self._save(message.sender_id, turn, owner=owner, latest=parse.as_rasa())
            self._remember_last_action(saved, turn.events, last_answer_automated)
            return turn.replies

    async def _frustration(self, message: InboundMessage, record: ConversationRecord | None) -> FrustrationScore:
        settings = self.policy.settings.handoff.frustration
        if not settings.enabled:
            return FrustrationScore(())
        earlier = (
            []
            if record is None
            else await asyncio.to_thread(self.store.customer_texts, message.sender_id, settings.history_messages)
        )
        return self.frustration.score(message.text, earlier)

    def _person_request(self, text: str, from_payload: bool) -> str:
        """The customer's words asking for a person; a button press says what it selects."""
        if from_payload or not self.policy.settings.handoff.person_request.enabled:
            return ""
        return self.person_request.find(text)

    async def _take_rating(self, message: InboundMessage, turn: Turn, record: ConversationRecord | None) -> bool:
        """Store the answer to the rating question and thank the customer, without NLU.

        Only a message that reads as a rating is checked against the conversation, so the
        history is read for those alone.
        """
        rating = parse_rating(message.text)
        if rating is None or record is None:
            return False
        history = await asyncio.to_thread(self.store.events, message.sender_id)
        if _last_bot_action(history) != RATING_RESPONSE:
            return False
        if await asyncio.to_thread(self.tickets.rate, message.sender_id, rating) is None:
            return False
        score = IntentScore(RATE_INTENT, 1.0)
        parse = Parse(message.text, score, [score], [Entity(RATING_ENTITY, rating, 0, len(message.text), "rating")])
        turn.add(
            "user",
            text=message.text,
            input_channel=message.channel,
            message_id=message.message_id,
            parse_data=parse.as_rasa(),
        )
        self._fill_slots(turn, parse)
        await self._finish_payload_turn(message, turn, parse, THANKS_FOR_RATING)
        return True

    async def _take_feedback(self, message: InboundMessage, turn: Turn) -> bool:
        """Count a Helpful / Not helpful press on a KB answer (the first press on each answer
        only) and reply to it, without NLU; "Not helpful" offers or hands off to a person."""
        press = read_press(message.text)
        if press is None:
            return False
        history = await asyncio.to_thread(self.store.events, message.sender_id)
        entry_id = answered_entry(history, press.answer_id)
        parse = press.parse(message.text)
        turn.add(
            "user",
            text=message.text,
            input_channel=message.channel,
            message_id=message.message_id,
            parse_data=parse.as_rasa(),
        )
        if entry_id is not None:
            turn.writes.append(
                partial(
                    record_feedback,
                    answer_id=press.answer_id,
                    entry_id=entry_id,
                    sender_id=message.sender_id,
                    helpful=press.helpful,
                )
            )
        reply = None
        if not press.helpful and self.policy.settings.feedback.on_unhelpful == "handoff":
            await self._hand_off(
                message,
                turn,
                parse,
                [],
                Decision(
                    DecisionKind.HAND_OFF,
                    1.0,
                    handoff_reason=HandoffReason.CUSTOMER_REQUEST,
                    handoff_detail=f"{entry_id or 'the answer'} marked not helpful",
                ),
            )
        else:
            reply = THANKS_FOR_HELPFUL if press.helpful else SORRY_UNHELPFUL
            if not press.helpful:
                turn.failed_turns += 1  # the bot failed, as with "no, that's not it" after an answer
        await self._finish_payload_turn(message, turn, parse, reply)
        return True

    async def _finish_payload_turn(self, message: InboundMessage, turn: Turn, parse: Parse, reply: str | None) -> None:
        """End a turn read without NLU: `reply` (when the domain has it), listen, and store it."""
        if reply is not None and self.renderer.has(reply):
            self._utter(
                turn,
                reply,
                Decision(DecisionKind.RESPOND, 1.0),
                self.renderer.render(reply, message.sender_id, turn.slots),
            )
        turn.add("action", name="action_listen")
        owner = ConversationOwner.QUEUED if turn.handoff else ConversationOwner.BOT
        saved = await self._save(message.sender_id, turn, owner=owner, latest=parse.as_rasa())
        self._remember_last_action(saved, turn.events, False)

    async def understand(self, text: str) -> tuple[Understanding, list[Candidate]]:
        """NLU and knowledge-base candidates for one text, in one worker-thread hop."""
        return await asyncio.to_thread(self._understand, text)

    def _understand(self, text: str) -> tuple[Understanding, list[Candidate]]:
        understanding = self.nlu.understand(text)
        return understanding, self.candidates(understanding)

    def candidates(self, understanding: Understanding) -> list[Candidate]:
        if understanding.vector is None:
            return []
        return self.knowledge_base.search(understanding.parse.text, understanding.vector)

    async def _last_answer_automated(self, record: ConversationRecord | None) -> bool:
        """Whether the bot's previous reply was an answer the customer could now reject.

        Remembered from the turn this engine last saved, while the stored conversation is still
        the one it saved (same `updated_at`); otherwise read from the event history, whose
        length grows with every turn.
        """
        if record is None:
            return False
        remembered = self._last_action.get(record.sender_id)
        if remembered is not None and remembered[0] == record.updated_at:
            return remembered[1]
        history = await asyncio.to_thread(self.store.events, record.sender_id)
        return _last_bot_action(history) == "action_answer_from_kb"

    def _remember_last_action(
        self, record: ConversationRecord, turn_events: list[dict[str, Any]], previous: bool
    ) -> None:
        action = _last_bot_action(turn_events)
        automated = previous if action is None else action == "action_answer_from_kb"
        self._last_action[record.sender_id] = (record.updated_at, automated)
        self._last_action.move_to_end(record.sender_id)
        if len(self._last_action) > REMEMBERED_CONVERSATIONS:
            self._last_action.popitem(last=False)

    # -- turn building -------------------------------------------------------------------

    def _initial_slots(self, record: ConversationRecord | None) -> dict[str, Any]:
        slots = {name: slot.initial_value for name, slot in self.domain.slots.items()}
        if record:
            slots.update(record.slots)
        return slots

    def _maybe_start_session(self, turn: Turn, record: ConversationRecord | None) -> None:
        expiry_minutes = self.domain.session_config.session_expiration_time
        expired = (
            record is not None
            and expiry_minutes > 0
            and (time.time() - record.updated_at.timestamp()) > expiry_minutes * 60
        )
        if record is None or expired:
            if expired and not self.domain.session_config.carry_over_slots_to_new_session:
                turn.slots = self._initial_slots(None)
            turn.add("action", name="action_session_start")
            turn.add("session_started")

    def _fill_slots(self, turn: Turn, parse: Parse) -> None:
        for name, slot in self.domain.slots.items():
            for mapping in slot.mappings:
                value = _mapped_value(mapping, parse)
                if value is not None and turn.slots.get(name) != value:
                    turn.slots[name] = value
                    turn.add("slot", name=name, value=value)
                    break

    async def _execute(
        self,
        message: InboundMessage,
        turn: Turn,
        parse: Parse,
        candidates: list[Candidate],
        decision: Decision,
    ) -> None:
        sender = message.sender_id
        kind = decision.kind
        if kind is DecisionKind.ANSWER_FROM_KB and decision.option is not None:
            entry = self._searched_entry(decision.option.key)
            if entry is not None:
                self._utter(
                    turn,
                    "action_answer_from_kb",
                    decision,
                    self.kb_answers.message(sender, entry, decision.confidence, turn.slots),
                )
                turn.writes.append(partial(count_served, entry_id=entry.id))
                turn.failed_turns = 0
                return
            decision = Decision(
                DecisionKind.HAND_OFF, decision.confidence, decision.option, handoff_reason=HandoffReason.LOW_CONFIDENCE
            )
            kind = decision.kind
        if kind is DecisionKind.RESPOND and decision.option is not None:
            try:
                await self._run_rule(turn, sender, parse, self.rules[decision.option.key], decision)
                turn.failed_turns = 0
                return
            except ActionServerError as exc:
                logger.error("custom action failed for %s: %s", sender, exc)
                decision = Decision(
                    DecisionKind.HAND_OFF,
                    decision.confidence,
                    decision.option,
                    handoff_reason=HandoffReason.ACTION_FAILED,
                )
                kind = decision.kind
        if kind is DecisionKind.CLARIFY:
            text = (
                self.renderer.render("utter_clarify", sender, turn.slots).text
                if self.renderer.has("utter_clarify")
                else "Did you mean one of these?"
            )
            buttons = [Button(o.title, o.payload) for o in decision.options]
            if self.policy.settings.handoff_intents:
                buttons.append(Button(SOMETHING_ELSE, f"/{self.policy.settings.handoff_intents[0]}"))
            self._utter(turn, "action_clarify", decision, OutboundMessage(sender, text, tuple(buttons)))
            turn.failed_turns += 1
            return
        if kind is DecisionKind.REPHRASE:
            self._utter(turn, "action_default_fallback", decision, self._fallback(sender, turn))
            turn.failed_turns += 1
            return
        await self._hand_off(message, turn, parse, candidates, decision)

    def _searched_entry(self, entry_id: str) -> KBEntry | None:
        """The entry as the index that found it holds it: published when the index was built
        (LiveIndex swaps in a new one within seconds of a change), no database read."""
        try:
            return self.knowledge_base.retriever.entry(entry_id)
        except KeyError:
            return None

    def _fallback(self, sender: str, turn: Turn) -> OutboundMessage:
        if self.renderer.has("utter_default"):
            return self.renderer.render("utter_default", sender, turn.slots)
        return OutboundMessage(sender, "Sorry, I didn't get that. Could you rephrase?")

    async def _run_rule(
        self,
        turn: Turn,
        sender: str,
        parse: Parse,
        actions: list[str],
        decision: Decision,
    ) -> None:
        for action in actions:
            if action.startswith("utter_") and self.renderer.has(action):
                self._utter(turn, action, decision, self.renderer.render(action, sender, turn.slots))
            else:
                await self._run_custom_action(turn, sender, parse, action, decision)

    async def _run_custom_action(
        self,
        turn: Turn,
        sender: str,
        parse: Parse,
        action: str,
        decision: Decision,
    ) -> None:
        if self.actions is None:
            raise ActionServerError(f"{action!r} needs an action server; set action_endpoint in endpoints.yml")
        # Rasa's action server gets the whole tracker; only these turns need the full history.
        history = await asyncio.to_thread(self.store.events, sender)
        tracker = {
            "sender_id": sender,
            "slots": turn.slots,
            "latest_message": parse.as_rasa(),
            "events": [*history, *turn.events],
            "paused": False,
            "followup_action": None,
            "active_loop": {},
            "latest_action_name": "action_listen",
            "latest_input_channel": turn.channel,
        }
        result = await self.actions.run(action, sender, tracker, self.domain.as_rasa_dict())
        turn.add("action", name=action, policy="SupportPolicy", confidence=decision.confidence)
        for event in result.events:
            if event.get("event") == "slot" and isinstance(event.get("name"), str):
                turn.slots[event["name"]] = event.get("value")
            turn.events.append({**event, "timestamp": event.get("timestamp") or time.time()})
        for response in result.responses:
            turn.replies.append(self._action_response(sender, turn, response))
            turn.add("bot", text=turn.replies[-1].text, data=bot_event_data(turn.replies[-1]))

    def _action_response(self, sender: str, turn: Turn, response: dict[str, Any]) -> OutboundMessage:
        template = response.get("response") or response.get("template")
        if template and self.renderer.has(template):
            extras = {k: v for k, v in response.items() if k not in ("response", "template")}
            return self.renderer.render(template, sender, turn.slots, **extras)
        return OutboundMessage(
            sender,
            str(response.get("text") or ""),
            tuple(Button(b["title"], b["payload"]) for b in response.get("buttons") or []),
            image=response.get("image"),
            custom=response.get("custom") or {},
        )

    async def _hand_off(
        self,
        message: InboundMessage,
        turn: Turn,
        parse: Parse,
        candidates: list[Candidate],
        decision: Decision,
    ) -> None:
        sender = message.sender_id
        entries = [self._searched_entry(candidate.entry_id) for candidate in candidates]
        # Only entries with real evidence are suggested to the agent, by the confidence a
        # clarification would give them (classifier and retriever together): "five answers at
        # 0 %" for an unrelated question is noise that hides the ticket's content.
        confidence_of = {o.key: o.confidence for o in self.policy.options(parse, candidates) if o.kind == "kb"}
        considered = [
            (candidate, confidence, entry)
            for candidate, entry in zip(candidates, entries)
            if self.policy.has_evidence(confidence := confidence_of.get(candidate.entry_id, 0.0))
        ]
        reply_name = (
            "utter_out_of_scope"
            if decision.handoff_reason is HandoffReason.OUT_OF_SCOPE and self.renderer.has("utter_out_of_scope")
            else "utter_handoff"
        )
        if self.renderer.has(reply_name):
            self._utter(turn, reply_name, decision, self.renderer.render(reply_name, sender, turn.slots))
        history = await asyncio.to_thread(self.store.events, sender)  # the packet's transcript
        turn.handoff = build_handoff(
            sender_id=sender,
            channel=message.channel,
            parse=parse,
            decision=decision,
            candidates=considered,
            events=[*history, *turn.events],
            sla=self.sla,
        )
        if self.renderer.has("utter_handoff_queued"):
            wait = await asyncio.to_thread(self.wait_estimator.estimate, turn.handoff.due_at, datetime.now(UTC))
            self._utter(
                turn,
                "utter_handoff_queued",
                decision,
                self.renderer.render("utter_handoff_queued", sender, turn.slots, wait_minutes=str(wait)),
            )
        turn.add(
            "handoff",
            reason=turn.handoff.reason,
            priority=turn.handoff.priority,
            due_at=turn.handoff.due_at.isoformat(),
        )
        turn.failed_turns = 0

    def _utter(self, turn: Turn, action: str, decision: Decision, reply: OutboundMessage) -> None:
        turn.add("action", name=action, policy="SupportPolicy", confidence=round(decision.confidence, 4))
        turn.add("bot", text=reply.text, data=bot_event_data(reply), metadata={"utter_action": action})
        turn.replies.append(reply)

    async def _save(
        self, sender_id: str, turn: Turn, *, owner: str, latest: dict[str, Any] | None
    ) -> ConversationRecord:
        # Queued in the turn's transaction: a crash can't store the turn yet lose its replies.
        writes: list[Callable[[Session], Any]] = (
            []
            if turn.outbox is None or not turn.replies
            else [partial(turn.outbox.stage, channel=turn.channel, messages=turn.replies)]
        )
        writes += turn.writes  # last: the usage row is locked from its UPSERT until commit
        if self.transcripts is not None:  # understood as sent, stored redacted
            turn.events = self.transcripts.events(turn.events)
            latest, turn.handoff = self.transcripts.parse(latest), self.transcripts.handoff(turn.handoff)
        try:
            record, _ = await asyncio.to_thread(
                self.store.record_turn,
                sender_id,
                turn.channel,
                turn.events,
                turn.slots,
                turn.failed_turns,
                owner,
                latest,
                turn.handoff,
                partial(_write_all, writes) if writes else None,
            )
        except ChannelConflict as conflict:  # another process created it through another channel
            raise channel_conflict(sender_id, conflict.owner, turn.channel) from None
        return record


def _write_all(writes: list[Callable[[Session], Any]], session: Session) -> None:
    for write in writes:
        write(session)


def _mapped_value(mapping: Any, parse: Parse) -> Any:
    intents = mapping.intent if isinstance(mapping.intent, list) else [mapping.intent] if mapping.intent else []
    if intents and parse.intent.name not in intents:
        return None
    if mapping.type == "from_entity":
        return next((e.value for e in parse.entities if e.entity == mapping.entity), None)
    if mapping.type == "from_intent" and intents:
        return mapping.value
    return None


def _last_bot_action(events: list[dict[str, Any]]) -> str | None:
    """The name of the last action other than listening, if any."""
    for event in reversed(events):
        if event["event"] == "action" and event.get("name") != "action_listen":
            return str(event.get("name"))
    return None
