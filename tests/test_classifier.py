from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from crowddesk.nlu.calibration import expected_calibration_error
from crowddesk.nlu.classifier import (
    ARRAYS_FILE,
    SETTINGS_FILE,
    CalibratedIntentClassifier,
    ClassifierArtifactError,
)
from crowddesk.nlu.encoders import Encoder

TRAINING = {
    "greet": [
        "hello",
        "hi there",
        "good morning",
        "hey",
        "good evening",
        "hello, anyone there?",
        "hi, I need some help",
        "greetings",
        "hey team",
        "hiya",
        "good afternoon",
        "howdy",
    ],
    "card_arrival": [
        "my card has not arrived",
        "when will my card come",
        "where is my new card",
        "card still not delivered",
        "how long does the card take to arrive",
        "I ordered a card last week and it is not here",
        "track my card delivery",
        "has my card been shipped",
        "the card never arrived",
        "waiting for my debit card",
        "card delivery status",
        "my replacement card is late",
    ],
    "reset_password": [
        "I forgot my password",
        "reset my password",
        "how do I change my password",
        "can't log in, password wrong",
        "password reset link not working",
        "I need a new password",
        "locked out of my account after wrong password",
        "change login password",
        "recover my password",
        "password forgotten",
        "how to set a new password",
        "my password expired",
    ],
    "opening_hours": [
        "what are your opening hours",
        "when are you open",
        "are you open on sunday",
        "what time do you close",
        "opening times",
        "is the branch open today",
        "until when are you open",
        "what time does the office open",
        "business hours please",
        "are you open on public holidays",
        "when do you open tomorrow",
        "closing time on saturday",
    ],
}
PARAPHRASES = [
    ("hey, good morning to you", "greet"),
    ("my bank card still hasn't shown up", "card_arrival"),
    ("where's the card you sent me?", "card_arrival"),
    ("I can't remember my password", "reset_password"),
    ("how can I get a new password", "reset_password"),
    ("at what time do you open on monday", "opening_hours"),
    ("are you open late on friday", "opening_hours"),
]


def _training_data() -> tuple[list[str], list[str]]:
    texts = [text for examples in TRAINING.values() for text in examples]
    labels = [intent for intent, examples in TRAINING.items() for _ in examples]
    return texts, labels


@pytest.fixture(scope="module")
def trained(
    minilm_encoder: Encoder,
) -> tuple[CalibratedIntentClassifier, np.ndarray]:
    texts, labels = _training_data()
    classifier = CalibratedIntentClassifier()
    out_of_fold = classifier.fit(texts, minilm_encoder.encode(texts), labels).probabilities
    return classifier, out_of_fold


def test_classifier_recognises_unseen_paraphrases(
    trained: tuple[CalibratedIntentClassifier, np.ndarray],
    minilm_encoder: Encoder,
) -> None:
    classifier, _ = trained
    texts = [text for text, _ in PARAPHRASES]
    probs = classifier.predict_proba(texts, minilm_encoder.encode(texts))
    predicted = [classifier.classes[i] for i in probs.argmax(axis=1)]
    assert predicted == [intent for _, intent in PARAPHRASES]
    assert classifier.classes == sorted(TRAINING)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0)


def test_fit_returns_out_of_fold_probabilities(
    trained: tuple[CalibratedIntentClassifier, np.ndarray],
    minilm_encoder: Encoder,
) -> None:
    classifier, out_of_fold = trained
    texts, labels = _training_data()
    assert out_of_fold.shape == (len(labels), len(TRAINING))
    np.testing.assert_allclose(out_of_fold.sum(axis=1), 1.0)
    accuracy = np.mean([classifier.classes[i] == y for i, y in zip(out_of_fold.argmax(1), labels)])
    assert accuracy >= 0.85
    # Each text was predicted by a model that never saw it, so it is less sure of its label
    # than the final model, which trained on it.
    label_idx = np.array([classifier.classes.index(y) for y in labels])
    in_sample = classifier.predict_proba(texts, minilm_encoder.encode(texts))
    rows = np.arange(len(labels))
    assert out_of_fold[rows, label_idx].mean() < in_sample[rows, label_idx].mean()


def test_off_topic_messages_are_not_answered_with_near_certainty(
    trained: tuple[CalibratedIntentClassifier, np.ndarray],
    minilm_encoder: Encoder,
) -> None:
    # The training set is easy (no out-of-fold mistakes); calibration must not turn that into
    # near-certainty about everything.
    classifier, _ = trained
    off_topic = ["what is the meaning of life", "bitcoin price", "recommend a good novel"]
    probs = classifier.predict_proba(off_topic, minilm_encoder.encode(off_topic))
    assert probs.max() < 0.9


def test_saved_classifier_predicts_exactly_as_before(
    trained: tuple[CalibratedIntentClassifier, np.ndarray],
    minilm_encoder: Encoder,
    tmp_path: Path,
) -> None:
    classifier, _ = trained
    texts = [text for text, _ in PARAPHRASES] + ["Ma carte n'est pas arrivée — où est-elle ?"]
    embeddings = minilm_encoder.encode(texts)
    classifier.save(tmp_path / "intent")
    loaded = CalibratedIntentClassifier.load(tmp_path / "intent")
    assert loaded.classes == classifier.classes
    assert loaded.temperature == classifier.temperature
    np.testing.assert_array_equal(loaded.predict_proba(texts, embeddings), classifier.predict_proba(texts, embeddings))


