"""Story turns remembered as Rasa's MemoizationPolicy remembers them: the last `max_history`
states before each action of every story, mapped to that action. A situation two stories
continue differently is forgotten (neither is certain). Prediction is an exact lookup."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from crowddesk.bot.dialogue.policies.states import Example
from crowddesk.bot.dialogue.tracker import State, state_key


@dataclass
class MemoizationPolicy:
    max_history: int | None = None
    """States remembered before each action; None: the whole conversation (Rasa's default)."""
    lookup: dict[str, str] = field(default_factory=dict)

    @classmethod
    def train(cls, examples: Iterable[Example], max_history: int | None) -> MemoizationPolicy:
        lookup: dict[str, str] = {}
        ambiguous: set[str] = set()
        for example in examples:
            key = state_key(_window(list(example.states), max_history))
            if key in ambiguous:
                continue
            if key in lookup and lookup[key] != example.action:
                ambiguous.add(key)
                del lookup[key]
            else:
                lookup[key] = example.action
        return cls(max_history, lookup)

    def predict(self, states: list[State]) -> str | None:
        return self.lookup.get(state_key(_window(states, self.max_history))) if states else None


def _window(states: list[State], max_history: int | None) -> list[State]:
    return states if max_history is None else states[-max_history:]
