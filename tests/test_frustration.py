"""The rule-based frustration detector: which messages read as frustrated, and why."""

from __future__ import annotations

import pytest

from crowddesk.nlu.frustration import FrustrationDetector

detector = FrustrationDetector()


def rules(text: str, *earlier: str) -> list[str]:
    return [signal.rule for signal in detector.score(text, earlier).signals]


@pytest.mark.parametrize(
    "text",
    [
        "How do I activate my new card?",
        "THANK YOU SO MUCH!!!",  # shouting without a negative cue is enthusiasm
        "Is my PIN the same at the ATM?",
        "I tried 5 times to log in, error E-1043",
        "I'd hate to bother you, but where is my card?",  # one weak cue stays under 2 points
        "Whatever works best for you",  # "hate" inside a word doesn't count
    ],
)
def test_ordinary_messages_stay_below_the_default_threshold(text: str) -> None:
    assert detector.score(text).points < 2


@pytest.mark.parametrize(
    ("text", "earlier", "expected"),
    [
        ("this is ridiculous, the app is useless", (), ["negative_phrase", "negative_phrase"]),
        ("are you stupid", (), ["abuse"]),
        ("this is ridiculous!!!", (), ["negative_phrase", "shouted_punctuation"]),
        ("I AM FED UP WITH THIS BANK", (), ["negative_phrase", "all_caps"]),
        ("my card still hasn't arrived", ("My card still hasn't arrived.",), ["negative_phrase", "repeated_message"]),
        ("WHERE IS MY CARD???", ("where is my card", "hello"), ["repeated_message", "all_caps", "shouted_punctuation"]),
    ],
)
def test_frustrated_messages_reach_the_threshold_with_their_reasons(
    text: str, earlier: tuple[str, ...], expected: list[str]
) -> None:
    score = detector.score(text, earlier)
    assert [signal.rule for signal in score.signals] == expected
    assert score.points >= 2


def test_short_replies_repeated_are_not_a_complaint() -> None:
    assert rules("no", "no", "no") == []
    assert rules("yes please", "yes please") == []


def test_a_different_question_is_not_a_repeat() -> None:
    assert rules("how do I order a new card", "where is my card") == []
    assert (
        rules(
            "please track my card order, the order number is CD-733101",
            "please track my card order, the order number is CD-482913",
        )
        == []
    )


def test_explanation_names_rules_and_evidence_for_the_agent() -> None:
    score = detector.score("WHERE IS MY CARD???", ["Where is my card"])
    assert score.explain() == 'repeated_message ("Where is my card"), all_caps, shouted_punctuation ("???")'


def test_extra_phrases_from_config_extend_the_lexicon() -> None:
    custom = FrustrationDetector(["never again", "closing my account"])
    assert [s.evidence for s in custom.score("never again, I'm closing my account").signals] == [
        "never again",
        "closing my account",
    ]
    assert detector.score("never again, I'm closing my account").points == 0


def test_a_rant_counts_at_most_three_points_of_phrases() -> None:
    rant = "useless, terrible, awful, pathetic, ridiculous service"
    assert detector.score(rant).points == 3
