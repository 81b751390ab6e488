"""`crowddesk evaluate conversations`: Rasa test stories driven through the real engine.

Each story is a fresh conversation in a temporary SQLite database. After every `user` step, the
bot's actions in that turn must match the story's following `action` steps exactly and in order,
and `slot_was_set` steps check the conversation's slots at that point. Two names follow Rasa's
conventions rather than the engine's event names:

- a knowledge-base answer matches `utter_faq` or `utter_faq/<key>` (the retrieval intent's
  response) as well as `action_answer_from_kb`;
- a hand-off is ONE step, the bot's hand-off message: `utter_out_of_scope` for out-of-scope
  messages and `utter_handoff` for every other reason; the queue notice that follows it
  (`utter_handoff_queued`) is part of the hand-off and is not listed.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx

from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.evaluation.data import ConversationStory, ExpectedAction, StoryStep, UserTurn
from crowddesk.bot.project.loading import Project
from crowddesk.bot.server.action_server import ActionServerStartError, start_action_server, stop
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.connectors.types import InboundMessage
from crowddesk.errors import CrowdDeskError

KB_ANSWER = "action_answer_from_kb"
HANDOFF_UTTERANCES = ("utter_handoff", "utter_out_of_scope")
# Bookkeeping actions, and the hand-off's queue notice: not something a story asserts.
NOT_COMPARED = frozenset({"action_listen", "action_session_start", "utter_handoff_queued"})
CHANNEL = "rest"


@dataclass(frozen=True)
class BotAction:
    """One action the bot took, shown as `shown`, matched by any of `names`."""

    shown: str
    names: frozenset[str]


@dataclass(frozen=True)
class StepFailure:
    story: str
    step: int
    source: str
    expected: str
    actual: str

    def __str__(self) -> str:
        return f"{self.source}: story {self.story!r}, step {self.step}: expected {self.expected}, got {self.actual}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "story": self.story,
            "step": self.step,
            "source": self.source,
            "expected": self.expected,
            "actual": self.actual,
        }


@dataclass(frozen=True)
class StoryResult:
    story: ConversationStory
    failure: StepFailure | None


class StoryFailed(CrowdDeskError):
    def __init__(self, failure: StepFailure) -> None:
        super().__init__(str(failure))
        self.failure = failure


def run_conversation_tests(
    project: Project,
    stories: Sequence[ConversationStory],
    *,
    model_dir: Path | None = None,
    action_endpoint: str | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> list[StoryResult]:
    """Run every story on the project's bot against a throw-away database."""
    with (
        tempfile.TemporaryDirectory(prefix="crowddesk-stories-") as scratch,
        _action_endpoint(project, stories, action_endpoint, progress) as endpoint,
    ):
        database_url = f"sqlite:///{Path(scratch) / 'stories.db'}"
        bot = assemble(project.root, model_dir=model_dir, database_url=database_url, action_endpoint=endpoint)
        progress(f"Running {len(stories)} conversation tests")
        return asyncio.run(_run_then_close(bot, stories))


async def _run_then_close(bot: Bot, stories: Sequence[ConversationStory]) -> list[StoryResult]:
    try:
        runner = StoryRunner(bot.engine)
        return [await runner.run(story, f"story-{index}") for index, story in enumerate(stories)]
    finally:
        await bot.aclose()


