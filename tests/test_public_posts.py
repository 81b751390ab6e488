"""Public posts: what the demo bot says in public and what it moves to a private conversation,
and which public posts jump the queue (the platform-neutral rule, through the engine)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crowddesk.bot.conversations.outbox import message_payload, payload_message
from crowddesk.bot.conversations.store import HandoffRecord
from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from tests.demo_bot import demo_bot_on_fresh_database

ACKNOWLEDGEMENT = "Thanks, we've sent you a private message."
CARD_NUMBER = "4111 1111 1111 1111"
_message_ids = itertools.count(1)


@pytest.fixture(scope="module")
def bot(
    demo_project: Path, demo_training: TrainResult, action_server_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bot]:
    bot = demo_bot_on_fresh_database(demo_project, demo_training, action_server_url, tmp_path_factory)
    yield bot
    asyncio.run(bot.aclose())


def customer() -> str:
    return f"x:{uuid.uuid4().int % 10**18}"


def post(followers: int | None = 150, replies_last_hour: int | None = None) -> dict[str, Any]:
    post_id = str(next(_message_ids) + 1_800_000_000_000_000_000)
    return {
        "platform": "x",
        "post_id": post_id,
        "author": "someone",
        "followers": followers,
        "replies_last_hour": replies_last_hour,
        "url": f"https://x.com/someone/status/{post_id}",
    }


def say(bot: Bot, sender: str, text: str, public_post: dict[str, Any] | None = None) -> list[OutboundMessage]:
    """One message from `sender` (written in `public_post`, if given); the replies as the
    channel must send them, read back from the outbox's stored shape."""
    metadata = {"public_post": public_post} if public_post is not None else {}
    message = InboundMessage("x", sender, text, message_id=f"m{next(_message_ids)}", metadata=metadata)
    replies = asyncio.run(bot.engine.handle(message, outbox=bot.outbox))
    return [payload_message(message_payload(reply)) for reply in replies]


def tickets(bot: Bot, sender: str) -> list[HandoffRecord]:
    return [ticket for ticket in bot.conversations.list_handoffs() if ticket.sender_id == sender]


def publicly_posted(replies: list[OutboundMessage]) -> list[str]:
    """Every text the channel posts in public for these replies."""
    posted = []
    for reply in replies:
        post = reply.public_post or {}
        if post.get("visibility") == "public":
            posted.append(reply.text)
        elif post.get("acknowledgement"):
            posted.append(post["acknowledgement"])
    return posted


def test_a_general_question_is_answered_in_public(bot: Bot) -> None:
    sender, where = customer(), post()
    replies = say(bot, sender, "How long does it take for a new card to arrive?", where)
    assert replies and all(reply.public_post == {**where, "visibility": "public"} for reply in replies)
    assert "Source: https://" in replies[0].text
    assert tickets(bot, sender) == []


def test_an_account_question_gets_a_public_acknowledgement_and_one_private_message(bot: Bot) -> None:
    sender, where = customer(), post()
    [reply] = say(bot, sender, "my card was charged twice for the same purchase", where)
    assert reply.public_post == {**where, "visibility": "private", "acknowledgement": ACKNOWLEDGEMENT}
    assert publicly_posted([reply]) == [ACKNOWLEDGEMENT]
    assert reply.text


def test_a_hand_off_from_a_public_post_is_merged_into_one_private_message(bot: Bot) -> None:
    sender, where = customer(), post()
    [reply] = say(bot, sender, "I want to talk to a person", where)
    assert reply.public_post is not None and reply.public_post["visibility"] == "private"
    events = bot.conversations.events(sender)
    said = [event["text"] for event in events if event["event"] == "bot"]
    assert len(said) == 2  # "passing you to our team" and the expected wait
    assert reply.text == "\n\n".join(said)
    [ticket] = tickets(bot, sender)
    assert ticket.priority == "normal" and "priority_reasons" not in ticket.packet

    # The conversation goes on in private: the same conversation and ticket, nothing public.
    assert say(bot, sender, "it's about a payment I don't recognise") == []
    assert [ticket.id for ticket in tickets(bot, sender)] == [ticket.id]
    assert bot.conversations.get(sender) is not None


