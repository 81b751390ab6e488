"""Carrying out a decision, one executor per kind: answer from the knowledge base, follow the
project's dialogue (rules, stories, forms), clarify, ask to rephrase, hand off. An executor that
can't do its part returns the decision to carry out instead (a hand-off, with the reason); None
when the turn is done."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Protocol

from crowddesk.bot.desk.wait_estimate import WaitEstimator
from crowddesk.bot.dialogue.action_client import ActionServerError
from crowddesk.bot.dialogue.actions import DialogueActions
from crowddesk.bot.dialogue.handoff import SlaTargets, build_handoff
from crowddesk.bot.dialogue.kb_feedback import KBAnswers
from crowddesk.bot.dialogue.last_action import ANSWER_ACTION
from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies, record_action
from crowddesk.bot.dialogue.policy import Decision, DecisionKind, HandoffReason, SupportPolicy
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.responses import ResponseRenderer
from crowddesk.connectors.types import Button, OutboundMessage
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.types import Candidate, KBEntry
from crowddesk.knowledge_base.usage import count_served
from crowddesk.nlu.types import Parse

logger = logging.getLogger(__name__)

# The last button of every clarifying question: none of the guesses fits, get a person.
SOMETHING_ELSE = "Something else: talk to a person"
# The action a clarifying question is recorded as (the scorecard and the gap report count it).
CLARIFY_ACTION = "action_clarify"
# What a hand-off says when the domain has no `utter_handoff`.
DEFAULT_HANDOFF_TEXT = "I'm passing your message to a person on our team; they will answer you here."
# Actions one message may lead to before the turn stops listening anyway (Rasa's default).
MAX_ACTIONS_PER_TURN = 10


@dataclass(frozen=True)
class Understood:
    """What the turn understood of the customer's message."""

    parse: Parse
    candidates: list[Candidate]


class Executor(Protocol):
    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None: ...


def redirect(decision: Decision, reason: HandoffReason) -> Decision:
    """`decision` turned into a hand-off for `reason`, keeping what was chosen and how surely."""
    return Decision(DecisionKind.HAND_OFF, decision.confidence, decision.option, handoff_reason=reason)


def searched_entry(knowledge_base: KnowledgeBase, entry_id: str) -> KBEntry | None:
    """The entry as the index that found it holds it: published when the index was built
    (LiveIndex swaps in a new one within seconds of a change), no database read."""
    try:
        return knowledge_base.retriever.entry(entry_id)
    except KeyError:
        return None


@dataclass
class AnswerFromKB:
    knowledge_base: KnowledgeBase
    answers: KBAnswers

    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None:
        entry = None if decision.option is None else searched_entry(self.knowledge_base, decision.option.key)
        if entry is None:  # withdrawn since the index found it
            return redirect(decision, HandoffReason.LOW_CONFIDENCE)
        reply = self.answers.message(turn, entry, decision.confidence)
        turn.utter(ANSWER_ACTION, decision, reply)
        turn.writes.append(partial(count_served, entry_id=entry.id))
        turn.failed_turns = 0
        return None


@dataclass
class FollowDialogue:
    """The project's rules, stories and forms: the next action, again and again, until the
    dialogue listens. When they have nothing to say, a person answers instead."""

    policies: DialoguePolicies
    actions: DialogueActions

    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None:
        ran = 0
        for _ in range(MAX_ACTIONS_PER_TURN):
            chosen = await asyncio.to_thread(self.policies.predict, turn.transcript())
            if chosen is None:
                break
            if chosen.action == ACTION_LISTEN:
                if ran:  # recorded as chosen: a rule's listen may be hidden from the stories
                    record_action(turn, chosen)
                break
            try:
                ran += await self.actions.run(turn, chosen)
            except ActionServerError as exc:
                logger.error("custom action failed for %s: %s", turn.sender_id, exc)
                return redirect(decision, HandoffReason.ACTION_FAILED)
        else:
            logger.warning("%s: stopped after %d actions in one turn", turn.sender_id, MAX_ACTIONS_PER_TURN)
        if not ran:
            return redirect(decision, HandoffReason.NOT_COVERED)
        if DialogueTracker.replay(self.policies.domain, turn.transcript()).paused:
            # Rasa's ConversationPaused stops the bot until someone resumes it: here, a person.
            return redirect(decision, HandoffReason.PAUSED)
        turn.failed_turns = 0
        return None


