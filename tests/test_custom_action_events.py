"""Events a rasa_sdk action returns take effect as in Rasa, on the real action server."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from crowddesk.bot.dialogue.tracker import DialogueTracker
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.action_server import start_action_server, stop
from crowddesk.bot.server.assemble import Bot, assemble, models_dir
from crowddesk.bot.training.trainer import train
from crowddesk.connectors.types import InboundMessage
from tests.demo_bot import free_port
from tests.test_project_loading import write

ACTIONS = Path(__file__).parent / "rasa_project_actions" / "eventsbot"
INTENTS = ("remember", "reset", "followup", "pause", "revert", "greet")

DOMAIN = f"""\
version: "3.1"
intents: [{", ".join(INTENTS)}]
slots:
  color:
    type: text
    mappings:
    - type: custom
responses:
  utter_greet: [{{text: "Hello!"}}]
  utter_followed: [{{text: "Followed up."}}]
  utter_handoff: [{{text: "A person will answer you."}}]
actions: [action_remember, action_reset, action_followup, action_pause, action_revert]
"""


@pytest.fixture(scope="module")
def bot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Bot, asyncio.Runner]]:
    root = tmp_path_factory.mktemp("eventsbot")
    write(root, "domain.yml", DOMAIN)
    rules = "".join(
        f"- rule: {intent}\n  steps:\n  - intent: {intent}\n  - action: {action}\n"
        for intent, action in zip(INTENTS, [f"action_{i}" for i in INTENTS[:5]] + ["utter_greet"], strict=True)
    )
    write(root, "data/rules.yml", "rules:\n" + rules)
    train(load_project(root), models_dir(root))
    port = free_port()
    server = start_action_server(ACTIONS, port=port)
    assembled = assemble(
        root, database_url=f"sqlite:///{root / 'bot.db'}", action_endpoint=f"http://127.0.0.1:{port}/webhook"
    )
    with asyncio.Runner() as loop:
        yield assembled, loop
        loop.run(assembled.aclose())
    stop(server)


def say(bot: tuple[Bot, asyncio.Runner], sender: str, text: str) -> list[str]:
    engine, loop = bot[0].engine, bot[1]
    return [reply.text for reply in loop.run(engine.handle(InboundMessage("rest", sender, text)))]


def tracker(bot: tuple[Bot, asyncio.Runner], sender: str) -> DialogueTracker:
    return DialogueTracker.replay(bot[0].project.domain, bot[0].conversations.events(sender))


def test_slot_set_and_all_slots_reset(bot: tuple[Bot, asyncio.Runner]) -> None:
    say(bot, "slots", "/remember")
    assert tracker(bot, "slots").slots["color"] == "blue"
    say(bot, "slots", "/reset")
    assert tracker(bot, "slots").slots["color"] is None


def test_a_followup_action_runs_next(bot: tuple[Bot, asyncio.Runner]) -> None:
    assert say(bot, "followup", "/followup") == ["One moment.", "Followed up."]


def test_a_paused_conversation_goes_to_a_person(bot: tuple[Bot, asyncio.Runner]) -> None:
    assert say(bot, "paused", "/pause") == ["A person will answer you."]
    ticket = bot[0].conversations.active_handoff("paused")
    assert ticket is not None and ticket.reason == "paused"


def test_a_reverted_user_message_is_taken_back(bot: tuple[Bot, asyncio.Runner]) -> None:
    say(bot, "revert", "/greet")
    assert say(bot, "revert", "/revert") == ["Let's forget that."]
    assert tracker(bot, "revert").latest_intent() == "greet"
