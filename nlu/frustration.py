"""A small, explainable frustration detector: negative phrases, abuse, shouting, repetition.

No trained sentiment model ships with CrowdDesk, and a hand-off must be explainable to the agent
who receives it, so this scores a message by rules and reports which ones fired. Shouting
(ALL CAPS, "!!!", "???") only adds to a message that already has a negative cue: "THANK YOU!!!"
is not a complaint, "WHERE IS MY CARD???" sent for the second time is.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher

NEGATIVE_PHRASES = (
    "useless",
    "ridiculous",
    "terrible",
    "awful",
    "horrible",
    "worst",
    "unacceptable",
    "pathetic",
    "appalling",
    "disgraceful",
    "shocking",
    "rubbish",
    "garbage",
    "a joke",
    "fed up",
    "sick of",
    "sick and tired",
    "waste of time",
    "wasting my time",
    "not helpful",
    "no help",
    "doesn't help",
    "does not help",
    "not listening",
    "still not working",
    "still waiting",
    "still haven't",
    "still hasn't",
    "nobody helps",
    "no one helps",
    "frustrated",
    "frustrating",
    "annoyed",
    "annoying",
    "angry",
    "furious",
    "livid",
    "hate",
    "incompetent",
    "scam",
    "disappointed",
    "fix this",
    "how many times",
)
ABUSIVE_PHRASES = (
    "stupid",
    "idiot",
    "idiots",
    "moron",
    "dumb",
    "crap",
    "shit",
    "damn",
    "wtf",
    "what the hell",
    "fuck",
    "fucking",
    "bullshit",
)
NEGATIVE_POINTS = 1.0
ABUSE_POINTS = 2.0
REPEAT_POINTS = 2.0
SHOUT_POINTS = 1.0
MAX_PHRASE_POINTS = 3.0  # a long rant is not three times as frustrated as a short one
# A repeat needs some substance: "yes", "no" or "hi" twice is normal conversation.
MIN_REPEAT_WORDS = 3
_WORD = re.compile(r"[^\W\d_]+")
_TOKEN = re.compile(r"\w+")
_NUMBER = re.compile(r"\w*\d\w*")
_SHOUTED_PUNCTUATION = re.compile(r"!{2,}|\?{3,}|[!?]*(?:\?!|!\?)[!?]*")


@dataclass(frozen=True)
class Signal:
    """One rule that fired, with the text that made it fire."""

    rule: str  # negative_phrase | abuse | repeated_message | all_caps | shouted_punctuation
    evidence: str
    points: float


@dataclass(frozen=True)
class FrustrationScore:
    """The signals found in one message and their total."""

    signals: tuple[Signal, ...]

    @property
    def points(self) -> float:
        """The total the policy compares with `frustration.threshold`."""
        return sum(signal.points for signal in self.signals)

    def explain(self) -> str:
        """The fired rules for the agent, e.g. `repeated_message ("where is my card"), all_caps`."""
        return ", ".join(f'{s.rule} ("{s.evidence}")' if s.evidence else s.rule for s in self.signals)


def _phrase_pattern(phrases: Iterable[str]) -> re.Pattern[str]:
    alternatives = sorted({p.strip().lower() for p in phrases if p.strip()}, key=len, reverse=True)
    if not alternatives:
        return re.compile(r"(?!)")
    # Whole words only: "hate" must not fire on "whatever", "crap" not on "scrapped".
    alternation = "|".join(re.escape(a) for a in alternatives)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)")


def _normalized(text: str) -> str:
    return " ".join(_TOKEN.findall(text.lower()))


class FrustrationDetector:
    """Scores a customer message against rules; `extra_phrases` extend the negative lexicon."""

    def __init__(self, extra_phrases: Sequence[str] = (), *, repeat_similarity: float = 0.85) -> None:
        self._negative = _phrase_pattern([*NEGATIVE_PHRASES, *extra_phrases])
        self._abusive = _phrase_pattern(ABUSIVE_PHRASES)
        self.repeat_similarity = repeat_similarity

    def score(self, text: str, earlier_messages: Sequence[str] = ()) -> FrustrationScore:
        """Score `text`, the customer's newest message; `earlier_messages` are their previous ones."""
        lowered = text.lower()
        cues = [Signal("abuse", m.group(), ABUSE_POINTS) for m in self._abusive.finditer(lowered)]
        cues += [Signal("negative_phrase", m.group(), NEGATIVE_POINTS) for m in self._negative.finditer(lowered)]
        cues = _capped(cues)
        repeated = self._repeated(text, earlier_messages)
        if repeated is not None:
            cues.append(Signal("repeated_message", repeated, REPEAT_POINTS))
        if not cues:
            return FrustrationScore(())
        shouting = []
        if _all_caps(text):
            shouting.append(Signal("all_caps", "", SHOUT_POINTS))
        punctuation = _SHOUTED_PUNCTUATION.search(text)
        if punctuation:
            shouting.append(Signal("shouted_punctuation", punctuation.group(), SHOUT_POINTS))
        return FrustrationScore((*cues, *shouting))

    def _repeated(self, text: str, earlier_messages: Sequence[str]) -> str | None:
        """The earlier message this one nearly repeats, if any."""
        current = _normalized(text)
        if len(current.split()) < MIN_REPEAT_WORDS:
            return None
        # A different number (an order, an amount, a code) is new information, not a repeat.
        numbers = set(_NUMBER.findall(current))
        for earlier in reversed(earlier_messages):
            other = _normalized(earlier)
            if (
                set(_NUMBER.findall(other)) == numbers
                and SequenceMatcher(None, current, other).ratio() >= self.repeat_similarity
            ):
                return earlier
        return None


def _capped(cues: list[Signal]) -> list[Signal]:
    kept, total = [], 0.0
    for cue in cues:
        if total + cue.points > MAX_PHRASE_POINTS:
            break
        kept.append(cue)
        total += cue.points
    return kept


def _all_caps(text: str) -> bool:
    """Shouting: at least three words, nearly every letter upper case ("PIN", "ATM" alone aren't)."""
    words = _WORD.findall(text)
    letters = [c for c in text if c.isalpha()]
    if len(words) < 3 or len(letters) < 8:
        return False
    return sum(c.isupper() for c in letters) / len(letters) >= 0.8
