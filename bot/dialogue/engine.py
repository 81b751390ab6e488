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
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from crowddesk.bot.cluster.turn_locks import LocalTurnLocks, TurnLocks
from crowddesk.bot.conversations.deliveries import AlreadyDelivered, SeenMessages
from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.states import ConversationOwner
from crowddesk.bot.conversations.store import ChannelConflict, ConversationRecord, ConversationStore
from crowddesk.bot.conversations.transcript_redaction import TranscriptRedactor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.desk.wait_estimate import WaitEstimator
from crowddesk.bot.dialogue.action_client import ActionClient
from crowddesk.bot.dialogue.actions import DialogueActions
from crowddesk.bot.dialogue.answered import first_answer
from crowddesk.bot.dialogue.batching import BatchingEncoder
from crowddesk.bot.dialogue.custom_actions import CustomActions
from crowddesk.bot.dialogue.executors import (
    AnswerFromKB,
    Clarify,
    Executor,
    FollowDialogue,
    HandOff,
    Rephrase,
    Understood,
)
from crowddesk.bot.dialogue.forms import Forms, answers_form
from crowddesk.bot.dialogue.handoff import SlaTargets
from crowddesk.bot.dialogue.interceptors import AnswerFeedback, Intercepted, RatingAnswer, TurnInterceptor
from crowddesk.bot.dialogue.kb_feedback import KBAnswers
from crowddesk.bot.dialogue.last_action import answered_automatically
from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.dialogue.policy import (
    ConversationContext,
    Decision,
    DecisionKind,
    HandoffReason,
    SupportPolicy,
)
from crowddesk.bot.dialogue.public_posts import PublicPostRule
from crowddesk.bot.dialogue.slots import SlotFiller
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from crowddesk.errors import Conflict, Rejected, TooLarge
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.types import Candidate
from crowddesk.nlu.cached_encoder import CachedEncoder
from crowddesk.nlu.frustration import FrustrationDetector, FrustrationScore
from crowddesk.nlu.person_request import PersonRequestDetector
from crowddesk.nlu.pipeline import NOT_UNDERSTOOD_INTENT, NLUPipeline, Understanding
from crowddesk.nlu.types import IntentScore, Parse

logger = logging.getLogger(__name__)

# Intents of the ranking the dialogue is asked about: the rest are too unlikely to matter.
MAX_RANKED_INTENTS = 10

# A message the models failed on goes to a person, with nothing understood of it.
UNREADABLE_HANDOFF = Decision(DecisionKind.HAND_OFF, 0.0, handoff_reason=HandoffReason.UNREADABLE)


def _unread(text: str) -> Understanding:
    """What is known of a message the models failed on: its text, no intent, no vector."""
    nothing = IntentScore(NOT_UNDERSTOOD_INTENT, 0.0)
    return Understanding(Parse(text, nothing, [nothing]), None, False)


@dataclass(frozen=True)
class TurnSummary:
    """What one stored turn was, for observers outside the dialogue (the server's metrics)."""

    channel: str
    decision: DecisionKind | None  # None: a person owns the conversation, or an interceptor replied
    handoff_reason: str | None  # the `HandoffReason` value of the ticket the turn opened
    seconds: float  # wall time of `Engine.handle`, waiting for the conversation's lock included


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


