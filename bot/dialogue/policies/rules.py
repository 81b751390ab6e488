"""Rules as Rasa's RulePolicy runs them.

A rule becomes one example per action it takes: the states since its "…" snippet (or since the
conversation's start), holding only what the rule mentions. A conversation matches a rule when,
going back from now, each of the rule's states is contained in the conversation's state at that
turn; of several matching rules the most specific (longest) wins. Before rules come Rasa's default
actions (`/restart`, `/back`, `/session_start`) and an active form's happy path (run the form
until it is rejected); rules and stories written for a form's unhappy paths decide whether the
form runs again after an interruption.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from dataclasses import dataclass, field

from crowddesk.bot.dialogue.policies.states import Example
from crowddesk.bot.dialogue.tracker import (
    ACTION_LISTEN,
    RULE_SNIPPET_ACTION,
    SHOULD_NOT_BE_SET,
    DialogueTracker,
    Event,
    State,
    after_listen,
    state_key,
    track,
)
from crowddesk.bot.project.domain import Domain
from crowddesk.bot.project.training_data import Rule

DEFAULT_ACTIONS = {"restart": "action_restart", "back": "action_back", "session_start": "action_session_start"}
# Conditions on a form's unhappy path learned from rules and stories (Rasa's names).
LOOP_WAS_INTERRUPTED = "loop_was_interrupted"
DO_NOT_PREDICT_LOOP_ACTION = "do_not_predict_loop_action"


@dataclass(frozen=True)
class RulePrediction:
    action: str
    source: str
    """What decided: the matching rule's key, `default:<intent>` or `loop:<form>`."""
    loop_was_interrupted: bool = False
    """The form runs again after an answer to a different question: it mustn't validate it."""


@dataclass(frozen=True)
class RuleConflict:
    """A rule that, where another rule or a story does one thing, would do another (Rasa
    refuses to train such rules)."""

    rule: Rule
    other: str
    """The rule or story it contradicts: "rule 'name'" or "story 'name'"."""
    actions: tuple[str, str]
    """What the rule does there, and what the other does."""


@dataclass
class RulePolicy:
    lookup: dict[str, str] = field(default_factory=dict)
    owners: dict[str, Rule] = field(default_factory=dict)
    """The rule each key of `lookup` came from (the first, where several agree)."""
    loop_unhappy: dict[str, str] = field(default_factory=dict)
    conflicts: list[RuleConflict] = field(default_factory=list)
    shown_in_stories: set[str] = field(default_factory=set)
    """Sources (rule keys, `loop:…`, `default:…`) whose predictions some story also shows; the
    turns of the others are hidden from the story-based policies."""

    @classmethod
    def train(cls, rule_examples: Iterable[tuple[Rule, Example]], story_examples: Iterable[Example]) -> RulePolicy:
        """`rule_examples`: each rule's examples, built with unset slots omitted (a rule's state
        holds only what it says). Where two rules do different things in the same situation,
        neither is learned and both are reported."""
        rule_examples, story_examples = list(rule_examples), list(story_examples)
        lookup: dict[str, tuple[Rule, str]] = {}
        conflicts: list[RuleConflict] = []
        contradicted: set[str] = set()
        for rule, example in rule_examples:
            key = _snippet_key(example.states)
            if key is None or example.action == RULE_SNIPPET_ACTION:
                continue
            known = lookup.setdefault(key, (rule, example.action))
            if known[1] != example.action:
                conflicts.append(RuleConflict(rule, f"rule {known[0].name!r}", (example.action, known[1])))
                contradicted.add(key)
        kept = {key: owned for key, owned in lookup.items() if key not in contradicted}
        return cls(
            {key: action for key, (_, action) in kept.items()},
            {key: rule for key, (rule, _) in kept.items()},
            _loop_unhappy_lookup([example for _, example in rule_examples] + story_examples),
            conflicts,
        )

    def check_story(self, name: str, events: list[Event], domain: Domain) -> None:
        """Compare the rules with a story, action by action, as Rasa does before training: a
        rule's listening where the story goes on is dropped (the story shows it isn't the end);
        any other different action is a conflict. Sources the story shows are remembered."""
        for index, event in enumerate(events):
            if index == 0 or event.get("event") != "action":
                continue  # a conversation's first action is never predicted
            tracker, states = track(domain, events[:index])
            chosen = self.predict(tracker, states)
            if chosen is None:
                continue
            done = event.get("name") or event.get("action_text") or ""
            if chosen.action == done:
                self.shown_in_stories.add(chosen.source)
            elif chosen.action == ACTION_LISTEN and chosen.source in self.lookup:
                del self.lookup[chosen.source]
            elif chosen.source in self.owners:
                self.conflicts.append(
                    RuleConflict(self.owners[chosen.source], f"story {name!r}", (chosen.action, done))
                )

    def predict(self, tracker: DialogueTracker, states: list[State]) -> RulePrediction | None:
        """The next action by default actions, the active form's happy path, then the rules."""
        default = self._default_action(tracker)
        if default is not None:
            return default
        loop = self._loop_happy_path(tracker)
        if loop is not None:
            return loop
        return self._from_rules(tracker, states)

    @staticmethod
    def _default_action(tracker: DialogueTracker) -> RulePrediction | None:
        intent = tracker.latest_intent()
        if tracker.latest_action_name != ACTION_LISTEN or intent not in DEFAULT_ACTIONS:
            return None
        return RulePrediction(DEFAULT_ACTIONS[intent], f"default:{intent}")

    @staticmethod
    def _loop_happy_path(tracker: DialogueTracker) -> RulePrediction | None:
        loop = tracker.active_loop_name
        if loop is None or tracker.loop_rejected:
            return None
        if tracker.latest_action_name != loop:
            return RulePrediction(loop, f"loop:{loop}")
        return RulePrediction(ACTION_LISTEN, f"loop:{loop}:listen")

    def _from_rules(self, tracker: DialogueTracker, states: list[State]) -> RulePrediction | None:
        keys = _applicable(self.lookup, states)
        best = max(keys, key=len) if keys else ""
        action = self.lookup.get(best) if best else None
        loop = tracker.active_loop_name
        if loop is not None:
            unhappy = self._unhappy_path(states)
            # A general rule (written without the form) that just listens: inside a form, go back
            # to the form instead, unless a rule or story says not to.
            if action == ACTION_LISTEN and not _loop_name(_states_of(best)[-1]):
                if DO_NOT_PREDICT_LOOP_ACTION not in unhappy:
                    return RulePrediction(loop, best)
                action = None
        return None if action is None else RulePrediction(action, best, self.loop_was_interrupted(tracker, states))

    def loop_was_interrupted(self, tracker: DialogueTracker, states: list[State]) -> bool:
        """Whether rules and stories say the active form comes back after an answer to another
        question (whichever policy then runs it, as Rasa applies RulePolicy's event)."""
        return tracker.active_loop_name is not None and LOOP_WAS_INTERRUPTED in self._unhappy_path(states)

    def _unhappy_path(self, states: list[State]) -> set[str]:
        return {self.loop_unhappy[key] for key in _applicable(self.loop_unhappy, states)}


