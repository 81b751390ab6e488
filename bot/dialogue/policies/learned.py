"""A learned next-action policy for conversations no rule or remembered story covers, in the
spirit of Rasa's TEDPolicy but sized for a few CPU cores: the last `max_history` states (intent,
entity labels, previous action, active form, slot features; the user's part only right after they
spoke, as TED featurizes it) are one sparse vector, and a multinomial logistic regression over the
stories' actions ranks the next action.

Its confidence is calibrated like the NLU's: the stories are split into folds, each fold's
actions predicted by a model trained on the others, and isotonic regression maps the top
probability to the chance the action is the one the story takes. The policy only speaks when that
chance reaches `target_precision`; below it, the turn goes to a person. With too few stories to
hold any out, it never speaks.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction import DictVectorizer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold

from crowddesk.bot.dialogue.policies.states import Example
from crowddesk.bot.dialogue.tracker import State, after_listen

MAX_HISTORY = 5  # TEDPolicy's default
MIN_STORIES = 4  # fewer, and no fold can be held out with the rest still teaching something
FOLDS = 5
SEED = 0


@dataclass(frozen=True)
class LearnedPrediction:
    action: str
    confidence: float
    """Calibrated: the chance, on held-out stories, that an action predicted this surely was right."""


@dataclass
class LearnedPolicy:
    vectorizer: DictVectorizer
    model: LogisticRegression
    calibration: IsotonicRegression
    threshold: float

    @classmethod
    def train(cls, examples: Sequence[tuple[int, Example]], target_precision: float) -> LearnedPolicy | None:
        """`examples`: (story number, example) pairs. None when the stories are too few to
        calibrate on, or all end in one action."""
        stories = np.array([story for story, _ in examples])
        actions = np.array([example.action for _, example in examples])
        if len(set(stories.tolist())) < MIN_STORIES or len(set(actions.tolist())) < 2:
            return None
        vectorizer = DictVectorizer()
        features = vectorizer.fit_transform([history_features(example.states) for _, example in examples])
        confidences, correct = [], []
        for train, held_out in GroupKFold(n_splits=min(FOLDS, len(set(stories.tolist())))).split(
            features, actions, stories
        ):
            if len(set(actions[train].tolist())) < 2:
                continue
            model = _fit(features[train], actions[train])
            probabilities = model.predict_proba(features[held_out])
            best = probabilities.argmax(axis=1)
            confidences += probabilities.max(axis=1).tolist()
            correct += (model.classes_[best] == actions[held_out]).tolist()
        if not confidences:
            return None
        calibration = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        calibration.fit(confidences, np.array(correct, dtype=float))
        return cls(vectorizer, _fit(features, actions), calibration, target_precision)

    def predict(self, states: list[State]) -> LearnedPrediction | None:
        """The next action when its calibrated confidence reaches the threshold."""
        probabilities = self.model.predict_proba(self.vectorizer.transform([history_features(states)]))[0]
        best = int(probabilities.argmax())
        confidence = float(self.calibration.predict([probabilities[best]])[0])
        if confidence < self.threshold:
            return None
        return LearnedPrediction(str(self.model.classes_[best]), confidence)


def history_features(states: Sequence[State]) -> dict[str, float]:
    """The last MAX_HISTORY states as named features, by how far back each is (0: now)."""
    features: dict[str, float] = {}
    for back, state in enumerate(reversed(states[-MAX_HISTORY:])):
        for name, value in state_features(state).items():
            features[f"{back}:{name}"] = value
    return features


def state_features(state: State) -> dict[str, float]:
    features: dict[str, float] = {}
    previous = state.get("prev_action") or {}
    features[f"action:{previous.get('action_name') or previous.get('action_text') or 'start'}"] = 1.0
    user = state.get("user") or {}
    if after_listen(state):  # the user's part only right after they spoke
        if user.get("intent"):
            features[f"intent:{user['intent']}"] = 1.0
        elif user.get("text"):
            features["text"] = 1.0
        for label in user.get("entities") or ():
            features[f"entity:{label}"] = 1.0
    loop = (state.get("active_loop") or {}).get("name")
    if loop:
        features[f"loop:{loop}"] = 1.0
    for slot, values in (state.get("slots") or {}).items():
        for index, value in enumerate(values if isinstance(values, (list, tuple)) else (1.0,)):
            features[f"slot:{slot}:{index}"] = float(value)
    return features


def _fit(features: Any, actions: np.ndarray) -> LogisticRegression:
    model = LogisticRegression(C=10.0, max_iter=2000, random_state=SEED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(features, actions)
    return model
