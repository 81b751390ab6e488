"""The project's dialogue policies together: trained from its stories and rules, asked for the
next action of a conversation. A custom action's FollowupAction comes first, then rules (and a
form's happy path), remembered story turns, and the learned policy, as Rasa's policy priorities
order them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from crowddesk.bot.dialogue.policies.learned import LearnedPolicy
from crowddesk.bot.dialogue.policies.memoization import MemoizationPolicy
from crowddesk.bot.dialogue.policies.rules import RuleConflict, RulePolicy
from crowddesk.bot.dialogue.policies.states import examples
from crowddesk.bot.dialogue.policies.training_events import rule_events, story_events
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, Event, story_states, track
from crowddesk.bot.dialogue.turn import Turn
from crowddesk.bot.project.config import PolicySettings
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.story_graph import linear_stories, without_alternatives
from crowddesk.bot.project.training_data import Rule, Story

# The learned policy's bar when none is given: the default answer precision target.
DEFAULT_TARGET_PRECISION = PolicySettings().target_precision


@dataclass(frozen=True)
class NextAction:
    """The action to run next, which policy chose it, and how surely (1.0 for rules and
    remembered turns, which either match or don't)."""

    action: str
    policy: str
    confidence: float
    loop_was_interrupted: bool = False
    hide_rule_turn: bool = False
    """Chosen by a rule no story shows: the story-based policies look past this turn."""


@dataclass
class DialoguePolicies:
    domain: Domain
    rules: RulePolicy
    memoization: MemoizationPolicy
    learned: LearnedPolicy | None = None

    @classmethod
    def train(
        cls,
        domain: Domain,
        stories: Iterable[Story],
        rules: Iterable[Rule],
        *,
        max_history: int | None = None,
        target_precision: float = DEFAULT_TARGET_PRECISION,
    ) -> DialoguePolicies:
        """`target_precision`: how often the learned policy must be right, on held-out stories,
        at the confidence it acts on."""
        expanded = linear_stories(stories).stories
        linear = [story_events(domain, story.steps) for story in expanded]
        numbered = [(number, example) for number, events in enumerate(linear) for example in examples(domain, events)]
        story_examples = [example for _, example in numbered]
        rule_examples = [
            (rule, example)
            for rule in rules
            for steps in without_alternatives(rule.steps)
            for example in examples(domain, rule_events(domain, rule, steps), omit_unset_slots=True)
        ]
        rules_policy = RulePolicy.train(rule_examples, story_examples)
        for story, events in zip(expanded, linear, strict=True):
            rules_policy.check_story(story.name, events, domain)
        return cls(
            domain,
            rules_policy,
            MemoizationPolicy.train(story_examples, max_history),
            LearnedPolicy.train(numbered, target_precision),
        )

    @property
    def rule_conflicts(self) -> list[RuleConflict]:
        return self.rules.conflicts

    def predict(self, events: Sequence[Event]) -> NextAction | None:
        """The next action after `events` (a conversation's Rasa events), or None when no rule
        or story covers this situation."""
        tracker, states = track(self.domain, events)
        if tracker.followup_action:
            return NextAction(tracker.followup_action, "FollowupAction", 1.0)
        # An action that just refused the message (a form) is not chosen again by any policy.
        rejected = events[-1].get("name") if events and events[-1].get("event") == "action_execution_rejected" else None
        by_rule = self.rules.predict(tracker, states)
        if by_rule is not None and by_rule.action != rejected:
            hidden = by_rule.source not in self.rules.shown_in_stories
            return NextAction(by_rule.action, "RulePolicy", 1.0, by_rule.loop_was_interrupted, hidden)
        shown = story_states(self.domain, events)
        remembered = self.memoization.predict(shown)
        if remembered is not None and remembered != rejected:
            chosen = NextAction(remembered, "MemoizationPolicy", 1.0)
        else:
            learned = None if self.learned is None else self.learned.predict(shown)
            if learned is None or learned.action == rejected:
                return None
            chosen = NextAction(learned.action, "LearnedPolicy", learned.confidence)
        if chosen.action == tracker.active_loop_name:  # the rules' word on an interrupted form holds
            return replace(chosen, loop_was_interrupted=self.rules.loop_was_interrupted(tracker, states))
        return chosen

    def respondable(self, events: Sequence[Event], intents: Iterable[str]) -> frozenset[str]:
        """Which of `intents`, had the latest message been that intent, some action would follow."""
        found = set()
        for intent in intents:
            chosen = self.predict(_with_latest_intent(events, intent))
            if chosen is not None and chosen.action != ACTION_LISTEN:
                found.add(intent)
        return frozenset(found)


def record_action(turn: Turn, chosen: NextAction) -> None:
    """Record that the bot ran the chosen action (Rasa's ActionExecuted)."""
    turn.add_action(chosen.action, chosen.policy, chosen.confidence, hide_rule_turn=chosen.hide_rule_turn)


def _with_intent(message: Event, intent: str) -> Event:
    parse = message.get("parse_data") or {}
    return {**message, "parse_data": {**parse, "intent": {"name": intent, "confidence": 1.0}}}


def _with_latest_intent(events: Sequence[Event], intent: str) -> list[Event]:
    """`events` with the latest user message read as `intent`."""
    index = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=None)
    if index is None:
        return list(events)
    return [*events[:index], _with_intent(events[index], intent), *events[index + 1 :]]