def test_a_card_number_is_never_posted_in_public(bot: Bot) -> None:
    sender = customer()
    replies = say(bot, sender, f"is {CARD_NUMBER} blocked? it was declined today", post())
    digits = CARD_NUMBER.replace(" ", "")
    assert publicly_posted(replies) == [ACKNOWLEDGEMENT]
    assert all(digits not in text.replace(" ", "") for text in publicly_posted(replies))


def test_a_frustrated_post_from_a_large_audience_jumps_the_queue(bot: Bot) -> None:
    sender = customer()
    [reply] = say(bot, sender, "your app is useless, nobody helps", post(followers=50_000))
    assert publicly_posted([reply]) == [ACKNOWLEDGEMENT]
    [ticket] = tickets(bot, sender)
    assert ticket.priority == "high"
    assert ticket.packet["priority_reasons"] == ["frustrated", "50,000 followers"]


@pytest.mark.parametrize(
    ("where", "reasons"),
    [
        (post(followers=12_400), ["12,400 followers"]),
        (post(followers=None, replies_last_hour=25), ["25 replies in the last hour"]),
    ],
)
def test_a_calm_question_that_could_go_viral_goes_to_a_person(
    bot: Bot, where: dict[str, Any], reasons: list[str]
) -> None:
    sender = customer()
    [reply] = say(bot, sender, "How long does it take for a new card to arrive?", where)
    assert publicly_posted([reply]) == [ACKNOWLEDGEMENT]
    [ticket] = tickets(bot, sender)
    assert (ticket.reason, ticket.priority) == ("public_post", "high")
    assert ticket.packet["priority_reasons"] == reasons


def test_below_the_thresholds_a_public_question_is_answered(bot: Bot) -> None:
    sender = customer()
    replies = say(bot, sender, "How long does it take for a new card to arrive?", post(9_999, 19))
    assert [reply.public_post["visibility"] for reply in replies if reply.public_post] == ["public"] * len(replies)
    assert tickets(bot, sender) == []


def test_private_messages_are_sent_as_the_bot_wrote_them(bot: Bot) -> None:
    replies = say(bot, customer(), "/greet")
    assert replies and all(reply.public_post is None for reply in replies)
    assert replies[0].buttons


# --- config.yml --------------------------------------------------------------------------------

PUBLIC_POSTS_CONFIG = """
policies:
  - name: SupportPolicy
    public_posts:
      acknowledgement: "We've replied to you by DM."
      high_priority_followers: 5000
      high_priority_replies_per_hour: 10
"""


def test_public_post_settings_are_read_from_the_policy(tmp_path: Path) -> None:
    path = tmp_path / "config.yml"
    path.write_text(PUBLIC_POSTS_CONFIG, encoding="utf-8")
    settings = load_config(path).policy.public_posts
    assert settings.acknowledgement == "We've replied to you by DM."
    assert (settings.high_priority_followers, settings.high_priority_replies_per_hour) == (5000, 10)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "high_priority_followers",
            "high_priority_folowers",
            "policies[0].public_posts.high_priority_folowers: unknown",
        ),
        ("per_hour: 10", "per_hour: 0", "policies[0].public_posts.high_priority_replies_per_hour: must be in [1, inf]"),
        (
            '"We\'ve replied to you by DM."',
            '" "',
            "policies[0].public_posts.acknowledgement: expected a non-empty string",
        ),
        ('"We\'ve replied to you by DM."', "x" * 281, "acknowledgement: must be at most 280 characters"),
    ],
)
def test_bad_public_post_settings_name_the_key(tmp_path: Path, old: str, new: str, message: str) -> None:
    path = tmp_path / "config.yml"
    path.write_text(PUBLIC_POSTS_CONFIG.replace(old, new), encoding="utf-8")
    with pytest.raises(ProjectFileError) as error:
        load_config(path, root=tmp_path)
    assert message in str(error.value)