class Engine:
    """The message flow of one turn (README, "How a message flows"): interceptors, NLU and the
    knowledge base, the support policy's decision, its executor, one transaction."""

    def __init__(
        self,
        *,
        domain: Domain,
        nlu: NLUPipeline,
        knowledge_base: KnowledgeBase,
        policy: SupportPolicy,
        store: ConversationStore,
        dialogue: DialoguePolicies,
        actions: ActionClient | None,
        tickets: TicketDesk,
        wait_estimator: WaitEstimator,
        max_message_chars: int = 4000,
        redactor: Redactor | None = None,
        turn_locks: TurnLocks | None = None,
    ) -> None:
        """`turn_locks`: how turns of one conversation take turns (default: within this process)."""
        self.domain = domain
        self.encoder_cache = CachedEncoder(BatchingEncoder(nlu.encoder))
        self.nlu = NLUPipeline(self.encoder_cache, nlu.classifier, nlu.entities)
        self.knowledge_base = knowledge_base
        self.policy = policy
        self.store = store
        self.dialogue = dialogue
        self.actions = actions  # the action server's client, closed with the bot
        self.wait_estimator = wait_estimator
        settings = policy.settings
        self.frustration = FrustrationDetector(
            settings.handoff.frustration.extra_phrases,
            repeat_similarity=settings.handoff.frustration.repeat_similarity,
        )
        self.person_request = PersonRequestDetector(settings.handoff.person_request.extra_phrases)
        self.max_message_chars = max_message_chars
        self.renderer = ResponseRenderer(domain)
        self.slots = SlotFiller(domain)
        custom_actions = CustomActions(actions, domain, self.renderer)
        forms = Forms(domain, self.renderer, self.slots, custom_actions)
        self.interceptors: tuple[TurnInterceptor, ...] = (RatingAnswer(tickets), AnswerFeedback(settings.feedback))
        self.executors: dict[DecisionKind, Executor] = {
            DecisionKind.ANSWER_FROM_KB: AnswerFromKB(
                knowledge_base, KBAnswers(domain, self.renderer, settings.feedback)
            ),
            DecisionKind.RESPOND: FollowDialogue(
                dialogue, DialogueActions(domain, self.renderer, forms, custom_actions)
            ),
            DecisionKind.CLARIFY: Clarify(self.renderer, settings.handoff_intents),
            DecisionKind.REPHRASE: Rephrase(self.renderer),
            DecisionKind.HAND_OFF: HandOff(
                self.renderer, policy, knowledge_base, SlaTargets(settings.handoff.sla), wait_estimator
            ),
        }
        # config.yml privacy.redact_transcripts; `redactor` carries the project's redact_patterns.
        redactor = redactor or Redactor()
        self.transcripts = TranscriptRedactor(redactor) if settings.privacy.redact_transcripts else None
        self.public_posts = PublicPostRule(settings.public_posts, redactor)
        self.turn_locks = turn_locks or LocalTurnLocks()

    def check(self, message: InboundMessage) -> None:
        if not message.text.strip():
            raise MessageRejected("message is empty")
        if len(message.text) > self.max_message_chars:
            raise MessageTooLong(f"message is {len(message.text)} characters; the limit is {self.max_message_chars}")

    async def handle(
        self,
        message: InboundMessage,
        *,
        outbox: Outbox | None = None,
        on_turn: Callable[[TurnSummary], None] | None = None,
        deliveries: SeenMessages | None = None,
    ) -> list[OutboundMessage]:
        """Process one customer message; returns the bot's replies (none while a human owns it).

        With `outbox`, the replies are also queued there in the transaction that stores the turn.
        `on_turn` hears what each stored turn decided (the server's metrics); it must not raise.
        With `deliveries`, a message whose `message_id` was processed before raises
        `AlreadyDelivered`, and the id is recorded with the turn.
        """
        self.check(message)
        started = time.perf_counter()
        async with self.turn_locks.hold(message.sender_id):
            record, history = await asyncio.to_thread(self._conversation_unless_delivered, message, deliveries)
            if record is not None and record.channel != message.channel:
                raise channel_conflict(message.sender_id, record.channel, message.channel)
            turn = Turn(
                message=message,
                record=record,
                slots=self.slots.initial(record),
                failed_turns=record.failed_turns if record else 0,
                history=history,
                outbox=outbox,
                initial_slots=self.slots.initial(None),
            )
            if deliveries is not None and message.message_id is not None:  # stored with the turn, or not at all
                turn.writes.append(partial(deliveries.record, message.channel, message.message_id))
            self._maybe_start_session(turn)
            decision = await self._run(turn, record)
        if on_turn is not None:
            on_turn(
                TurnSummary(
                    message.channel,
                    decision,
                    turn.handoff.reason if turn.handoff else None,
                    time.perf_counter() - started,
                )
            )
        return turn.replies

    def _conversation_unless_delivered(
        self, message: InboundMessage, deliveries: SeenMessages | None
    ) -> tuple[ConversationRecord | None, list[dict[str, Any]]]:
        """The stored conversation and its events (`ConversationStore.for_turn`), read under the
        turn lock in one worker-thread hop; `AlreadyDelivered` if this delivery's turn was stored."""
        delivery = message.message_id
        if deliveries is not None and delivery is not None and deliveries.seen(message.channel, delivery):
            raise AlreadyDelivered(message.channel, delivery)
        return self.store.for_turn(message.sender_id)

    async def _run(self, turn: Turn, record: ConversationRecord | None) -> DecisionKind | None:
        """Answer and store the turn; the kind of the decision made for it (None: nobody decided)."""
        if record is not None and record.owner != ConversationOwner.BOT:
            await self._pass_to_owner(turn, record)
            return None
        for interceptor in self.interceptors:
            intercepted = await interceptor.intercept(turn)
            if intercepted is not None:
                await self._finish_intercepted(turn, intercepted)
                return None if intercepted.decision is None else intercepted.decision.kind
        return await self._understand_and_act(turn)

    async def _pass_to_owner(self, turn: Turn, record: ConversationRecord) -> None:
        """A human owns the conversation: the message joins the ticket, the bot stays quiet."""
        turn.add_user(parse_data=None)
        await self._save(turn, owner=record.owner, latest=record.latest_message)

    async def _finish_intercepted(self, turn: Turn, intercepted: Intercepted) -> None:
        parse = intercepted.parse
        turn.add_user(parse.as_rasa())
        self._extract_slots(turn)
        if intercepted.decision is not None:
            await self._execute(turn, Understood(parse, []), intercepted.decision)
        else:
            for name in intercepted.replies:
                if self.renderer.has(name):
                    turn.utter(name, Decision(DecisionKind.RESPOND, 1.0), turn.render(self.renderer, name))
        await self._finish(turn, parse)

    async def _understand_and_act(self, turn: Turn) -> DecisionKind:
        message = turn.message
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
        turn.add_user({**parse.as_rasa(), "kb_candidates": [c.as_dict() for c in candidates]})
        answered = answered_automatically(turn.history)
        frustration = FrustrationScore(())
        if unreadable:
            decision = UNREADABLE_HANDOFF
        else:
            answers_form = self._extract_slots(turn)
            frustration = self._frustration(turn, understanding.from_payload)
            context = ConversationContext(
                turn.failed_turns,
                answered,
                frustration,
                self._person_request(message.text, understanding.from_payload),
                respondable=await asyncio.to_thread(  # replays the conversation: off the event loop
                    self.dialogue.respondable,
                    turn.transcript(),
                    [score.name for score in parse.intent_ranking[:MAX_RANKED_INTENTS]],
                ),
                answers_form=answers_form,
            )
            decision = self.policy.decide(parse, candidates, context, from_button=understanding.from_payload)
        decision = self.public_posts.escalate(message, frustration, decision)  # a post that could go viral
        await self._execute(turn, Understood(parse, candidates), decision)
        await self._finish(turn, parse)
        return decision.kind

    def _extract_slots(self, turn: Turn) -> bool:
        """Fill slots from the message by the domain's mappings (Rasa's `action_extract_slots`);
        True when it answers what the active form asks."""
        tracker = DialogueTracker.replay(self.domain, turn.transcript())
        extracted = self.slots.extract(tracker)
        for event in extracted:
            turn.apply(event)
        return answers_form(self.domain, tracker, extracted)

    async def _execute(self, turn: Turn, understood: Understood, decision: Decision) -> None:
        """Run the decision's executor, then whatever it hands on to (at most a hand-off)."""
        next_decision: Decision | None = decision
        while next_decision is not None:
            next_decision = await self.executors[next_decision.kind](turn, understood, next_decision)

    async def _finish(self, turn: Turn, parse: Parse) -> None:
        """Listen (unless the dialogue chose to already), then store the turn."""
        last = turn.events[-1] if turn.events else {}
        if (last.get("event"), last.get("name")) != ("action", ACTION_LISTEN):
            turn.add_action(ACTION_LISTEN)
        owner = ConversationOwner.QUEUED if turn.handoff else ConversationOwner.BOT
        # Under a public post, whatever is about the customer goes to them in private.
        turn.replies = self.public_posts.deliver(turn.message, turn.replies, handed_off=turn.handoff is not None)
        await self._save(turn, owner=owner, latest=parse.as_rasa())

    def _frustration(self, turn: Turn, from_payload: bool) -> FrustrationScore:
        """Frustration in the customer's words; a button press says nothing about it."""
        settings = self.policy.settings.handoff.frustration
        if from_payload or not settings.enabled:
            return FrustrationScore(())
        earlier = [str(event.get("text") or "") for event in turn.history if event["event"] == "user"]
        return self.frustration.score(turn.message.text, earlier[-settings.history_messages :])

    def _person_request(self, text: str, from_payload: bool) -> str:
        """The customer's words asking for a person; a button press says what it selects."""
        if from_payload or not self.policy.settings.handoff.person_request.enabled:
            return ""
        return self.person_request.find(text)

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

    def _maybe_start_session(self, turn: Turn) -> None:
        record = turn.record
        expiry_minutes = self.domain.session_config.session_expiration_time
        expired = (
            record is not None
            and expiry_minutes > 0
            and (time.time() - record.updated_at.timestamp()) > expiry_minutes * 60
        )
        if record is None or expired:
            carry_over = expired and self.domain.session_config.carry_over_slots_to_new_session
            if not carry_over:
                turn.slots = self.slots.initial(None)
            # Rasa's action_session_start: a fresh session, the slots carried over, then listen.
            turn.add("action", name="action_session_start")
            turn.add("session_started")
            for name, value in turn.slots.items() if carry_over else ():
                if value is not None and value != turn.initial_slots.get(name):
                    turn.add("slot", name=name, value=value)
            turn.add("action", name=ACTION_LISTEN)

    async def _save(self, turn: Turn, *, owner: str, latest: dict[str, Any] | None) -> None:
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
            await asyncio.to_thread(
                self.store.record_turn,
                turn.sender_id,
                turn.channel,
                turn.events,
                turn.slots,
                turn.failed_turns,
                owner,
                latest,
                turn.handoff,
                partial(_write_all, writes) if writes else None,
                first_answer(turn.events),
                # Stored only if no other turn was since this one read the conversation: fences
                # a turn whose lock lapsed (a process that stalled past the lock's lifetime).
                turn.record.turns if turn.record is not None else 0,
            )
        except ChannelConflict as conflict:  # another process created it through another channel
            raise channel_conflict(turn.sender_id, conflict.owner, turn.channel) from None


def _write_all(writes: list[Callable[[Session], Any]], session: Session) -> None:
    for write in writes:
        write(session)