def _snippet_key(states: tuple[State, ...] | list[State]) -> str | None:
    """The states after the last "…" snippet state, as a key; None when there are none."""
    kept: list[State] = []
    for state in reversed(states):
        if (state.get("prev_action") or {}).get("action_name") == RULE_SNIPPET_ACTION:
            break
        kept.insert(0, state)
    return state_key(kept) if kept else None


def _loop_unhappy_lookup(examples: list[Example]) -> dict[str, str]:
    lookup: dict[str, str] = {}
    for example in examples:
        loop = _loop_name(example.states[-1])
        if not loop:
            continue
        states = list(example.states)
        if len(states) > 1 and states[-2].get("prev_action"):
            states = [{"prev_action": states[-2]["prev_action"]}, states[-1]]
        else:
            states = [states[-1]]
        key = _snippet_key(states)
        if key is None:
            continue
        user_spoke = after_listen(states[-1])
        if user_spoke and example.action == loop:
            lookup[key] = LOOP_WAS_INTERRUPTED
        elif not user_spoke and example.action != loop:
            lookup[key] = DO_NOT_PREDICT_LOOP_ACTION
    return lookup


def _applicable(lookup: dict[str, str], states: list[State]) -> list[str]:
    """The keys of `lookup` whose states all hold in the conversation, going back from now."""
    conversation = list(reversed(states))
    return [key for key in lookup if _matches(_states_of(key), conversation)]


@functools.lru_cache(maxsize=4096)
def _states_of(key: str) -> list[State]:
    return json.loads(key)


def _matches(rule_states: list[State], reversed_conversation: list[State]) -> bool:
    for index, rule_state in enumerate(reversed(rule_states)):
        if index >= len(reversed_conversation):
            return True  # the rule reaches further back than the conversation: nothing contradicts it
        conversation_state = reversed_conversation[index]
        rule_started = bool(rule_state.get("prev_action"))
        conversation_started = bool(conversation_state.get("prev_action"))
        if not rule_started and not conversation_started:
            return True  # both at the conversation's start
        if not rule_started or not conversation_started:
            return False
        if not _state_contains(rule_state, conversation_state):
            return False
    return True


def _state_contains(rule_state: State, conversation_state: State) -> bool:
    for kind, rule_sub_state in rule_state.items():
        conversation_sub_state = conversation_state.get(kind, {})
        for key, expected in rule_sub_state.items():
            if isinstance(expected, list):
                expected = tuple(expected)  # JSON gives tuples back as lists
            actual = conversation_sub_state.get(key)
            if isinstance(actual, list):
                actual = tuple(actual)
            if expected == SHOULD_NOT_BE_SET:
                if actual and actual != SHOULD_NOT_BE_SET:
                    return False
            elif expected and actual != expected:
                return False
    return True


def _loop_name(state: State) -> str | None:
    name = (state.get("active_loop") or {}).get("name")
    return None if name in (None, SHOULD_NOT_BE_SET) else name
