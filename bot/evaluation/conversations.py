"""`crowddesk evaluate conversations`: Rasa test stories driven through the real engine, each a
fresh conversation in one throw-away SQLite database (how a story is checked: story_run.py), or
with `--core` replayed as `rasa test core` does (story_replay.py)."""

from __future__ import annotations

import asyncio
import socket
import tempfile
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from urllib.parse import urljoin

import httpx

from crowddesk.bot.evaluation.story_replay import replay_stories
from crowddesk.bot.evaluation.story_run import StoryResult, StoryRun
from crowddesk.bot.project.loading import Project
from crowddesk.bot.project.story_steps import ActionStep, StepEntity
from crowddesk.bot.project.training_data import Story
from crowddesk.bot.server.action_server import ActionServerStartError, start_action_server, stop
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.nlu.pipeline import NLUPipeline


def run_conversation_tests(
    project: Project,
    stories: Sequence[Story],
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
        bot = assemble(
            project.root,
            model_dir=model_dir,
            database_url=database_url,
            action_endpoint=endpoint,
            state_dir=Path(scratch),  # a throw-away run leaves nothing in the project's folder
        )
        progress(f"Running {len(stories)} conversation tests")
        return asyncio.run(_run_then_close(bot, stories))


def replay_conversation_tests(
    project: Project, stories: Sequence[Story], *, model_dir: Path | None = None
) -> list[StoryResult]:
    """Check every story as `rasa test core` does (story_replay.py): no action runs."""
    with tempfile.TemporaryDirectory(prefix="crowddesk-stories-") as scratch:
        database_url = f"sqlite:///{Path(scratch) / 'stories.db'}"
        bot = assemble(project.root, model_dir=model_dir, database_url=database_url, state_dir=Path(scratch))
        try:
            return replay_stories(bot.engine.dialogue, bot.engine.domain, stories, partial(_read_text, bot.engine.nlu))
        finally:
            asyncio.run(bot.aclose())


def _read_text(nlu: NLUPipeline, text: str) -> tuple[str, str, tuple[StepEntity, ...]]:
    parse = nlu.understand(text).parse
    entities = tuple(StepEntity(e.entity, str(e.value), e.role, e.group) for e in parse.entities)
    return parse.intent.name, text, entities


async def _run_then_close(bot: Bot, stories: Sequence[Story]) -> list[StoryResult]:
    try:
        return [await StoryRun(bot.engine, story, f"story-{index}").play() for index, story in enumerate(stories)]
    finally:
        await bot.aclose()


@contextmanager
def _action_endpoint(
    project: Project,
    stories: Sequence[Story],
    explicit: str | None,
    progress: Callable[[str], None],
) -> Iterator[str | None]:
    """The action server to use; starts the project's own when stories need one and none answers."""
    url = explicit or project.endpoints.action_endpoint_url
    custom = {name for name in project.domain.actions if not name.startswith("utter_")}
    expected = {step.name for story in stories for step in story.steps if isinstance(step, ActionStep)}
    # A form a story runs calls its validation action on the action server.
    expected |= {f"validate_{name}" for name in expected if name in project.domain.forms}
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
