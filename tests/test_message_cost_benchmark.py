"""The message-cost benchmark's store-write part replays real turns: each bot-owned conversation's
last turn stored once more, through the turn fencing, and none for a conversation a person owns."""

from __future__ import annotations

from sqlalchemy import Engine

from benchmarks.message_cost import next_turns
from crowddesk.bot.conversations.store import ConversationStore


def user(text: str) -> dict[str, object]:
    return {"event": "user", "timestamp": 1.0, "text": text}


def bot(text: str) -> dict[str, object]:
    return {"event": "bot", "timestamp": 2.0, "text": text}


def store_turn(store: ConversationStore, sender: str, events: list[dict[str, object]], owner: str = "bot") -> None:
    record = store.get(sender)
    store.record_turn(sender, "rest", events, {}, 0, owner, None, expected_turns=record.turns if record else 0)


def test_the_last_turn_of_each_bot_conversation_is_stored_again_as_its_next(db_engine: Engine) -> None:
    store = ConversationStore(db_engine)
    store_turn(store, "bot-owned", [user("hi"), bot("hello")])
    store_turn(store, "bot-owned", [user("my card"), bot("it is on its way")])
    store_turn(store, "person-owned", [user("a person please")], owner="queued")

    turns = next_turns(store, ["bot-owned", "person-owned", "nobody"])

    assert len(turns) == 1
    before = store.get("bot-owned")
    assert before is not None
    for arguments in turns:
        store.record_turn(*arguments)
    after = store.get("bot-owned")
    assert after is not None and after.turns == before.turns + 1
    texts = [event["text"] for event in store.events("bot-owned")]
    assert texts == ["hi", "hello", "my card", "it is on its way", "my card", "it is on its way"]
