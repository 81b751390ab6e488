"""The learning loop measured: questions a person answered become answers the bot gives itself.

    python -m benchmarks.kb_loop [--top 4] [--held-out 8] [--data ../shared/datasets/banking77]

The demo bot covers all 77 BANKING77 topics, so a copy of it is made that has never heard of
`--held-out` of them (seeded choice): their `faq/<topic>` examples and answers are removed from
the copy's data/nlu.yml and domain.yml before `crowddesk train`. The copy is served as users run
it (`crowddesk run`, `crowddesk run actions`, SQLite store in a fresh file) and driven over HTTP:

1. Replay ("later askers"): test-split questions of the held-out topics plus a sample of covered
   topics, each in a new conversation on the REST webhook. Automated share = answered without a
   person or a clarifying question; precision = answered from the right entry (`faq/<topic>`, or
   the entry approved for a held-out topic), which BANKING77's labels make knowable throughout.
2. The loop: "first askers" (train-split questions of the held-out topics, a different number per
   topic so that volume ranks them) ask; a customer the bot does not hand off asks for a person
   (the "something else" button after a clarification, "Talk to a person" after a wrong answer).
   A scripted agent claims, replies with the topic's answer (the demo's own text) and resolves,
   which files a suggestion. The content team reads the gap report (`/kb/api/gaps`, since the
   first asker), ranks topics by how many customers asked, and for the top `--top` approves one
   suggestion each with the topic's other suggested questions and the gap cluster's examples
   merged in as variants (the rest are rejected as merged). Grouping suggestions by topic is the
   editor's reading of them; the benchmark does it with the dataset's labels.
   Time to automation (a): from the approve call returning to the first replay question of that
   topic answered automatically from the new entry (includes the live index refresh).
3. Replay again, in new conversations: automated share and precision after.
4. One more cycle end to end (b), on the next topic by volume: a new customer's question, the
   agent's claim, reply and resolve, the approval, then paraphrases until one is automated; the
   wall time with every human step scripted (no think time).
5. An approval made on the database by another process, as `crowddesk kb approve` does, on the
   topic after that: the seconds from its commit until the server answers from the new entry.

Questions: BANKING77 (Casanueva et al. 2020, CC BY 4.0), read from `--data`, never copied.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from benchmarks import RESULTS_DIR, write_results
from benchmarks.datasets import Banking77, default_data_dir, load_banking77
from benchmarks.latency import HANDOFF_RESPONSES, machine_info, outcome, process_cpu_seconds
from benchmarks.serving import API_HEADERS, ServedBot, served_project, train
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.dialogue.policy import KB_PAYLOAD_INTENT
from crowddesk.bot.evaluation.metrics import format_table
from crowddesk.bot.project.loading import load_project
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.storage.engines import create_engine_for
from tests.demo_bot import REPO, copy_demo_project

SEED = 0
# card_arrival stays: the demo's greeting has a button for it.
KEPT_TOPICS = frozenset({"card_arrival"})
TALK_TO_A_PERSON = "/human_handoff"  # the payload of the greeting's "Talk to a person" button
MAX_PROBES = 10  # paraphrases tried before a topic counts as not automated
OTHER_PROCESS_WAIT_SECONDS = 60.0  # how long an approval from another process may take to be served
OTHER_PROCESS_POLL_SECONDS = 0.1
FAQ_PREFIX = "faq/"
WRONG_ANSWERS_KEPT = 12  # the most frequent (topic, entry served instead) pairs in the results
KB_BUTTON = f"/{KB_PAYLOAD_INTENT}"
FALLBACK_RESPONSE = "utter_default"  # "Could you rephrase?": not an answer


@dataclass
class Replay:
    """What the bot did with each replayed question, and whether an automated answer was right."""

    questions: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)
    # topic -> [asked, automated, answered right, right entry offered as a clarification button]
    per_topic: dict[str, list[int]] = field(default_factory=dict)
    wrong_answers: Counter[str] = field(default_factory=Counter)  # "topic -> entry served instead"
    server_cpu_ms_per_message: float = 0.0

    def summary(self, topics: Iterable[str] | None = None) -> dict[str, float | int]:
        """Shares over all questions, or over those of `topics`."""
        rows = [self.per_topic[t] for t in (topics if topics is not None else self.per_topic)]
        asked, automated, right, offered = (int(sum(c)) for c in zip(*rows)) if rows else (0, 0, 0, 0)
        return {
            "questions": asked,
            "automated_share": round(automated / asked, 4) if asked else 0.0,
            "precision": round(right / automated, 4) if automated else 0.0,
            "right_option_offered_share": round(offered / asked, 4) if asked else 0.0,
            "automated": automated,
            "right": right,
        }


@dataclass(frozen=True)
class Approval:
    topic: str
    entry_id: str
    gap_volume: int
    suggestions_merged: int
    variants: int
    approve_seconds: float  # the approve call, index refresh included
    seconds_to_automation: float | None  # from the approve call returning; None: not within MAX_PROBES
    probes: int  # paraphrases asked until the first automated answer from the entry


class Bench:
    """The served bot as its customers, its agent and its content team use it."""

    def __init__(
        self,
        bot: ServedBot,
        handoff_texts: frozenset[str],
        fallback_texts: frozenset[str],
        tokens: dict[str, str],
    ) -> None:
        self.bot = bot
        self.http = httpx.Client(base_url=bot.base_url, timeout=120.0)
        self.handoff_texts = handoff_texts
        self.fallback_texts = fallback_texts
        self.tokens = tokens
        self.run_id = uuid.uuid4().hex[:8]
        self._senders = 0

    def new_sender(self) -> str:
        self._senders += 1
        return f"kbloop-{self.run_id}-{self._senders}"

    def say(self, sender: str, text: str) -> list[dict[str, Any]]:
        response = self.http.post("/webhooks/rest/webhook", json={"sender": sender, "message": text})
        response.raise_for_status()
        return response.json()

    def ticket(self, sender: str) -> dict[str, Any] | None:
        response = self.http.get(f"/conversations/{sender}/tracker", headers=API_HEADERS)
        response.raise_for_status()
        return response.json()["handoff"]

    def api(self, role: str, method: str, path: str, **kwargs: Any) -> Any:
        response = self.http.request(method, path, headers={"Authorization": f"Bearer {self.tokens[role]}"}, **kwargs)
        if response.status_code >= 400:
            raise RuntimeError(f"{method} {path}: {response.status_code} {response.text[:300]}")
        return response.json()

    def answer(self, text: str) -> tuple[str, str | None, set[str]]:
        """Ask `text` in a new conversation: (outcome, the KB entry answered from if any, the
        entries offered as clarification buttons)."""
        replies = self.say(self.new_sender(), text)
        entry = next((r["custom"]["kb_entry"] for r in replies if (r.get("custom") or {}).get("kb_entry")), None)
        kind = self.outcome(replies)
        buttons = [b["payload"] for r in replies for b in r.get("buttons", [])] if kind == "clarify" else []
        return kind, entry, {offered_entry(payload) for payload in buttons}

    def outcome(self, replies: list[dict[str, Any]]) -> str:
        """latency.outcome, with "rephrase, please" told apart from an answer."""
        kind = outcome(replies, self.handoff_texts)
        if kind == "response" and any(r.get("text") in self.fallback_texts for r in replies):
            return "fallback"
        return kind

    def hand_off(self, text: str) -> tuple[str, str]:
        """A customer who needs a person asks `text`: (what the bot did first, the ticket id)."""
        sender = self.new_sender()
        replies = self.say(sender, text)
        first = self.outcome(replies)
        if first == "clarify":
            self.say(sender, [b for r in replies for b in r.get("buttons", [])][-1]["payload"])
        elif first != "handoff":
            self.say(sender, TALK_TO_A_PERSON)
        ticket = self.ticket(sender)
        if ticket is None:
            raise RuntimeError(f"no ticket after asking for a person (first outcome {first})")
        return first, ticket["id"]

    def agent_answers(self, ticket_id: str, answer: str) -> None:
        for verb, body in (("claim", None), ("reply", {"text": answer}), ("resolve", None)):
            self.api("agent", "POST", f"/desk/api/tickets/{ticket_id}/{verb}", json=body)


def offered_entry(payload: str) -> str:
    """The KB entry a clarification button selects: `/faq/<topic>` names the entry of that
    retrieval intent, `/kb{"entry_id": ...}` any other entry."""
    if payload.startswith(KB_BUTTON):
        return str(json.loads(payload[len(KB_BUTTON) :])["entry_id"])
    return payload.removeprefix("/")


def withhold_topics(project: Path, topics: Iterable[str]) -> None:
    """Remove `faq/<topic>` examples from the copy's data/nlu.yml and `utter_faq/<topic>` from its
    domain.yml, so the trained bot has never heard of those topics."""
    nlu, domain = project / "data" / "nlu.yml", project / "domain.yml"
    for topic in topics:
        nlu.write_text(
            _without_block(nlu.read_text(encoding="utf-8"), rf"- intent: faq/{re.escape(topic)}", 0), encoding="utf-8"
        )
        domain.write_text(
            _without_block(domain.read_text(encoding="utf-8"), rf"utter_faq/{re.escape(topic)}:", 2), encoding="utf-8"
        )


def _without_block(text: str, header: str, indent: int) -> str:
    """`text` without the YAML block whose first line is `header` at `indent` spaces, up to the
    next line at that indent or less (blank lines in between go with the block)."""
    lines = text.splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.fullmatch(" " * indent + header + r"\s*", line))
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    return "".join(lines[:start] + lines[end:])


def replay(bench: Bench, questions: Sequence[tuple[str, str]], expected: dict[str, str]) -> Replay:
    """Each (text, topic) in a new conversation; right = answered from `expected[topic]`."""
    result = Replay()
    cpu_start = process_cpu_seconds(bench.bot.pid)
    for text, topic in questions:
        kind, entry, offered = bench.answer(text)
        result.questions += 1
        result.outcomes[kind] += 1
        automated = kind in ("answer_from_kb", "response")
        right = automated and entry is not None and entry == expected.get(topic)
        if automated and not right:
            result.wrong_answers[f"{topic} -> {entry or kind}"] += 1
        counts = result.per_topic.setdefault(topic, [0, 0, 0, 0])
        counts[0] += 1
        counts[1] += automated
        counts[2] += right
        counts[3] += expected.get(topic) in offered
    result.server_cpu_ms_per_message = round(
        1000 * (process_cpu_seconds(bench.bot.pid) - cpu_start) / max(1, result.questions), 1
    )
    return result


def first_automated(bench: Bench, paraphrases: Sequence[str], entry_id: str, since: float) -> tuple[float | None, int]:
    """Ask paraphrases one by one until one is answered automatically from `entry_id`: (seconds
    from `since` to that reply, paraphrases asked); (None, n) if none of the first MAX_PROBES is."""
    for probes, text in enumerate(paraphrases[:MAX_PROBES], start=1):
        kind, entry, _ = bench.answer(text)
        if kind == "answer_from_kb" and entry == entry_id:
            return time.perf_counter() - since, probes
    return None, min(len(paraphrases), MAX_PROBES)


def gap_volumes(bench: Bench, since: float, topic_of: dict[str, str]) -> tuple[Counter[str], dict[str, list[str]]]:
    """Customers per held-out topic in the gap report since `since` (a time.time()), and each
    topic's example questions; a cluster counts for the topic most of its examples ask about."""
    days = max(time.time() - since, 1.0) / 86400
    clusters = bench.api("editor", "GET", "/kb/api/gaps", params={"since_days": days, "limit": 200})
    volumes: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    for cluster in clusters:
        topics = Counter(topic_of[text] for text in cluster["examples"] if text in topic_of)
        if not topics:
            continue
        topic = topics.most_common(1)[0][0]
        volumes[topic] += cluster["size"]
        examples.setdefault(topic, []).extend(t for t in cluster["examples"] if topic_of.get(t) == topic)
    return volumes, examples