class StoryRunner:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def run(self, story: ConversationStory, sender: str) -> StoryResult:
        try:
            await self._play(story, sender)
        except StoryFailed as failed:
            return StoryResult(story, failed.failure)
        return StoryResult(story, None)

    async def _play(self, story: ConversationStory, sender: str) -> None:
        pending: list[BotAction] = []  # this turn's actions not yet matched by a step
        seen = 0

        def fail(step: StoryStep, expected: str, actual: str) -> StoryFailed:
            return StoryFailed(StepFailure(story.name, step.number, step.source, expected, actual))

        for step in story.steps:
            if isinstance(step, UserTurn):
                if pending:
                    raise fail(step, f"the customer's next message {step.text!r}", f"action {pending[0].shown}")
                await self.engine.handle(InboundMessage(CHANNEL, sender, step.text))
                events = await asyncio.to_thread(self.engine.store.events, sender)
                turn, seen = events[seen:], len(events)
                intent = _recognised_intent(turn)
                if step.intent is not None and not _intent_matches(step.intent, intent):
                    raise fail(
                        step,
                        f"intent {step.intent}",
                        f"intent {intent}" if intent else "no intent (a person owns the conversation)",
                    )
                pending = await asyncio.to_thread(self._bot_actions, turn)
            elif isinstance(step, ExpectedAction):
                if not pending:
                    raise fail(step, f"action {step.name}", "no further action in this turn")
                actual = pending.pop(0)
                if step.name not in actual.names:
                    raise fail(step, f"action {step.name}", f"action {actual.shown}")
            else:
                record = await asyncio.to_thread(self.engine.store.get, sender)
                value = record.slots.get(step.slot) if record else None
                if (value is None) if step.any_value else (value != step.value):
                    expected = "set" if step.any_value else f"= {step.value!r}"
                    raise fail(step, f"slot {step.slot} {expected}", f"slot {step.slot} = {value!r}")
        if pending:
            last = story.steps[-1]
            raise fail(last, "the story to end after this step", f"action {pending[0].shown}")

    def _bot_actions(self, events: Sequence[dict[str, Any]]) -> list[BotAction]:
        handoff = next((event.get("reason") for event in events if event["event"] == "handoff"), None)
        actions = []
        for position, event in enumerate(events):
            name = str(event.get("name"))
            if event["event"] != "action" or name in NOT_COMPARED:
                continue
            if name == KB_ANSWER:
                actions.append(self._kb_answer(events[position + 1 :]))
            elif name in HANDOFF_UTTERANCES and handoff:
                actions.append(BotAction(f"{name} (hand-off: {handoff})", frozenset({name})))
            else:
                actions.append(BotAction(name, frozenset({name})))
        if handoff and not any(action.names & set(HANDOFF_UTTERANCES) for action in actions):
            # The domain has no hand-off response, so the engine said nothing; the hand-off happened.
            actions.append(BotAction(f"utter_handoff (hand-off: {handoff})", frozenset({"utter_handoff"})))
        return actions

    def _kb_answer(self, following: Sequence[dict[str, Any]]) -> BotAction:
        """The answer's entry is in the bot message that follows the action event."""
        message = next(event for event in following if event["event"] == "bot")
        entry_id = ((message.get("data") or {}).get("custom") or {}).get("kb_entry", "")
        entry = self.engine.knowledge_base.entry(entry_id)
        if entry is None or not entry.intent:
            return BotAction(f"{KB_ANSWER} ({entry_id})", frozenset({KB_ANSWER}))
        base = entry.intent.split("/", 1)[0]
        return BotAction(f"utter_{entry.intent}", frozenset({KB_ANSWER, f"utter_{entry.intent}", f"utter_{base}"}))


def _recognised_intent(events: Sequence[dict[str, Any]]) -> str | None:
    for event in events:
        if event["event"] == "user":
            parse = event.get("parse_data") or {}
            return (parse.get("intent") or {}).get("name")
    return None


def _intent_matches(expected: str, actual: str | None) -> bool:
    """`faq` (a retrieval intent) matches any `faq/<key>`; other names must be equal."""
    return actual is not None and (actual == expected or actual.startswith(f"{expected}/"))


@contextmanager
def _action_endpoint(
    project: Project,
    stories: Sequence[ConversationStory],
    explicit: str | None,
    progress: Callable[[str], None],
) -> Iterator[str | None]:
    """The action server to use; starts the project's own when stories need one and none answers."""
    url = explicit or project.endpoints.action_endpoint_url
    custom = {name for name in project.domain.actions if not name.startswith("utter_")}
    expected = {step.name for story in stories for step in story.steps if isinstance(step, ExpectedAction)}
    if not custom & expected or (url is not None and _answers(url)):
        yield url
        return
    if explicit is not None:
        raise ActionServerStartError(f"no action server answers at {explicit}")
    port = _free_port()
    progress(f"Starting the project's action server on 127.0.0.1:{port} for custom actions")
    process = start_action_server(project.root, port=port)
    try:
        yield f"http://127.0.0.1:{port}/webhook"
    finally:
        stop(process)


def _answers(webhook_url: str) -> bool:
    try:
        return httpx.get(urljoin(webhook_url, "/health"), timeout=2.0).status_code == 200
    except httpx.HTTPError:
        return False


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def summary_lines(results: Sequence[StoryResult]) -> list[str]:
    lines = [f"FAILED {result.failure}" for result in results if result.failure]
    passed = sum(1 for result in results if result.failure is None)
    lines.append(f"{passed} of {len(results)} conversation tests passed")
    return lines
