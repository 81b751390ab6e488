"""Open-set calibration: held-out intents stand for unseen topics, weighted to their share of traffic."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from crowddesk.bot.training.trainer import TrainResult
from crowddesk.nlu.calibration import choose_threshold, precision_curve
from crowddesk.nlu.classifier import CalibratedIntentClassifier, OutOfFold, intent_groups
from crowddesk.nlu.encoders import Encoder
from crowddesk.nlu.nearest_examples import NO_EXAMPLE, NearestExamples
from crowddesk.nlu.open_set import traffic_weights
from tests.test_classifier import TRAINING, _training_data

# Six topics; the last two are never trained: the messages a deployed bot gets about a new topic.
MORE_TRAINING = {
    "lost_card": [
        "I lost my card",
        "my card was stolen",
        "can't find my debit card",
        "card missing from wallet",
        "someone stole my bank card",
        "report a lost card",
        "I think I dropped my card",
        "my wallet with the card is gone",
        "block my lost card",
        "card lost abroad",
    ],
    "exchange_rate": [
        "what is the exchange rate",
        "how much is a dollar in euros",
        "currency conversion rate",
        "rate for pounds to euros",
        "what rate do you give for yen",
        "today's exchange rates",
        "how do you calculate the exchange rate",
        "is the exchange rate fixed",
        "conversion fee and rate",
        "euro to dollar rate please",
    ],
}
UNSEEN_TOPICS = [
    "what's the interest rate on your mortgage",
    "can I get a car loan from you",
    "do you sell travel insurance",
    "I want to open a savings account for my child",
    "how do I invest in stocks with you",
    "what pension plans do you have",
]
KNOWN_PARAPHRASES = [
    "my card still hasn't arrived",
    "I can't remember my password",
    "when do you open on monday",
    "I've lost my card somewhere",
    "what's the rate for dollars",
]


def _six_topics() -> tuple[list[str], list[str]]:
    texts, labels = _training_data()
    for intent, examples in MORE_TRAINING.items():
        texts += examples
        labels += [intent] * len(examples)
    return texts, labels


@pytest.fixture(scope="module")
def open_set(minilm_encoder: Encoder) -> tuple[CalibratedIntentClassifier, OutOfFold, list[str]]:
    texts, labels = _six_topics()
    classifier = CalibratedIntentClassifier(calibration_folds=3)
    out_of_fold = classifier.fit(
        texts, minilm_encoder.encode(texts), labels, unseen_topic_share=0.15, always_trained={"greet"}
    )
    return classifier, out_of_fold, labels


def test_nearest_examples_finds_the_closest_training_message_of_each_intent() -> None:
    rng = np.random.default_rng(0)
    vectors, labels = rng.normal(size=(30, 8)), rng.integers(0, 3, size=30)
    labels[labels == 2] = 0  # class 2 has no example
    queries = rng.normal(size=(5, 8))
    found = NearestExamples(vectors, labels, 3).similarity(queries)
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    cosine = (queries / np.linalg.norm(queries, axis=1, keepdims=True)) @ unit.T
    for cls in (0, 1):
        np.testing.assert_allclose(found[:, cls], cosine[:, labels == cls].max(axis=1), rtol=1e-5)
    assert np.all(found[:, 2] == NO_EXAMPLE)
    own = NearestExamples(vectors, labels, 3).similarity_to(queries, np.array([0, 1, 2, 1, 0]))
    np.testing.assert_allclose(own, found[np.arange(5), [0, 1, 2, 1, 0]], rtol=1e-6)


def test_weights_make_unseen_topics_the_configured_share_of_traffic() -> None:
    seen, unseen = traffic_weights(800, 400, 0.15)
    assert unseen * 400 / (seen * 800 + unseen * 400) == pytest.approx(0.15)
    assert traffic_weights(800, 0, 0.15) == (1.0, 0.0)


def test_weighted_precision_counts_each_message_by_its_weight() -> None:
    # Two right answers at 0.9, one unseen-topic message at 0.8 weighing as much as three.
    curve = precision_curve(np.array([0.9, 0.9, 0.8]), np.array([True, True, False]), np.array([1, 1, 3.0]))
    assert [(p.threshold, p.precision, p.answered_share) for p in curve] == [(0.9, 1.0, 0.4), (0.8, 0.4, 1.0)]
    confidences, correct = np.linspace(1, 0.5, 20), np.array([True] * 15 + [False] * 5)
    unweighted = choose_threshold(confidences, correct, 0.75)
    heavier_mistakes = choose_threshold(confidences, correct, 0.75, weights=np.where(correct, 1.0, 4.0))
    assert heavier_mistakes.threshold > unweighted.threshold


def test_intent_groups_cover_every_intent_but_the_always_trained_ones() -> None:
    groups = intent_groups(10, 5, seed=0, always_trained=frozenset({0, 3}))
    held = np.concatenate(groups)
    assert sorted(held.tolist()) == [1, 2, 4, 5, 6, 7, 8, 9] and len(groups) == 5
    # Holding any group out must leave two intents to learn.
    assert intent_groups(2, 5, seed=0, always_trained=frozenset()) == []


def test_every_trainable_intent_is_also_predicted_by_a_model_that_never_saw_it(
    open_set: tuple[CalibratedIntentClassifier, OutOfFold, list[str]],
) -> None:
    classifier, out_of_fold, labels = open_set
    unseen_labels = [labels[i] for i in out_of_fold.unseen_rows]
    assert set(unseen_labels) == set(labels) - {"greet"}
    # A model that never learned an intent cannot predict it.
    predicted = [classifier.classes[i] for i in out_of_fold.unseen_probabilities.argmax(axis=1)]
    assert not any(p == label for p, label in zip(predicted, unseen_labels))
    # The confidence never reorders a message's intents: it falls as the probability does.
    order = np.argsort(-out_of_fold.probabilities, axis=1)
    assert np.all(np.diff(np.take_along_axis(out_of_fold.confidences, order, axis=1), axis=1) <= 1e-12)
    assert out_of_fold.unseen_weight > 0


def test_a_topic_nobody_trained_on_scores_below_known_paraphrases(
    open_set: tuple[CalibratedIntentClassifier, OutOfFold, list[str]],
    minilm_encoder: Encoder,
) -> None:
    classifier = open_set[0]

    def top_confidence(texts: list[str]) -> np.ndarray:
        probabilities, confidences = classifier.predict(texts, minilm_encoder.encode(texts))
        return confidences[np.arange(len(texts)), probabilities.argmax(axis=1)]

    known, unseen = top_confidence(KNOWN_PARAPHRASES), top_confidence(UNSEEN_TOPICS)
    assert np.median(known) > np.median(unseen)
    assert known.min() > unseen.min()


def test_open_set_calibration_survives_saving(
    open_set: tuple[CalibratedIntentClassifier, OutOfFold, list[str]],
    minilm_encoder: Encoder,
    tmp_path: Path,
) -> None:
    classifier = open_set[0]
    classifier.save(tmp_path)
    loaded = CalibratedIntentClassifier.load(tmp_path)
    texts = UNSEEN_TOPICS + KNOWN_PARAPHRASES
    vectors = minilm_encoder.encode(texts)
    for before, after in zip(classifier.predict(texts, vectors), loaded.predict(texts, vectors)):
        np.testing.assert_allclose(before, after, rtol=1e-6)
    assert loaded.known_topic == classifier.known_topic


def test_without_unseen_topics_the_confidences_are_the_probabilities(minilm_encoder: Encoder) -> None:
    texts, labels = _training_data()
    classifier = CalibratedIntentClassifier(calibration_folds=3)
    out_of_fold = classifier.fit(texts, minilm_encoder.encode(texts), labels, unseen_topic_share=0.0)
    assert len(out_of_fold.unseen_rows) == 0
    np.testing.assert_array_equal(out_of_fold.confidences, out_of_fold.probabilities)
    assert set(TRAINING) == set(classifier.classes)


def test_training_promises_precision_on_traffic_with_unseen_topics_and_shows_the_trade_off(
    demo_training: TrainResult,
) -> None:
    report = demo_training.report
    assert report.unseen_topic_share == 0.15 and report.unseen_topic_examples > 0
    assert report.expected_precision >= report.target_precision
    shares = [point["unseen_topic_share"] for point in report.tradeoff]
    assert shares == [0.0, 0.05, 0.15, 0.3]
    configured = report.tradeoff[shares.index(0.15)]
    assert configured["answer_threshold"] == report.answer_threshold
    assert configured["expected_automation_rate"] == report.expected_automation_rate
    # Expecting more new topics answers less and hands more of them off, never the reverse.
    for looser, stricter in zip(report.tradeoff, report.tradeoff[1:]):
        assert stricter["answer_threshold"] >= looser["answer_threshold"]
        assert stricter["expected_automation_rate"] <= looser["expected_automation_rate"]
        assert stricter["unseen_topics_handed_off"] >= looser["unseen_topics_handed_off"]