def approve_topic(
    bench: Bench, topic: str, suggestions: list[dict[str, Any]], extra_questions: Sequence[str]
) -> tuple[dict[str, Any], float]:
    """Approve the topic's first suggestion with every suggested and gap question as a variant,
    reject the others as merged: (the published entry, the approve call's seconds)."""
    keep, *merged = suggestions
    questions = list(dict.fromkeys(q for s in suggestions for q in s["questions"]))
    questions += [q for q in dict.fromkeys(extra_questions) if q not in questions]
    start = time.perf_counter()
    entry = bench.api("editor", "POST", f"/kb/api/suggestions/{keep['id']}/approve", json={"questions": questions})
    seconds = time.perf_counter() - start
    for other in merged:
        bench.api(
            "editor", "POST", f"/kb/api/suggestions/{other['id']}/reject", json={"reason": f"merged into {entry['id']}"}
        )
    return entry, seconds


def pending_by_topic(bench: Bench, topic_of_ticket: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for suggestion in bench.api("editor", "GET", "/kb/api/suggestions"):
        topic = topic_of_ticket.get(suggestion["ticket_id"])
        if topic is not None:
            grouped.setdefault(topic, []).append(suggestion)
    return grouped


def full_cycle(
    bench: Bench,
    topic: str,
    question: str,
    answer: str,
    paraphrases: Sequence[str],
    topic_of_ticket: dict[str, str],
) -> dict[str, Any]:
    """One customer's question handed off, answered, approved (merged with the topic's pending
    suggestions, as the content team does), then paraphrases until one is automated."""
    steps: dict[str, float] = {}
    start = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        steps[name] = round(now - last, 3)
        last = now

    first, ticket_id = bench.hand_off(question)
    topic_of_ticket[ticket_id] = topic
    lap("handoff")
    bench.agent_answers(ticket_id, answer)
    lap("agent_claim_reply_resolve")
    suggestions = pending_by_topic(bench, topic_of_ticket)[topic]
    suggestions.sort(key=lambda s: s["ticket_id"] != ticket_id)  # the new one is the one approved
    lap("list_suggestions")
    entry, _ = approve_topic(bench, topic, suggestions, [])
    lap("approve_and_reject_merged")
    seconds, probes = first_automated(bench, paraphrases, entry["id"], last)
    lap("paraphrases_until_automated")
    return {
        "topic": topic,
        "first_outcome": first,
        "entry_id": entry["id"],
        "steps_seconds": steps,
        "automated": seconds is not None,
        "paraphrases_asked": probes,
        "total_seconds": round(time.perf_counter() - start, 3),
    }


def approved_from_another_process(bench: Bench, topic: str, suggestion: dict[str, Any]) -> dict[str, Any]:
    """The suggestion approved on the database from this process, as `crowddesk kb approve` does
    at a terminal, then its question asked again and again: the seconds from the approval's
    commit to the first answer from the new entry (the server's change watch plus its refresh)."""
    engine = create_engine_for(bench.bot.database_url)
    entry = Suggestions(engine).approve(suggestion["id"], "bench-editor")
    committed = time.perf_counter()
    engine.dispose()
    asked = 0
    while time.perf_counter() - committed < OTHER_PROCESS_WAIT_SECONDS:
        asked += 1
        kind, served, _ = bench.answer(suggestion["questions"][0])
        if kind == "answer_from_kb" and served == entry.id:
            return {
                "topic": topic,
                "entry_id": entry.id,
                "asked": asked,
                "seconds_after_commit": round(time.perf_counter() - committed, 3),
            }
        time.sleep(OTHER_PROCESS_POLL_SECONDS)
    return {"topic": topic, "entry_id": entry.id, "asked": asked, "seconds_after_commit": None}


def first_asker_counts(topics: Sequence[str], most: int, fewest: int) -> dict[str, int]:
    """How many customers ask about each held-out topic before anyone answers it: from `most`
    down to `fewest`, in the seeded topic order, so the gap report has a volume order to find."""
    counts = np.linspace(most, fewest, num=len(topics)).round().astype(int)
    return dict(zip(topics, (int(c) for c in counts)))


@dataclass(frozen=True)
class Topics:
    """BANKING77 split for a bot copy: the topics it never heard of, the ones it covers, and each
    topic's questions from either split."""

    held_out: list[str]
    covered: list[str]
    train: dict[str, list[str]]  # topic -> train-split questions, shuffled
    test: dict[str, list[str]]  # topic -> test-split questions, shuffled


def split_topics(data: Banking77, held_out: int, rng: random.Random) -> Topics:
    """`held_out` topics chosen with `rng` (never one in KEPT_TOPICS), the others covered."""
    chosen = rng.sample(sorted(set(data.test.labels) - KEPT_TOPICS), held_out)
    return Topics(
        chosen,
        sorted(set(data.test.labels) - set(chosen)),
        _by_topic(data.train.texts, data.train.labels, rng),
        _by_topic(data.test.texts, data.test.labels, rng),
    )


@dataclass(frozen=True)
class Questions:
    """Who asks what: the seeded choice of held-out topics and of their askers."""

    held_out: list[str]
    covered: list[str]
    train: dict[str, list[str]]  # topic -> train-split questions, shuffled
    test: dict[str, list[str]]  # topic -> test-split questions, shuffled
    first_askers_per_topic: dict[str, int]
    first_askers: list[tuple[str, str]]  # (question, topic), in the order they are asked
    later: list[tuple[str, str]]  # the replay


def choose_questions(args: argparse.Namespace) -> Questions:
    rng = random.Random(SEED)
    topics = split_topics(load_banking77(args.data), args.held_out, rng)
    held_out, covered, train_texts, test_texts = topics.held_out, topics.covered, topics.train, topics.test
    askers = first_asker_counts(held_out, args.most_first_askers, args.fewest_first_askers)
    first_askers = [(text, topic) for topic in held_out for text in train_texts[topic][: askers[topic]]]
    rng.shuffle(first_askers)
    later = [(text, topic) for topic in held_out for text in test_texts[topic][: args.replay_per_topic]]
    later += rng.sample([(text, topic) for topic in covered for text in test_texts[topic]], args.covered_questions)
    rng.shuffle(later)
    return Questions(held_out, covered, train_texts, test_texts, askers, first_askers, later)


def _by_topic(texts: Sequence[str], labels: Sequence[str], rng: random.Random) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for text, label in zip(texts, labels):
        grouped.setdefault(label, []).append(" ".join(text.split()))
    for group in grouped.values():
        rng.shuffle(group)
    return grouped


def trained_copy(held_out: Sequence[str], workdir: Path) -> Path:
    """The demo project without the `held_out` topics, trained with `crowddesk train`."""
    (workdir / "demo").mkdir()
    project = copy_demo_project(workdir / "demo")
    withhold_topics(project, held_out)
    print(f"training the demo bot without {len(held_out)} topics (crowddesk train) ...", flush=True)
    start = time.perf_counter()
    train(project, workdir / "train.log")
    print(f"  trained in {time.perf_counter() - start:.0f} s", flush=True)
    return project


def desk_tokens(database_url: str) -> dict[str, str]:
    """An agent and an editor account, as an admin would add them, and a token for each."""
    engine = create_engine_for(database_url)
    agents = AgentDirectory(engine)
    tokens = {}
    for role in ("agent", "editor"):
        agents.add(f"bench-{role}", f"Bench {role}", role=role)
        tokens[role] = agents.issue_token(f"bench-{role}")
    engine.dispose()
    return tokens


@dataclass
class Loop:
    """Phase 2: what the first askers met, and what the content team approved."""

    first_outcomes: Counter[str] = field(default_factory=Counter)
    topic_of_ticket: dict[str, str] = field(default_factory=dict)
    handoffs_seconds: float = 0.0
    volumes: Counter[str] = field(default_factory=Counter)
    suggestions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    ranked: list[str] = field(default_factory=list)
    approvals: list[Approval] = field(default_factory=list)


def hand_off_first_askers(bench: Bench, questions: Questions, answers: dict[str, str]) -> tuple[Loop, float]:
    """Every first asker handed off and answered by the agent: (the loop so far, its start as time.time())."""
    loop = Loop()
    started, start = time.time(), time.perf_counter()
    for text, topic in questions.first_askers:
        first, ticket_id = bench.hand_off(text)
        loop.first_outcomes[first] += 1
        loop.topic_of_ticket[ticket_id] = topic
        bench.agent_answers(ticket_id, answers[topic])
    loop.handoffs_seconds = round(time.perf_counter() - start, 1)
    return loop, started


def approve_top_topics(
    bench: Bench,
    asked: dict[str, str],
    paraphrases: dict[str, list[str]],
    loop: Loop,
    since: float,
    top: int,
    expected: dict[str, str],
) -> None:
    """The content team approves the `top` topics of `loop.topic_of_ticket` by gap volume (`asked`:
    question -> topic, to read the report); after each, the topic's `paraphrases` are asked until
    one is answered from the new entry (time to automation). `expected` learns the entries."""
    loop.volumes, gap_examples = gap_volumes(bench, since, asked)
    loop.suggestions = pending_by_topic(bench, loop.topic_of_ticket)
    loop.ranked = sorted(loop.suggestions, key=lambda t: (-loop.volumes[t], -len(loop.suggestions[t]), t))
    for topic in loop.ranked[:top]:
        entry, approve_seconds = approve_topic(bench, topic, loop.suggestions[topic], gap_examples.get(topic, []))
        approved_at = time.perf_counter()
        expected[topic] = entry["id"]
        seconds, probes = first_automated(bench, paraphrases[topic], entry["id"], approved_at)
        loop.approvals.append(
            Approval(
                topic,
                entry["id"],
                loop.volumes[topic],
                len(loop.suggestions[topic]),
                len(entry["questions"]),
                round(approve_seconds, 3),
                None if seconds is None else round(seconds, 3),
                probes,
            )
        )
        print(
            f"  approved {topic} ({loop.volumes[topic]} in the gap report, {len(entry['questions'])} "
            f"variants): automated after {probes} paraphrase(s)",
            flush=True,
        )


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    questions = choose_questions(args)
    demo = load_project(REPO).domain
    answers = {topic: demo.responses[f"utter_faq/{topic}"][0].text for topic in questions.held_out}
    handoff_texts = frozenset(r.text for name in HANDOFF_RESPONSES for r in demo.responses.get(name, []))
    fallback_texts = frozenset(r.text for r in demo.responses.get(FALLBACK_RESPONSE, []))
    project = args.project or trained_copy(questions.held_out, workdir)

    expected = {topic: f"{FAQ_PREFIX}{topic}" for topic in questions.covered}
    load_before = os.getloadavg()[0]
    with served_project(project, workdir) as bot:
        bench = Bench(bot, handoff_texts, fallback_texts, desk_tokens(bot.database_url))
        for text, _ in questions.later[:5]:  # warm-up, untimed and not counted
            bench.answer(text)
        print(f"phase 1: replaying {len(questions.later)} later askers' questions ...", flush=True)
        before = replay(bench, questions.later, expected)
        print(
            f"phase 2: {len(questions.first_askers)} first askers handed off and answered by an agent ...", flush=True
        )
        loop, started = hand_off_first_askers(bench, questions, answers)
        approve_top_topics(bench, dict(questions.first_askers), questions.test, loop, started, args.top, expected)
        print("phase 3: replaying the later askers again ...", flush=True)
        after = replay(bench, questions.later, expected)
        cycle = None
        if len(loop.ranked) > args.top:
            topic = loop.ranked[args.top]
            print(f"one more cycle end to end, on {topic} ...", flush=True)
            unused = questions.train[topic][questions.first_askers_per_topic[topic]]
            cycle = full_cycle(bench, topic, unused, answers[topic], questions.test[topic], loop.topic_of_ticket)
        from_cli = None
        if len(loop.ranked) > args.top + 1:
            topic = loop.ranked[args.top + 1]
            print(f"an approval from another process (as `crowddesk kb approve`), on {topic} ...", flush=True)
            from_cli = approved_from_another_process(bench, topic, loop.suggestions[topic][0])
        bench.http.close()
    return {
        "benchmark": "kb_loop",
        "machine": {**machine_info(), "load_average_1m_before_serving": round(load_before, 2)},
        "settings": {
            "held_out_topics": questions.held_out,
            "first_askers_per_topic": questions.first_askers_per_topic,
            "top": args.top,
            "replay_per_held_out_topic": args.replay_per_topic,
            "covered_questions": args.covered_questions,
            "seed": SEED,
            "max_probes": MAX_PROBES,
            "per_held_out_topic_columns": ["asked", "automated", "right", "right_option_offered"],
            "data": "BANKING77: first askers from train.csv, replay from test.csv",
            "server": "crowddesk run (uvicorn, SQLite file) + crowddesk run actions, subprocesses",
        },
        "replay": {"before": replay_results(before, questions, loop), "after": replay_results(after, questions, loop)},
        "loop": loop_results(loop, len(questions.first_askers)),
        "full_cycle": cycle,
        "approved_from_another_process": from_cli,
    }


def replay_results(result: Replay, questions: Questions, loop: Loop) -> dict[str, Any]:
    approved = [a.topic for a in loop.approvals]
    return {
        "all": result.summary(),
        "approved_topics": result.summary(approved),
        "other_held_out_topics": result.summary(t for t in questions.held_out if t not in approved),
        "covered_topics": result.summary(t for t in result.per_topic if t in questions.covered),
        "outcomes": dict(sorted(result.outcomes.items())),
        "per_held_out_topic": {t: result.per_topic[t] for t in questions.held_out},
        "most_frequent_wrong_answers": dict(result.wrong_answers.most_common(WRONG_ANSWERS_KEPT)),
        "server_cpu_ms_per_message": result.server_cpu_ms_per_message,
    }


def loop_results(loop: Loop, first_askers: int) -> dict[str, Any]:
    timed = [a.seconds_to_automation for a in loop.approvals if a.seconds_to_automation is not None]
    return {
        "first_askers": first_askers,
        "first_outcomes": dict(sorted(loop.first_outcomes.items())),
        "seconds_for_all_handoffs": loop.handoffs_seconds,
        "gap_volumes": dict(loop.volumes.most_common()),
        "suggestions_per_topic": {t: len(s) for t, s in loop.suggestions.items()},
        "approvals": [asdict(a) for a in loop.approvals],
        "time_to_automation_p50_s": round(float(np.median(timed)), 3) if timed else None,
        "time_to_automation_max_s": round(max(timed), 3) if timed else None,
    }


def print_tables(results: dict[str, Any]) -> None:
    replayed = results["replay"]
    rows = []
    for part in ("all", "approved_topics", "other_held_out_topics", "covered_topics"):
        b, a = replayed["before"][part], replayed["after"][part]
        rows.append(
            [
                part.replace("_", " "),
                str(a["questions"]),
                f"{100 * b['automated_share']:.1f} %",
                f"{100 * a['automated_share']:.1f} %",
                f"{100 * (a['automated_share'] - b['automated_share']):+.1f} pt",
                f"{100 * b['precision']:.1f} %" if b["automated"] else "-",
                f"{100 * a['precision']:.1f} %" if a["automated"] else "-",
                f"{100 * b['right_option_offered_share']:.1f} %",
                f"{100 * a['right_option_offered_share']:.1f} %",
            ]
        )
    print()
    print(
        format_table(
            [
                "replayed",
                "questions",
                "automated before",
                "after",
                "gain",
                "precision before",
                "after",
                "right button before",
                "after",
            ],
            rows,
        )
    )
    loop = results["loop"]
    print()
    print(
        format_table(
            ["approved topic", "gap volume", "suggestions", "variants", "approve s", "to automation s", "paraphrases"],
            [
                [
                    a["topic"],
                    str(a["gap_volume"]),
                    str(a["suggestions_merged"]),
                    str(a["variants"]),
                    f"{a['approve_seconds']:.2f}",
                    "not reached" if a["seconds_to_automation"] is None else f"{a['seconds_to_automation']:.2f}",
                    str(a["probes"]),
                ]
                for a in loop["approvals"]
            ],
        )
    )
    print(f"\nfirst askers: {loop['first_askers']}, the bot's first move: {loop['first_outcomes']}")
    print(
        f"time to automation after approval: p50 {loop['time_to_automation_p50_s']} s, "
        f"max {loop['time_to_automation_max_s']} s"
    )
    cycle = results["full_cycle"]
    if cycle is not None:
        print(
            f"one full cycle ({cycle['topic']}): {cycle['total_seconds']:.2f} s, automated: "
            f"{cycle['automated']} after {cycle['paraphrases_asked']} paraphrase(s); {cycle['steps_seconds']}"
        )
    from_cli = results["approved_from_another_process"]
    if from_cli is not None:
        print(
            f"approved from another process ({from_cli['topic']}): served "
            f"{from_cli['seconds_after_commit']} s after the commit ({from_cli['asked']} asks)"
        )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--data",
        type=Path,
        default=default_data_dir("banking77"),
        help="BANKING77 folder (train.csv, test.csv); default ../shared/datasets/banking77",
    )
    parser.add_argument("--held-out", type=int, default=8, help="topics the bot copy never saw (default 8)")
    parser.add_argument(
        "--top", type=int, default=4, help="topics whose suggestions the content team approves, by volume (default 4)"
    )
    parser.add_argument(
        "--most-first-askers", type=int, default=12, help="first askers of the most asked held-out topic (default 12)"
    )
    parser.add_argument(
        "--fewest-first-askers", type=int, default=3, help="first askers of the least asked held-out topic (default 3)"
    )
    parser.add_argument(
        "--replay-per-topic",
        type=int,
        default=40,
        help="replayed test questions per held-out topic (default 40, all of them)",
    )
    parser.add_argument(
        "--covered-questions", type=int, default=160, help="replayed test questions of covered topics (default 160)"
    )
    parser.add_argument(
        "--project", type=Path, help="an already trained copy with the same held-out topics (skips training)"
    )
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "kb_loop.json", help="JSON results file")
    args = parser.parse_args(argv)
    if not 1 <= args.top <= args.held_out:
        parser.error(f"--top must be between 1 and --held-out ({args.held_out}), got {args.top}")
    if not 1 <= args.fewest_first_askers <= args.most_first_askers:
        parser.error("--fewest-first-askers must be between 1 and --most-first-askers")

    with tempfile.TemporaryDirectory(prefix="crowddesk-kb-loop-") as workdir:
        results = run(args, Path(workdir))
    print_tables(results)
    print(f"wrote {write_results('kb_loop', results, args.out)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
