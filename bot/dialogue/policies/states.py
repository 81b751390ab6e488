"""Training examples for the next-action policies: for every action a story or rule takes, the
states up to it (Rasa's MaxHistoryTrackerFeaturizer.training_states_and_labels)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import NamedTuple

from crowddesk.bot.dialogue.tracker import Event, State, prior_states
from crowddesk.bot.project.domain import Domain


class Example(NamedTuple):
    """The states up to an action (last: the state it was chosen in), and the action's name, or
    its text for an end-to-end bot step."""

    states: tuple[State, ...]
    action: str


def examples(domain: Domain, events: Iterable[Event], *, omit_unset_slots: bool = False) -> Iterator[Example]:
    states: list[State] = []
    for state, action in prior_states(domain, events, omit_unset_slots=omit_unset_slots):
        states.append(state)
        if action is not None:
            yield Example(tuple(states), action.get("name") or action.get("action_text") or "")
