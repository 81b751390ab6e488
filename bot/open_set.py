"""Open-set evaluation: hold whole intents out of training and score how the bot treats them.

A deployed bot meets topics nobody trained it on. Holding out K intents (chosen by a seed) and
keeping their messages in the test set turns them into "should be handed off" examples: the
model cannot predict an intent it never learned, so answering one of them is always wrong.
Used by `crowddesk evaluate nlu --unseen-intents` and `benchmarks/open_set.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass

import numpy as np

from crowddesk.bot.evaluation import rounded, share

DEFINITIONS = {
    "open_set.unseen_intents": "intents left out of training (chosen with the seed); their test "
                               "messages should be handed off",
    "open_set.claimed_precision": "answer precision the training data promised at the chosen "
                                  "threshold (out-of-fold, seen intents only)",
    "open_set.realised_precision": "answered test messages whose top intent is right / answered test "
                                   "messages, unseen-topic messages included (always wrong if answered)",
    "open_set.unseen_handed_off": "test messages of held-out intents that were handed off / all of them",
    "open_set.in_scope_answered_correctly": "test messages of trained intents (neither out of scope nor "
                                            "a hand-off intent) answered with the right intent / all of them",
    "open_set.curve_without_unseen": "the automation/precision curve on the test messages of trained "
                                     "intents only: what the bot would look like if no new topic came",
}


def held_out_intents(intents: Iterable[str], count: int, seed: int, never: frozenset[str]) -> frozenset[str]:
    """`count` intents chosen by `seed` among `intents` outside `never`; at least two must stay."""
    candidates = sorted(set(intents) - never)
    if not 1 <= count <= len(candidates) - 2:
        raise ValueError(f"unseen intents must be between 1 and {len(candidates) - 2} "
                         f"(the {len(candidates)} answerable intents less two to learn), got {count}")
    chosen = np.random.default_rng(seed).choice(len(candidates), size=count, replace=False)
    return frozenset(candidates[i] for i in chosen)


@dataclass(frozen=True)
class OpenSetScores:
    """The four numbers issue 14's targets are stated in, plus the precision training claimed."""

    answered_share: float
    claimed_precision: float
    realised_precision: float
    unseen_handed_off: float | None
    in_scope_answered_correctly: float | None

    @classmethod
    def of(cls, *, correct: np.ndarray, answered: np.ndarray, unseen: np.ndarray, in_scope: np.ndarray,
           claimed_precision: float) -> OpenSetScores:
        """Per test message: right top intent, answered, label held out, label a trained topic."""
        return cls(
            answered_share=float(np.mean(answered)) if len(answered) else 0.0,
            claimed_precision=float(claimed_precision),
            # Nothing answered: no answer given, none wrong (as in the calibration).
            realised_precision=float(np.mean(correct[answered])) if answered.any() else 1.0,
            unseen_handed_off=share(~answered[unseen]),
            in_scope_answered_correctly=share((answered & correct)[in_scope]),
        )

    def as_dict(self) -> dict[str, float | None]:
        return {name: rounded(value) for name, value in asdict(self).items()}