def test_lexical_features_can_be_switched_off_and_survive_saving(
    minilm_encoder: Encoder,
    tmp_path: Path,
) -> None:
    texts, labels = _training_data()
    embeddings = minilm_encoder.encode(texts)
    classifier = CalibratedIntentClassifier(lexical_features=False)
    classifier.fit(texts, embeddings, labels)
    classifier.save(tmp_path)
    loaded = CalibratedIntentClassifier.load(tmp_path)
    assert loaded.lexical_features is False
    np.testing.assert_array_equal(loaded.predict_proba(texts, embeddings), classifier.predict_proba(texts, embeddings))


def _overlapping_clusters(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """3 classes in 60 dimensions whose clouds overlap: some errors are unavoidable."""
    dim = 60
    means = np.random.default_rng(42).normal(size=(3, dim))
    means /= np.linalg.norm(means, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    return means[labels] * 0.35 + rng.normal(scale=dim**-0.5, size=(n, dim)), labels


def test_calibration_corrects_an_over_confident_model() -> None:
    # 150 examples in 60 dimensions with almost no regularisation: the raw model overfits and
    # is over-confident, so the fitted temperature must soften it.
    train_x, train_y = _overlapping_clusters(150, seed=0)
    test_x, test_y = _overlapping_clusters(2000, seed=1)
    classifier = CalibratedIntentClassifier(lexical_features=False, regularization=1e4)
    classifier.fit([""] * len(train_x), train_x, [f"intent_{y}" for y in train_y])
    calibrated = classifier.predict_proba([""] * len(test_x), test_x)
    fitted_temperature = classifier.temperature
    classifier.temperature = 1.0
    raw = classifier.predict_proba([""] * len(test_x), test_x)

    assert fitted_temperature > 1.5
    assert expected_calibration_error(calibrated, test_y) < expected_calibration_error(raw, test_y)


def test_classes_with_fewer_examples_than_folds_are_handled(
    minilm_encoder: Encoder,
) -> None:
    texts = TRAINING["greet"][:6] + TRAINING["opening_hours"][:2] + ["I want to close my account"]
    labels = ["greet"] * 6 + ["opening_hours"] * 2 + ["close_account"]
    classifier = CalibratedIntentClassifier(calibration_folds=5)
    out_of_fold = classifier.fit(texts, minilm_encoder.encode(texts), labels).probabilities

    assert out_of_fold.shape == (9, 3)
    np.testing.assert_allclose(out_of_fold.sum(axis=1), 1.0)
    # The lone close_account example was held out of the only fold that could have taught it.
    close_account = classifier.classes.index("close_account")
    assert out_of_fold[-1, close_account] == 0.0
    probe = ["please close my account"]
    final = classifier.predict_proba(probe, minilm_encoder.encode(probe))
    assert classifier.classes[int(final.argmax())] == "close_account"


def test_two_intents_work(minilm_encoder: Encoder) -> None:
    texts = TRAINING["greet"] + TRAINING["reset_password"]
    labels = ["greet"] * 12 + ["reset_password"] * 12
    classifier = CalibratedIntentClassifier()
    classifier.fit(texts, minilm_encoder.encode(texts), labels)
    probe = ["hello friends", "my password is not accepted"]
    probs = classifier.predict_proba(probe, minilm_encoder.encode(probe))
    assert [classifier.classes[i] for i in probs.argmax(axis=1)] == ["greet", "reset_password"]


def test_progress_says_how_many_models_are_fitted() -> None:
    train_x, train_y = _overlapping_clusters(40, seed=2)
    messages: list[str] = []
    classifier = CalibratedIntentClassifier(lexical_features=False, calibration_folds=3)
    classifier.fit(["x"] * 40, train_x, [str(y) for y in train_y], progress=messages.append)
    assert len(messages) == 1
    assert messages[0].startswith("fitting 3 calibration folds and the final model on ")


def test_a_single_intent_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least 2 intents"):
        CalibratedIntentClassifier().fit(["hi", "hello"], np.eye(2), ["greet", "greet"])


def test_embeddings_of_another_dimension_are_rejected(
    trained: tuple[CalibratedIntentClassifier, np.ndarray],
) -> None:
    classifier, _ = trained
    with pytest.raises(ValueError, match=r"dimension 512.*dimension 384"):
        classifier.predict_proba(["hello"], np.zeros((1, 512)))


def test_missing_artifact_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(ClassifierArtifactError, match=SETTINGS_FILE):
        CalibratedIntentClassifier.load(tmp_path)


@pytest.fixture()
def saved(trained: tuple[CalibratedIntentClassifier, np.ndarray], tmp_path: Path) -> Path:
    trained[0].save(tmp_path)
    return tmp_path


def test_corrupt_settings_are_reported(saved: Path) -> None:
    (saved / SETTINGS_FILE).write_text("{not json", encoding="utf-8")
    with pytest.raises(ClassifierArtifactError, match="not valid JSON"):
        CalibratedIntentClassifier.load(saved)


def test_corrupt_arrays_are_reported(saved: Path) -> None:
    (saved / ARRAYS_FILE).write_bytes(b"garbage")
    with pytest.raises(ClassifierArtifactError, match="cannot read arrays"):
        CalibratedIntentClassifier.load(saved)


def test_other_format_version_is_refused(saved: Path) -> None:
    settings = json.loads((saved / SETTINGS_FILE).read_text(encoding="utf-8"))
    settings["format_version"] = 99
    (saved / SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(ClassifierArtifactError, match="format_version 99"):
        CalibratedIntentClassifier.load(saved)


def test_arrays_that_do_not_match_the_settings_are_refused(saved: Path) -> None:
    settings = json.loads((saved / SETTINGS_FILE).read_text(encoding="utf-8"))
    settings["classes"].append("extra_intent")
    (saved / SETTINGS_FILE).write_text(json.dumps(settings), encoding="utf-8")
    with pytest.raises(ClassifierArtifactError, match="do not match"):
        CalibratedIntentClassifier.load(saved)
