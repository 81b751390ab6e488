"""One decision per message: respond by rule, answer from the KB, clarify, or hand off.

The policy sees calibrated confidences only: intent probabilities from the classifier and
retriever scores mapped to probabilities by the calibration `crowddesk train` fits. Both are
"how likely is this answer right", so one threshold (chosen on held-out folds for the target
precision) governs every automated reply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from enum import Enum

import numpy as np

from crowddesk.bot.project.config import PolicySettings
from crowddesk.knowledge_base.types import Candidate
from crowddesk.nlu.frustration import FrustrationScore
from crowddesk.nlu.types import Parse

# Rasa's conventional intent for "no"; after an automated answer it means the answer missed.
DENY_INTENT = "deny"
# Clarification buttons for KB entries without an intent carry `/kb{"entry_id": "<id>"}`.
KB_PAYLOAD_INTENT = "kb"


class DecisionKind(str, Enum):
    RESPOND = "respond"  # follow the rule for the intent (responses and/or custom actions)
    ANSWER_FROM_KB = "answer_from_kb"
    CLARIFY = "clarify"
    HAND_OFF = "hand_off"
    REPHRASE = "rephrase"  # the customer said the last answer was wrong: ask again


class HandoffReason(str, Enum):
    OUT_OF_SCOPE = "out_of_scope"
    LOW_CONFIDENCE = "low_confidence"
    CUSTOMER_REQUEST = "customer_request"
    FAILED_TURNS = "failed_turns"
    ACTION_FAILED = "action_failed"
    NOT_COVERED = "not_covered"  # no rule, story or form of the project says what to do next
    PAUSED = "paused"  # a custom action paused the conversation (Rasa's ConversationPaused)
    UNREADABLE = "unreadable"  # the models failed on this message alone: a person reads it
    FRUSTRATION = "frustration"
    ALWAYS_HUMAN = "always_human"  # an intent configured in `always_human_intents`
    PUBLIC_POST = "public_post"  # a public post that could go viral (`crowddesk.bot.dialogue.public_posts`)


@dataclass(frozen=True)
class Option:
    """Something the bot could do with a message: follow an intent's rule or serve a KB entry."""

    kind: str  # "intent" or "kb"
    key: str  # intent name or KB entry id
    title: str
    confidence: float
    intent: str | None = None  # the retrieval intent a KB entry answers, if any

    @property
    def payload(self) -> str:
        """A Rasa-style button payload that selects this option without NLU."""
        if self.kind == "intent":
            return f"/{self.key}"
        if self.intent:
            return f"/{self.intent}"
        return f'/{KB_PAYLOAD_INTENT}{{"entry_id": "{self.key}"}}'


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    confidence: float
    option: Option | None = None
    options: tuple[Option, ...] = ()
    handoff_reason: HandoffReason | None = None
    counts_as_failure: bool = False
    handoff_detail: str = ""  # why, for the agent (e.g. which frustration rules fired)
    priority_reasons: tuple[str, ...] = ()  # why the ticket jumps the queue, whatever the reason


@dataclass(frozen=True)
class Thresholds:
    """Chosen by `crowddesk train` on held-out folds; stored in the model artifact."""

    answer: float
    clarify_floor: float


@dataclass(frozen=True)
class RetrieverCalibration:
    """Piecewise-linear map from a retriever score to P(the entry is the right answer)."""

    scores: tuple[float, ...]
    probabilities: tuple[float, ...]

    def __call__(self, score: float) -> float:
        if not self.scores:
            return 0.0
        return float(np.interp(score, self.scores, self.probabilities))


@dataclass(frozen=True)
class ConversationContext:
    failed_turns: int
    last_answer_was_automated: bool
    frustration: FrustrationScore = FrustrationScore(())
    person_request: str = ""  # the customer's words asking for a person, if any
    respondable: frozenset[str] | None = None
    """Intents the project's dialogue has a next action for at this point of the conversation
    (None: every intent some rule or story handles)."""
    answers_form: bool = False
    """The message filled a slot the active form asks for: the form goes on, whatever its intent."""


