"""The project's dialogue policies together: trained from its stories and rules, asked for the
next action of a conversation. Rules (and a form's happy path) come first, then remembered
story turns, as Rasa's policy priorities order them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from crowddesk.bot.dialogue.policies.memoization import MemoizationPolicy
from crowddesk.bot.dialogue.policies.rules import RuleConflict, RulePolicy
from crowddesk.bot.dialogue.policies.states import Example, examples
from crowddesk.bot.dialogue.policies.training_events import rule_events, story_events, without_alternatives
from crowddesk.bot.dialogue.tracker import ACTION_LISTEN, DialogueTracker, Event, State, track
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.story_graph import linear_stories
from crowddesk.bot.project.training_data import Rule, Story


@dataclass(frozen=True)
class NextAction:
    """The action to run next, which policy chose it, and how surely (1.0 for rules and
    remembered turns, which either match or don't)."""

    action: str
    policy: str
    confidence: float
    loop_was_interrupted: bool = False


@dataclass
class DialoguePolicies:
    domain: Domain
    rules: RulePolicy
    memoization: MemoizationPolicy

    @classmethod
    def train(
        cls, domain: Domain, stories: Iterable[Story], rules: Iterable[Rule], *, max_history: int | None = None
    ) -> DialoguePolicies:
        story_examples = list(story_training_examples(domain, stories))
        rule_examples = [
            example
            for rule in rules
            for steps in without_alternatives(rule.steps)
            for example in examples(domain, rule_events(domain, rule, steps), omit_unset_slots=True)
        ]
        return cls(
            domain,
            RulePolicy.train(rule_examples, story_examples),
            MemoizationPolicy.train(story_examples, max_history),
        )

    @property
    def rule_conflicts(self) -> list[RuleConflict]:
        return self.rules.conflicts

    def predict(self, events: Sequence[Event]) -> NextAction | None:
        """The next action after `events` (a conversation's Rasa events), or None when no rule
        or story covers this situation."""
        return self._predict(*track(self.domain, events))

    def respondable(self, events: Sequence[Event], intents: Iterable[str]) -> frozenset[str]:
        """Which of `intents`, had the latest message been that intent, some action would follow."""
        tracker, states = track(self.domain, events)
        if tracker.latest_message is None:
            return frozenset()
        found = set()
        for intent in intents:
            alternative = replace(tracker, latest_message=_with_intent(tracker.latest_message, intent))
            user = {**states[-1].get("user", {}), "intent": intent}
            chosen = self._predict(alternative, [*states[:-1], {**states[-1], "user": user}])
            if chosen is not None and chosen.action != ACTION_LISTEN:
                found.add(intent)
        return frozenset(found)

    def _predict(self, tracker: DialogueTracker, states: list[State]) -> NextAction | None:
        if tracker.followup_action:
            return NextAction(tracker.followup_action, "FollowupAction", 1.0)
        by_rule = self.rules.predict(tracker, states)
        if by_rule is not None:
            return NextAction(by_rule.action, "RulePolicy", 1.0, by_rule.loop_was_interrupted)
        remembered = self.memoization.predict(states)
        if remembered is not None:
            return NextAction(remembered, "MemoizationPolicy", 1.0)
        return None

    def to_dict(self) -> dict[str, Any]:
        return {"rules": self.rules.to_dict(), "memoization": self.memoization.to_dict()}

    @classmethod
    def from_dict(cls, domain: Domain, data: dict[str, Any]) -> DialoguePolicies:
        return cls(domain, RulePolicy.from_dict(data["rules"]), MemoizationPolicy.from_dict(data["memoization"]))


def _with_intent(message: Event, intent: str) -> Event:
    parse = message.get("parse_data") or {}
    return {**message, "parse_data": {**parse, "intent": {"name": intent, "confidence": 1.0}}}


def story_training_examples(domain: Domain, stories: Iterable[Story]) -> Iterable[Example]:
    for story in linear_stories(stories).stories:
        yield from examples(domain, story_events(domain, story.steps))