@dataclass
class Clarify:
    """Offers the likeliest readings as buttons, and a person as the last one."""

    renderer: ResponseRenderer
    handoff_intents: list[str]

    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None:
        text = (
            turn.render(self.renderer, "utter_clarify").text
            if self.renderer.has("utter_clarify")
            else "Did you mean one of these?"
        )
        buttons = [Button(o.title, o.payload) for o in decision.options]
        if self.handoff_intents:
            buttons.append(Button(SOMETHING_ELSE, f"/{self.handoff_intents[0]}"))
        turn.utter(CLARIFY_ACTION, decision, OutboundMessage(turn.sender_id, text, tuple(buttons)))
        turn.failed_turns += 1
        return None


@dataclass
class Rephrase:
    """The customer said the last answer was wrong: ask again."""

    renderer: ResponseRenderer

    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None:
        reply = (
            turn.render(self.renderer, "utter_default")
            if self.renderer.has("utter_default")
            else OutboundMessage(turn.sender_id, "Sorry, I didn't get that. Could you rephrase?")
        )
        turn.utter("action_default_fallback", decision, reply)
        turn.failed_turns += 1
        return None


@dataclass
class HandOff:
    """Tells the customer a person will answer (and about when), and opens the ticket with the
    packet an agent needs: transcript, reason, SLA, the KB answers with real evidence."""

    renderer: ResponseRenderer
    policy: SupportPolicy
    knowledge_base: KnowledgeBase
    sla: SlaTargets
    wait_estimator: WaitEstimator

    async def __call__(self, turn: Turn, understood: Understood, decision: Decision) -> Decision | None:
        sender = turn.sender_id
        reply_name = (
            "utter_out_of_scope"
            if decision.handoff_reason is HandoffReason.OUT_OF_SCOPE and self.renderer.has("utter_out_of_scope")
            else "utter_handoff"
        )
        if self.renderer.has(reply_name):
            turn.utter(reply_name, decision, turn.render(self.renderer, reply_name))
        else:  # never silence: the customer learns a person will answer
            turn.utter(reply_name, decision, OutboundMessage(sender, DEFAULT_HANDOFF_TEXT))
        turn.handoff = build_handoff(
            sender_id=sender,
            channel=turn.channel,
            parse=understood.parse,
            decision=decision,
            candidates=self._considered(understood),
            events=turn.transcript(),
            sla=self.sla,
        )
        if self.renderer.has("utter_handoff_queued"):
            wait = await asyncio.to_thread(self.wait_estimator.estimate, turn.handoff.due_at, datetime.now(UTC))
            queued = turn.render(self.renderer, "utter_handoff_queued", wait_minutes=str(wait))
            turn.utter("utter_handoff_queued", decision, queued)
        turn.add(
            "handoff",
            reason=turn.handoff.reason,
            priority=turn.handoff.priority,
            due_at=turn.handoff.due_at.isoformat(),
        )
        turn.failed_turns = 0
        return None

    def _considered(self, understood: Understood) -> list[tuple[Candidate, float, KBEntry | None]]:
        """The candidates with real evidence, by the confidence a clarification would give them
        (classifier and retriever together): "five answers at 0 %" for an unrelated question is
        noise that hides the ticket's content."""
        confidence_of = {
            o.key: o.confidence for o in self.policy.options(understood.parse, understood.candidates) if o.kind == "kb"
        }
        return [
            (candidate, confidence, searched_entry(self.knowledge_base, candidate.entry_id))
            for candidate in understood.candidates
            if self.policy.has_evidence(confidence := confidence_of.get(candidate.entry_id, 0.0))
        ]