class SupportPolicy:
    """Turns a parse and KB candidates into exactly one `Decision`."""

    def __init__(
        self,
        settings: PolicySettings,
        thresholds: Thresholds,
        retriever_calibration: RetrieverCalibration,
        *,
        dialogue_intents: Sequence[str],
        entry_intents: Mapping[str, str],
        entry_titles: Mapping[str, str],
        intent_titles: Mapping[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.thresholds = thresholds
        self.retriever_calibration = retriever_calibration
        # Intents some rule or story of the project responds to.
        self.dialogue_intents = frozenset(dialogue_intents)
        # A retrieval intent (faq/x) and the KB entry imported from it are one answer.
        self._entry_for_intent = {intent: entry for entry, intent in entry_intents.items()}
        self._entry_intents = dict(entry_intents)
        self._entry_titles = dict(entry_titles)
        self._intent_titles = dict(intent_titles or {})

    def options(self, parse: Parse, candidates: Sequence[Candidate]) -> list[Option]:
        """Every answer the bot could give, best first, with calibrated confidences."""
        best: dict[tuple[str, str], Option] = {}

        def offer(option: Option) -> None:
            known = best.get((option.kind, option.key))
            if known is None or option.confidence > known.confidence:
                best[(option.kind, option.key)] = option

        if parse.intent.name == KB_PAYLOAD_INTENT:
            for entity in parse.entities:
                if entity.entity == "entry_id":
                    key = str(entity.value)
                    offer(Option("kb", key, self._entry_titles.get(key, key), parse.intent.confidence))
            return list(best.values())
        # The classifier only knows the intents it was trained on: an entry without an intent (one
        # approved from hand-offs after training, or imported from a community) is outside its
        # answer set. Its probabilities hold given that the answer is among its intents, so each
        # is discounted by the chance that the best such entry is the answer instead.
        calibrated = [(candidate, self.retriever_calibration(candidate.score)) for candidate in candidates]
        outside = max(
            (probability for c, probability in calibrated if c.entry_id not in self._entry_intents), default=0.0
        )
        for score in parse.intent_ranking:
            confidence = score.confidence * (1.0 - outside)
            entry_id = self._entry_for_intent.get(score.name)
            if entry_id is not None:
                title = self._entry_titles.get(entry_id, entry_id)
                offer(Option("kb", entry_id, title, confidence, score.name))
            else:
                title = self._intent_titles.get(score.name, score.name)
                offer(Option("intent", score.name, title, confidence))
        classifier_votes = {key: o.confidence for key, o in best.items()}
        retriever_votes: dict[tuple[str, str], float] = {}
        for candidate, probability in calibrated:
            option = Option(
                "kb",
                candidate.entry_id,
                candidate.title,
                probability,
                self._entry_intents.get(candidate.entry_id),
            )
            retriever_votes[("kb", option.key)] = option.confidence
            offer(option)
        return sorted(
            (
                _with_both_votes(o, classifier_votes.get(key, 0.0), retriever_votes.get(key, 0.0))
                for key, o in best.items()
            ),
            key=lambda o: o.confidence,
            reverse=True,
        )

    def has_evidence(self, confidence: float) -> bool:
        """Whether an option is likely enough to show anyone: in a clarification or to an agent."""
        return confidence > 0.0 and confidence >= self.thresholds.clarify_floor

    def decide(
        self,
        parse: Parse,
        candidates: Sequence[Candidate],
        context: ConversationContext,
        *,
        from_button: bool = False,
    ) -> Decision:
        s = self.settings
        ranked = self.options(parse, candidates)
        top = ranked[0] if ranked else None
        confidence = top.confidence if top else 0.0

        forced = self._forced_handoff(top, confidence, context)
        if forced is not None:
            return forced
        if context.answers_form:
            return Decision(DecisionKind.RESPOND, 1.0, top)

        if top is not None and (from_button or confidence >= self.thresholds.answer):
            if top.kind == "kb":
                return Decision(DecisionKind.ANSWER_FROM_KB, confidence, top)
            if top.key == DENY_INTENT and context.last_answer_was_automated:
                return self._after_failure(
                    context, Decision(DecisionKind.REPHRASE, confidence, top, counts_as_failure=True)
                )
            if self.responds_to(top.key, context):
                return Decision(DecisionKind.RESPOND, confidence, top)

        answerable = [
            o
            for o in ranked
            if (o.kind == "kb" or self.responds_to(o.key, context))
            and o.key not in s.handoff_intents
            and o.key not in s.always_human_intents
            and o.key != s.out_of_scope_intent
        ]
        # "Did you mean ...?" with the best option and any close runners-up; the customer's
        # pick is cheap to correct, so this needs less confidence than answering outright.
        choices = tuple(
            o
            for o in answerable[: s.max_clarify_options]
            if self.has_evidence(o.confidence) and answerable[0].confidence - o.confidence <= s.clarify_margin
        )
        if choices:
            return self._after_failure(
                context,
                Decision(DecisionKind.CLARIFY, confidence, top, options=choices, counts_as_failure=True),
            )
        return Decision(DecisionKind.HAND_OFF, confidence, top, handoff_reason=HandoffReason.LOW_CONFIDENCE)

    def responds_to(self, intent: str, context: ConversationContext) -> bool:
        """Whether the project's dialogue has something to do for `intent` here."""
        respondable = self.dialogue_intents if context.respondable is None else context.respondable
        return intent in respondable

    def _forced_handoff(self, top: Option | None, confidence: float, context: ConversationContext) -> Decision | None:
        """Hand-offs that no confidence overrides, most specific reason first."""
        s = self.settings
        intent = top.key if top is not None and top.kind == "intent" else None
        reason = None
        if context.person_request:  # asked in so many words, whatever the classifier ranked first
            return Decision(
                DecisionKind.HAND_OFF,
                confidence,
                top,
                handoff_reason=HandoffReason.CUSTOMER_REQUEST,
                handoff_detail=f'asked: "{context.person_request}"',
            )
        # The project's own rule or story for a hand-off or out-of-scope intent comes first.
        own_rule = intent is not None and self.responds_to(intent, context)
        if intent in s.handoff_intents and not own_rule:
            reason = HandoffReason.CUSTOMER_REQUEST
        elif intent in s.always_human_intents:
            reason = HandoffReason.ALWAYS_HUMAN
        elif s.handoff.frustration.enabled and context.frustration.points >= s.handoff.frustration.threshold:
            return Decision(
                DecisionKind.HAND_OFF,
                confidence,
                top,
                handoff_reason=HandoffReason.FRUSTRATION,
                handoff_detail=context.frustration.explain(),
            )
        elif intent == s.out_of_scope_intent and not own_rule:
            reason = HandoffReason.OUT_OF_SCOPE
        if reason is None:
            return None
        return Decision(DecisionKind.HAND_OFF, confidence, top, handoff_reason=reason)

    def _after_failure(self, context: ConversationContext, decision: Decision) -> Decision:
        """A clarification or a rejected answer is a failed turn; too many in a row go to a human."""
        if context.failed_turns + 1 >= self.settings.max_failed_turns:
            return Decision(
                DecisionKind.HAND_OFF, decision.confidence, decision.option, handoff_reason=HandoffReason.FAILED_TURNS
            )
        return decision


def _with_both_votes(option: Option, classifier: float, retriever: float) -> Option:
    """`option`, with one confidence from both voters when the classifier and the retriever both
    back it (a KB entry with a retrieval intent).

    Two voters pointing at the same entry is stronger evidence than either alone, and a topic the
    bot has never seen usually pulls them to different neighbours: the confidence becomes
    1 - (1 - classifier)(1 - retriever), the chance that not both are wrong if they erred apart.
    They do not err apart, so this is a score rather than a probability; the answer threshold
    and clarify floor are chosen on it over held-out traffic, which keeps what they promise true.
    """
    if option.kind == "kb" and option.intent is not None and classifier > 0 and retriever > 0:
        return replace(option, confidence=1 - (1 - classifier) * (1 - retriever))
    return option
