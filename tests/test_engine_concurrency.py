"""The engine with many conversations at once, and with several engines on one database."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.types import InboundMessage, OutboundMessage

ANSWERED = "It's been a week and my new card still hasn't arrived"
MESSAGES = [
    ANSWERED,
    "hello there",
    "my card payment was declined at the shop",
    "how much does it cost to top up by bank transfer?",
    "I think someone has used my card without permission",
    "thanks a lot",
    "can I get a virtual card?",
    "what will the weather be like in Lisbon this weekend?",
]


def open_bot(demo_project: Path, demo_training: TrainResult, database: Path) -> Bot:
    return assemble(demo_project, model_dir=demo_training.model_dir, database_url=f"sqlite:///{database}")


async def say(bot: Bot, sender: str, text: str) -> list[OutboundMessage]:
    return await bot.engine.handle(InboundMessage("rest", sender, text))


def understood(bot: Bot, sender: str) -> dict[str, Any]:
    """What the engine stored about the conversation's first message: intent and KB candidates."""
    parse = next(e for e in bot.conversations.events(sender) if e["event"] == "user")["parse_data"]
    return {
        "intent": parse["intent"]["name"],
        "candidates": [(c["id"], round(c["score"], 3)) for c in parse["kb_candidates"]],
    }


def test_concurrent_conversations_are_understood_as_one_at_a_time(
    demo_project: Path, demo_training: TrainResult, tmp_path: Path
) -> None:
    bot = open_bot(demo_project, demo_training, tmp_path / "bot.db")

    async def conversations() -> None:
        for i, text in enumerate(MESSAGES):
            await say(bot, f"alone-{i}", text)
        # All at once: their encodes share forward passes.
        await asyncio.gather(*(say(bot, f"together-{i}", text) for i, text in enumerate(MESSAGES)))
        await bot.aclose()

    asyncio.run(conversations())

    for i in range(len(MESSAGES)):
        assert understood(bot, f"together-{i}") == understood(bot, f"alone-{i}")


def test_engines_sharing_a_database_decide_from_the_stored_conversation(
    demo_project: Path, demo_training: TrainResult, tmp_path: Path
) -> None:
    # Two server processes on one database: each turn of a conversation may go to either one.
    first = open_bot(demo_project, demo_training, tmp_path / "shared.db")
    second = open_bot(demo_project, demo_training, tmp_path / "shared.db")

    async def conversations() -> tuple[list[OutboundMessage], ...]:
        answered = await say(first, "customer", ANSWERED)
        greeted = await say(second, "customer", "/greet")
        # "No" now follows a greeting, not the answer `first` gave two turns ago.
        after_greeting = await say(first, "customer", "/deny")
        await say(first, "control", ANSWERED)
        after_answer = await say(first, "control", "/deny")
        for bot in (first, second):
            await bot.aclose()
        return answered, greeted, after_greeting, after_answer

    answered, greeted, after_greeting, after_answer = asyncio.run(conversations())

    assert answered[0].custom["kb_entry"] == "faq/card_arrival"
    assert greeted and "kb_entry" not in greeted[0].custom
    rephrase = after_answer[0].text  # "no" right after an automated answer: please rephrase
    assert "rephrase" in rephrase
    assert [reply.text for reply in after_greeting] != [rephrase]
