"""A project without NLU data trains, as Rasa trains a core-only model: its rules and forms run on
buttons and /intent messages, and any other text goes to a person."""

from __future__ import annotations

import asyncio
from pathlib import Path

from crowddesk.bot.project.loading import load_project
from crowddesk.bot.server.assemble import assemble, models_dir
from crowddesk.bot.training.model import TrainedModel
from crowddesk.bot.training.trainer import train
from crowddesk.connectors.types import InboundMessage
from tests.test_project_loading import write

DOMAIN = """\
version: "3.1"
intents: [greet, goodbye]
responses:
  utter_greet: [{text: "Hello!"}]
  utter_goodbye: [{text: "Bye!"}]
  utter_handoff: [{text: "A person will answer you."}]
"""
RULES = """\
rules:
- rule: greet
  steps:
  - intent: greet
  - action: utter_greet
"""


def test_a_project_without_nlu_data_runs_its_rules_on_payloads(tmp_path: Path) -> None:
    write(tmp_path, "domain.yml", DOMAIN)
    write(tmp_path, "data/rules.yml", RULES)
    result = train(load_project(tmp_path), models_dir(tmp_path))
    assert TrainedModel.load(result.model_dir).classifier is None
    assert result.report.expected_automation_rate == 0.0
    bot = assemble(tmp_path, database_url=f"sqlite:///{tmp_path / 'bot.db'}")

    async def say(text: str) -> list[str]:
        return [reply.text for reply in await bot.engine.handle(InboundMessage("rest", "c1", text))]

    async def conversation() -> tuple[list[str], list[str]]:
        try:
            return await say("/greet"), await say("how do I change my address?")
        finally:
            await bot.aclose()

    greeted, free_text = asyncio.run(conversation())
    assert greeted == ["Hello!"]
    assert free_text == ["A person will answer you."]
    ticket = bot.conversations.active_handoff("c1")
    assert ticket is not None and ticket.reason == "low_confidence"


def test_the_rules_example_project_trains(corpus: Path, tmp_path: Path) -> None:
    result = train(load_project(corpus / "rules", environ={}), tmp_path / "models")
    assert TrainedModel.load(result.model_dir).classifier is None


def test_a_retrieval_intent_other_than_faq_answers_with_its_own_response(tmp_path: Path) -> None:
    write(
        tmp_path,
        "domain.yml",
        """\
        version: "3.1"
        intents: [chitchat]
        responses:
          utter_chitchat/ask_weather: [{text: "I can't see the sky from here."}]
          utter_chitchat/ask_name: [{text: "I'm the support bot."}]
        """,
    )
    write(
        tmp_path,
        "data/rules.yml",
        "rules:\n- rule: chitchat\n  steps:\n  - intent: chitchat\n  - action: utter_chitchat\n",
    )
    train(load_project(tmp_path), models_dir(tmp_path))
    bot = assemble(tmp_path, database_url=f"sqlite:///{tmp_path / 'bot.db'}")

    async def conversation() -> list[str]:
        try:
            replies = await bot.engine.handle(InboundMessage("rest", "c2", "/chitchat/ask_name"))
            return [reply.text for reply in replies]
        finally:
            await bot.aclose()

    assert asyncio.run(conversation()) == ["I'm the support bot."]
