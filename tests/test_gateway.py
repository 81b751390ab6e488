"""The gateway between connectors and the demo bot's engine: redeliveries, inline replies, outbox,
and text repaired before the engine sees it (one bad message among many fails none)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import Engine as SqlEngine
from sqlalchemy.exc import DBAPIError

from crowddesk.bot.conversations.deliveries import SeenMessages
from crowddesk.bot.desk.api import transcript_messages
from crowddesk.bot.dialogue.engine import Engine, MessageRejected
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.bot.server.gateway import Gateway
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.rest import RestChannel
from crowddesk.connectors.text import normalise_text
from crowddesk.connectors.types import InboundMessage
from crowddesk.nlu.encoders import Encoder
from crowddesk.nlu.pipeline import NLUPipeline
from tests.fakes.platform import FakePlatform


@pytest.fixture(scope="module")
def bot(demo_project: Path, demo_training: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Bot]:
    database = tmp_path_factory.mktemp("gateway-db") / "crowddesk.db"
    bot = assemble(demo_project, model_dir=demo_training.model_dir, database_url=f"sqlite:///{database}")
    yield bot
    bot.database.dispose()


def gateway_for(bot: Bot) -> Gateway:
    return Gateway(bot.engine, SeenMessages(bot.database), bot.outbox, {"fake": FakePlatform(), "rest": RestChannel()})


def user_texts(bot: Bot, sender: str) -> list[str]:
    return [e["text"] for e in bot.conversations.events(sender) if e["event"] == "user"]


def queued_texts(bot: Bot, sender: str) -> list[str]:
    return [r.message.text for r in bot.outbox.records() if r.message.recipient_id == sender]


def test_a_redelivered_message_reaches_the_engine_once(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    update = InboundMessage("fake", sender, "hello there", message_id="update-1001")

    async def deliver_twice_at_once_then_again() -> tuple[list[int], int]:
        racing = await asyncio.gather(gateway(update), gateway(update))
        return sorted(len(replies) for replies in racing), len(await gateway(update))

    racing, later = asyncio.run(deliver_twice_at_once_then_again())
    assert racing[0] == 0 and racing[1] >= 1 and later == 0
    assert user_texts(bot, sender) == ["hello there"]
    # The replies of the one turn, each queued once for the platform.
    assert len(queued_texts(bot, sender)) == racing[1]


@contextmanager
def outbox_refusing_rows(database: SqlEngine) -> Iterator[None]:
    """The database refuses every new outbox row (a full disk, a dropped connection)."""
    with database.begin() as connection:
        connection.exec_driver_sql(
            "CREATE TRIGGER outbox_full BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'outbox is full'); END"
        )
    try:
        yield
    finally:
        with database.begin() as connection:
            connection.exec_driver_sql("DROP TRIGGER outbox_full")


def test_replies_that_cannot_be_queued_undo_their_turn_until_redelivered(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    update = InboundMessage("fake", sender, "hello there", message_id=f"update-{sender}")
    with outbox_refusing_rows(bot.database), pytest.raises(DBAPIError, match="outbox is full"):
        asyncio.run(gateway(update))
    # Neither the turn nor any reply was stored: no customer message goes unanswered.
    assert bot.conversations.get(sender) is None and bot.conversations.events(sender) == []
    assert queued_texts(bot, sender) == []

    replies = asyncio.run(gateway(update))  # the platform's redelivery
    assert user_texts(bot, sender) == ["hello there"]
    assert queued_texts(bot, sender) == [reply.text for reply in replies] != []


def test_replies_are_queued_in_the_order_their_turns_were_stored(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    texts = ["hello there", "how do I block my card", "thanks"]

    async def all_at_once() -> None:
        await asyncio.gather(
            *(
                gateway(InboundMessage("fake", sender, text, message_id=f"{sender}-{number}"))
                for number, text in enumerate(texts)
            )
        )

    asyncio.run(all_at_once())
    stored = [e["text"] for e in bot.conversations.events(sender) if e["event"] == "bot"]
    assert sorted(user_texts(bot, sender)) == sorted(texts)
    assert queued_texts(bot, sender) == stored


def test_the_same_delivery_id_on_another_channel_is_another_message(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    rest_sender = f"{sender}-rest"  # a conversation stays on the channel it began on
    asyncio.run(gateway(InboundMessage("fake", sender, "hello there", message_id="7")))
    asyncio.run(gateway(InboundMessage("rest", rest_sender, "hello there", message_id="7")))
    assert user_texts(bot, sender) == user_texts(bot, rest_sender) == ["hello there"]


def test_inline_channels_get_their_replies_without_the_outbox(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    replies = asyncio.run(gateway(InboundMessage("rest", sender, "hello there")))
    again = asyncio.run(gateway(InboundMessage("rest", sender, "hello there")))
    assert replies and again  # without a delivery id nothing is taken for a duplicate
    assert queued_texts(bot, sender) == []


def test_an_over_long_platform_message_is_answered_and_never_redelivered(bot: Bot, sender: str) -> None:
    # A failed webhook makes Telegram or Slack redeliver it forever: the customer is told instead.
    gateway = gateway_for(bot)
    too_long = InboundMessage("fake", sender, "x" * 5000, message_id="update-2002")
    assert asyncio.run(gateway(too_long)) == []
    assert asyncio.run(gateway(too_long)) == []
    assert user_texts(bot, sender) == []
    [notice] = queued_texts(bot, sender)
    assert "5000 characters" in notice and "shorter" in notice


def test_an_over_long_rest_message_is_refused_and_can_be_sent_again(bot: Bot, sender: str) -> None:
    gateway = gateway_for(bot)
    too_long = InboundMessage("rest", sender, "x" * 5000, message_id="req-2003")
    with pytest.raises(MessageRejected):
        asyncio.run(gateway(too_long))
    assert gateway.seen.first_sight("rest", "req-2003")
    assert queued_texts(bot, sender) == []


def test_racing_deliveries_of_one_message_have_one_first_sight(db_engine: SqlEngine) -> None:
    seen = SeenMessages(db_engine)
    with ThreadPoolExecutor(max_workers=4) as pool:
        firsts = list(pool.map(lambda _: seen.first_sight("slack", "Ev0123"), range(8)))
    assert firsts.count(True) == 1
    assert seen.seen("slack", "Ev0123") and not seen.seen("slack", "Ev0124")


ZALGO = "card" + "\u0301\u0316\u0344" * 1400  # 4,200 combining marks on one letter


def user_events(bot: Bot, sender: str) -> list[dict[str, Any]]:
    return [e for e in bot.conversations.events(sender) if e["event"] == "user"]


def test_one_bad_message_among_80_concurrent_ones_fails_none(bot: Bot) -> None:
    gateway = gateway_for(bot)
    texts = ["where is my new card?", "how do I reset my PIN?", "I was charged twice", "can I top up by bank transfer?"]
    messages = [InboundMessage("rest", f"crowd-{i}", texts[i % len(texts)]) for i in range(80)]
    messages[40] = InboundMessage("rest", "crowd-bad", "my card \ud800 is blocked \u202e!")

    async def all_at_once() -> list[object]:
        return await asyncio.gather(*(gateway(m) for m in messages), return_exceptions=True)

    results = asyncio.run(all_at_once())

    assert [r for r in results if isinstance(r, BaseException)] == []
    assert all(results)  # everyone got a reply, the bad message's sender too
    [bad] = user_events(bot, "crowd-bad")
    assert bad["text"] == bad["parse_data"]["text"] == "my card \ufffd is blocked !"
    assert bad["original_text"] == "my card \\ud800 is blocked \\u202e!"
    json.dumps(bad, ensure_ascii=False).encode("utf-8")  # valid Unicode throughout
    [good] = user_events(bot, "crowd-0")
    assert "original_text" not in good
    desk_line = transcript_messages(bot.conversations.events("crowd-bad"))[0]
    assert (desk_line["text"], desk_line["original_text"]) == (bad["text"], bad["original_text"])


def test_a_combining_mark_flood_reaches_the_nlu_capped(bot: Bot) -> None:
    gateway = gateway_for(bot)

    asyncio.run(gateway(InboundMessage("rest", "zalgo", f"where is my {ZALGO}?")))

    [event] = user_events(bot, "zalgo")
    assert event["parse_data"]["text"] == event["text"] == f"where is my {normalise_text(ZALGO)}?"
    assert len(event["text"]) < 30


class FailsOnMarker:
    """An encoder that fails on any text containing `marker`, as a model can on input nothing
    else trips on: the fault is injected at the `Encoder` seam, the rest of the bot is real."""

    def __init__(self, encoder: Encoder, marker: str) -> None:
        self.encoder, self.marker = encoder, marker
        self.name, self.dimension = encoder.name, encoder.dimension

    def encode(self, texts: Sequence[str], *, show_progress: bool = False) -> np.ndarray:
        if any(self.marker in text for text in texts):
            raise RuntimeError(f"the model can't read {self.marker!r}")
        return self.encoder.encode(texts)


def test_a_message_the_models_fail_on_goes_to_a_person_and_no_one_else_notices(bot: Bot) -> None:
    real = bot.engine
    engine = Engine(
        domain=real.domain,
        nlu=NLUPipeline(FailsOnMarker(real.nlu.encoder, "zqx"), real.nlu.classifier, real.nlu.entities),
        knowledge_base=real.knowledge_base,
        policy=real.policy,
        store=real.store,
        dialogue=real.dialogue,
        actions=None,
        tickets=bot.tickets,
        wait_estimator=real.wait_estimator,
    )
    gateway = Gateway(engine, SeenMessages(bot.database), bot.outbox, {"rest": RestChannel()})
    messages = [InboundMessage("rest", f"unread-{i}", "how do I reset my PIN?") for i in range(20)]
    messages[7] = InboundMessage("rest", "unread-bad", "my card zqx is blocked")

    async def all_at_once() -> list[object]:
        return await asyncio.gather(*(gateway(m) for m in messages), return_exceptions=True)

    results = asyncio.run(all_at_once())

    assert [r for r in results if isinstance(r, BaseException)] == []
    ticket = bot.conversations.active_handoff("unread-bad")
    assert ticket is not None and ticket.reason == "unreadable"
    assert user_texts(bot, "unread-bad") == ["my card zqx is blocked"]  # kept for the agent
    assert all(bot.conversations.active_handoff(f"unread-{i}") is None for i in range(20) if i != 7)
