"""Open-set evaluation: hold whole intents (or FAQ entries) out and score how the bot treats them.

A deployed bot meets topics nobody trained it on. Holding out K intents (chosen by a seed) and
keeping their messages in the test set turns them into "should be handed off" examples: the
model cannot predict an intent it never learned, so answering one of them is always wrong.
Used by `crowddesk evaluate nlu --unseen-intents` and `benchmarks/open_set.py`; `crowddesk
evaluate kb --unseen-entries` does the same with knowledge-base entries (bot/evaluation/kb.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from crowddesk.bot.evaluation.metrics import percent, rounded, share
from crowddesk.nlu.calibration import OperatingPoint, choose_threshold
from crowddesk.nlu.classifier import OutOfFold

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


def held_out(
    names: Iterable[str], count: int, seed: int, never: frozenset[str] = frozenset(), *, kind: str = "intents"
) -> frozenset[str]:
    """`count` of the distinct `names` outside `never` (intents, entry ids: `kind` names them in
    the error), chosen by `seed`; at least two must stay."""
    candidates = sorted(set(names) - never)
    if not 1 <= count <= len(candidates) - 2:
        raise ValueError(
            f"unseen {kind} must be between 1 and {len(candidates) - 2} "
            f"(the {len(candidates)} candidate {kind} less two that stay), got {count}"
        )
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
    def of(
        cls,
        *,
        correct: np.ndarray,
        answered: np.ndarray,
        unseen: np.ndarray,
        in_scope: np.ndarray,
        claimed_precision: float,
    ) -> OpenSetScores:
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


@dataclass(frozen=True)
class TrainingPoint:
    """The answer threshold training chose and what it promised on its held-out traffic."""

    threshold: float
    answered_share: float  # weighted: unseen topics at their configured share
    precision: float


def training_point(
    classes: Sequence[str],
    labels: Sequence[str],
    out_of_fold: OutOfFold,
    target_precision: float,
    never_answered: frozenset[str],
) -> TrainingPoint:
    """The classifier-only threshold `crowddesk train` would choose: the top intent's open-set
    confidence over held-out predictions of known and unseen topics, each weighted as in traffic;
    intents the bot never answers are handed off at any threshold."""
    probabilities, confidences, labels, weights = out_of_fold.with_unseen(labels)
    top = probabilities.argmax(axis=1)
    intents = np.array([classes[i] for i in top], dtype=object)
    confidence = confidences[np.arange(len(top)), top]
    correct = intents == np.array(labels, dtype=object)
    answerable = ~np.isin(intents, sorted(never_answered))
    point: OperatingPoint = choose_threshold(
        confidence[answerable], correct[answerable], target_precision, weights=weights[answerable]
    )
    answered = answerable & (confidence >= point.threshold)
    return TrainingPoint(point.threshold, float(weights[answered].sum() / weights.sum()), point.precision)


def summary_rows(block: dict[str, Any], kind: str) -> list[tuple[str, str]]:
    """The open-set rows of a report's summary (terminal and HTML); `kind` is "intents" for
    `evaluate nlu`, "entries" for `evaluate kb`."""
    unseen = block[f"unseen_{kind}"]
    noun = {"intents": "topic", "entries": "entry"}[kind]
    return [
        (f"unseen {kind} ({len(unseen)}, seed {block.get('seed', '-')})", ", ".join(unseen)),
        ("answered (unseen included)", percent(block["answered_share"])),
        (
            "answer precision claimed / realised",
            f"{percent(block['claimed_precision'])} / {percent(block['realised_precision'])}",
        ),
        (f"unseen-{noun} messages handed off ({block['unseen_support']})", percent(block["unseen_handed_off"])),
        ("other messages answered correctly", percent(block["in_scope_answered_correctly"])),
    ]
