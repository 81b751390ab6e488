"""benchmarks/kb_text_fields.py's own logic: thread-style entries and the retrieval metrics."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.kb_text_fields import BODIES, metrics, thread
from crowddesk.knowledge_base.types import KBEntry

TRAINING = {"faq/card_arrival": [f"where is my card, asked {i} times" for i in range(6)]}
CHATTER = [f"what is the weather in city {i}" for i in range(10)]


@pytest.mark.parametrize("body", sorted(BODIES))
def test_a_thread_has_one_training_question_as_title_and_a_body_of_the_stated_mix(body: str) -> None:
    entry = KBEntry(
        "faq/card_arrival", ["Where is my card?", "card not here"], "It takes 5 days.", intent="faq/card_arrival"
    )

    made = thread(entry, np.random.default_rng(0), body, TRAINING, CHATTER)

    [title] = made.questions
    on_topic, off_topic = BODIES[body]
    assert title in TRAINING[entry.id] and title not in made.context
    assert sum(question in made.context for question in TRAINING[entry.id]) == on_topic
    assert sum(sentence in made.context for sentence in CHATTER) == off_topic
    assert (made.id, made.answer, made.intent) == (entry.id, entry.answer, entry.intent)


def test_metrics_rank_the_right_entry_and_answer_only_as_far_as_precision_holds() -> None:
    # Four queries over three entries: ranks 1, 1, 2 and 1; the wrong top answer scores lowest
    # but one, so answering the three highest-scoring queries is 2/3 right.
    scores = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.1], [0.7, 0.6, 0.0], [0.1, 0.0, 0.5]])
    truth = np.array([0, 1, 1, 2])

    result = metrics(scores, truth)

    assert result["recall@1"] == 0.75 and result["recall@3"] == 1.0
    assert result["mrr@10"] == pytest.approx((1 + 1 + 0.5 + 1) / 4)
    assert result["answered@95"] == 0.5  # the two most confident queries, both right
