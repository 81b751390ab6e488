"""Who arrives when, asking what: customers arrive as a Poisson process whose rate follows a
social channel's day, and ask a repeat question (a popular topic, in their own spelling) or a
new one nobody taught the bot."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

# Share of a weekday's customers arriving in each hour (UTC): quiet at night, a morning climb, a
# plateau over the working day and an evening peak, when people write from their phones.
HOURLY_SHARE = np.array(
    [0.8, 0.5, 0.3, 0.3, 0.3, 0.5, 1.2, 2.4, 4.0, 5.6, 6.4, 6.6,
     6.2, 6.0, 5.9, 5.8, 5.6, 5.6, 5.9, 6.3, 6.2, 5.2, 3.6, 2.0]
)  # fmt: skip
HOURLY_SHARE = HOURLY_SHARE / HOURLY_SHARE.sum()
WEEKEND_FACTOR = 0.7  # weekends bring fewer questions
HOUR = timedelta(hours=1)


def arrivals(rng: np.random.Generator, since: datetime, days: int, per_weekday: float) -> list[datetime]:
    """The moments customers arrive over `days` from `since` (midnight UTC), `per_weekday` a
    weekday on average, in order."""
    moments: list[datetime] = []
    for day in range(days):
        start = since + timedelta(days=day)
        factor = WEEKEND_FACTOR if start.weekday() >= 5 else 1.0
        for hour, share in enumerate(HOURLY_SHARE):
            count = rng.poisson(per_weekday * factor * share)
            offsets = np.sort(rng.uniform(0.0, HOUR.total_seconds(), count))
            moments.extend(start + hour * HOUR + timedelta(seconds=float(s)) for s in offsets)
    return moments


@dataclass(frozen=True)
class Question:
    """What a customer asks; `topic` is the intent that answers it, None for a new question."""

    text: str
    topic: str | None = None


class QuestionMix:
    """Repeat questions by topic popularity (Zipf over an order drawn from the seed: a few topics
    make most of the traffic), and a share of new ones; repeat wordings get the casual spelling
    of a phone keyboard."""

    def __init__(
        self, rng: np.random.Generator, repeat: Sequence[Question], new: Sequence[Question], new_share: float
    ) -> None:
        if not repeat and new_share < 1.0:
            raise ValueError("no repeat questions to draw from")
        if not new and new_share > 0.0:
            raise ValueError("no new questions to draw from")
        self.rng, self.new, self.new_share = rng, list(new), new_share
        self.by_topic: dict[str, list[Question]] = {}
        for question in repeat:
            self.by_topic.setdefault(str(question.topic), []).append(question)
        self.topics = [sorted(self.by_topic)[i] for i in rng.permutation(len(self.by_topic))]
        weights = 1.0 / np.arange(1, len(self.topics) + 1)
        self.popularity = weights / weights.sum()

    def draw(self) -> Question:
        if self.rng.random() < self.new_share:
            return self.new[self.rng.integers(len(self.new))]
        wordings = self.by_topic[self.topics[self.rng.choice(len(self.topics), p=self.popularity)]]
        asked = wordings[self.rng.integers(len(wordings))]
        return Question(casual(self.rng, asked.text), asked.topic)


def casual(rng: np.random.Generator, text: str) -> str:
    """`text` as typed on a phone: often lower case, often no final punctuation, sometimes two
    letters swapped in a longer word."""
    if rng.random() < 0.5:
        text = text.lower()
    if rng.random() < 0.5:
        text = text.rstrip("?.!")
    words = text.split(" ")
    long_words = [i for i, word in enumerate(words) if len(word) >= 5 and word.isalpha()]
    if long_words and rng.random() < 0.2:
        i = long_words[rng.integers(len(long_words))]
        at = int(rng.integers(1, len(words[i]) - 2))
        word = words[i]
        words[i] = word[:at] + word[at + 1] + word[at] + word[at + 2 :]
    return " ".join(words)
