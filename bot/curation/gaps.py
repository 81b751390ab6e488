"""The gap report: customer questions the bot could not answer, grouped by meaning, biggest
group first, leaving out those a published entry now covers, so the team writes those first.

An answer the customer marked "Not helpful" counts too: the bot answered, but with the wrong
entry, which no handoff or fallback would show."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
from sklearn.cluster import AgglomerativeClustering
from sqlalchemy import Engine, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.store import EventRow
from crowddesk.bot.dialogue.executors import CLARIFY_ACTION
from crowddesk.bot.dialogue.kb_feedback import read_press, served_answer
from crowddesk.knowledge_base.index import question_vectors
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.nlu.encoders import Encoder

# Handoffs that mean "nothing in the KB fits"; a customer asking for a person, a failed
# custom action or a topic only people handle say nothing about missing content.
GAP_HANDOFF_REASONS = frozenset({"out_of_scope", "low_confidence", "failed_turns"})
# The bot asked to rephrase or offered options: it was not sure enough to answer.
UNSURE_ACTIONS = frozenset({"action_default_fallback", CLARIFY_ACTION})
DEFAULT_SIMILARITY = 0.7  # cosine at which two questions count as the same need
DEFAULT_COVERED = 0.8  # cosine to a published question at which a gap counts as covered
DEFAULT_EXAMPLES = 3


@dataclass(frozen=True)
class UnansweredQuestion:
    """A customer message the bot handed off (`handoff`), was unsure about (`unsure`), or
    answered from `entry_id` when the customer then said it did not help (`unhelpful`)."""

    text: str
    outcome: str
    timestamp: float
    entry_id: str | None = None


@dataclass(frozen=True)
class GapCluster:
    """Questions that ask for the same thing: how many, a few examples, and when."""

    size: int
    examples: list[str]
    outcomes: dict[str, int]
    first_seen: datetime
    last_seen: datetime

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "examples": list(self.examples),
            "outcomes": dict(self.outcomes),
            "first_seen": self.first_seen.isoformat(),
            "last_seen": self.last_seen.isoformat(),
        }


def unanswered_questions(
    engine: Engine, since: datetime | None = None, until: datetime | None = None
) -> list[UnansweredQuestion]:
    """Customer messages from `since` up to `until` that were handed off for want of an answer,
    that the bot answered with a fallback or a clarification (low confidence), or whose answer
    the customer marked not helpful (before `until`)."""
    query = (
        select(EventRow.conversation_id, EventRow.data)
        .where(EventRow.type.in_(("user", "bot", "handoff", "action")))
        .order_by(EventRow.conversation_id, EventRow.seq)
    )
    if since is not None:
        query = query.where(EventRow.timestamp >= since.timestamp())
    if until is not None:
        query = query.where(EventRow.timestamp < until.timestamp())
    with sessionmaker(engine)() as session:
        return list(_classify(session.execute(query.execution_options(yield_per=1000))))


def _classify(events: Iterable[tuple[int, dict[str, Any]]]) -> Iterator[UnansweredQuestion]:
    conversation: int | None = None
    asked: dict[str, Any] | None = None
    # answer id -> (the question it answered, its entry), within one conversation, as presses
    # on another conversation's answers count nothing; popped at the first press, so only that
    # one counts, as in the usage counts.
    answers: dict[str, tuple[dict[str, Any], str]] = {}
    for conversation_id, event in events:
        if conversation_id != conversation:
            conversation, asked, answers = conversation_id, None, {}
        kind = event["event"]
        if kind == "bot":
            served = served_answer(event)
            if asked is not None and served is not None:
                answers[served[0]] = (asked, served[1])
            continue
        if kind == "user" and (press := read_press(str(event.get("text") or ""))) is not None:
            answered = answers.pop(press.answer_id, None)
            if answered is not None and not press.helpful:
                question, entry_id = answered
                yield UnansweredQuestion(
                    str(question.get("text") or ""), "unhelpful", float(question["timestamp"]), entry_id
                )
            asked = None
            continue
        if kind == "user":
            # parse_data is None for messages sent while a person owned the conversation.
            asked = event if event.get("parse_data") is not None else None
            continue
        if asked is None:
            continue
        if kind == "handoff":
            if event.get("reason") in GAP_HANDOFF_REASONS:
                yield UnansweredQuestion(str(asked.get("text") or ""), "handoff", float(asked["timestamp"]))
            asked = None
        elif event.get("name") in UNSURE_ACTIONS:
            yield UnansweredQuestion(str(asked.get("text") or ""), "unsure", float(asked["timestamp"]))
            asked = None


def gap_report(
    engine: Engine,
    encoder: Encoder,
    *,
    since: datetime | None = None,
    similarity: float = DEFAULT_SIMILARITY,
    covered: float = DEFAULT_COVERED,
    examples: int = DEFAULT_EXAMPLES,
    redactor: Redactor | None = None,
) -> list[GapCluster]:
    """Unanswered questions since `since` not covered by a published entry, clustered, most
    asked first; PII in them is redacted (`redactor`: the project's patterns too) first."""
    return clustered_gaps(
        engine,
        encoder,
        unanswered_questions(engine, since),
        similarity=similarity,
        covered=covered,
        examples=examples,
        redactor=redactor,
    )


def clustered_gaps(
    engine: Engine,
    encoder: Encoder,
    unanswered: Sequence[UnansweredQuestion],
    *,
    similarity: float = DEFAULT_SIMILARITY,
    covered: float = DEFAULT_COVERED,
    examples: int = DEFAULT_EXAMPLES,
    redactor: Redactor | None = None,
) -> list[GapCluster]:
    """`unanswered` questions not covered by a published entry, clustered, most asked first; PII in
    them is redacted (`redactor`: the project's patterns too) before anything else."""
    redactor = redactor or Redactor()
    # Before clustering: a card number is no part of what was asked, so it must not split groups.
    questions = [replace(q, text=redactor.redact(q.text)) for q in unanswered if q.text.strip()]
    if not questions:
        return []
    vectors = encoder.encode([q.text for q in questions])
    store = KnowledgeBaseStore(engine)
    published = store.published()
    known = question_vectors(store, encoder, published)
    if len(known):
        similarities = vectors @ known.T
        # The entry a customer marked not helpful does not cover their question.
        row_entries = np.array([entry.id for entry in published for _ in entry.questions])
        for row, question in enumerate(questions):
            if question.entry_id is not None:
                similarities[row, row_entries == question.entry_id] = -1.0
        keep = similarities.max(axis=1) < covered
        questions = [q for q, k in zip(questions, keep) if k]
        vectors = vectors[keep]
    return _clusters(questions, vectors, similarity, examples)


def _clusters(
    questions: list[UnansweredQuestion], vectors: np.ndarray, similarity: float, examples: int
) -> list[GapCluster]:
    if not questions:
        return []
    if len(questions) == 1:
        labels = np.zeros(1, dtype=int)
    else:
        # Average linkage on cosine distance: deterministic, and no cluster count to guess.
        labels = AgglomerativeClustering(
            n_clusters=None,
            distance_threshold=1.0 - similarity,
            metric="cosine",
            linkage="average",
        ).fit_predict(vectors)
    groups: dict[int, list[UnansweredQuestion]] = {}
    for label, question in zip(labels, questions):
        groups.setdefault(int(label), []).append(question)
    clusters = [_cluster(members, examples) for members in groups.values()]
    return sorted(clusters, key=lambda c: (-c.size, -c.last_seen.timestamp(), c.examples[0]))


def _cluster(members: list[UnansweredQuestion], examples: int) -> GapCluster:
    # The most asked wordings first; ties in the order they were asked.
    wordings = Counter(q.text.strip() for q in members)
    times = [q.timestamp for q in members]
    return GapCluster(
        size=len(members),
        examples=[text for text, _ in wordings.most_common(examples)],
        outcomes=dict(sorted(Counter(q.outcome for q in members).items())),
        first_seen=datetime.fromtimestamp(min(times), UTC),
        last_seen=datetime.fromtimestamp(max(times), UTC),
    )
