"""The replies a message's first delivery produced, for an API client that sends it again.

A REST client whose connection broke before the response arrived can't tell whether its
message was processed; sending it again with the same `message_id` must not run the turn twice
(see `crowddesk.bot.server.gateway`), and answers with what the first delivery answered, read back
from the stored events (as Stripe's idempotency keys do).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from crowddesk.bot.conversations.outbox import bot_event_message
from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.dialogue.engine import MessageConflict
from crowddesk.connectors.types import InboundMessage, OutboundMessage


def first_replies(store: ConversationStore, message: InboundMessage) -> list[OutboundMessage]:
    """The replies stored for the earlier delivery of `message` (same sender and message_id).

    MessageConflict while that delivery is still being processed (its turn is not stored yet)."""
    events = store.events(message.sender_id)
    start = next(
        (i for i, e in enumerate(events) if e["event"] == "user" and e.get("message_id") == message.message_id), None
    )
    if start is None:
        raise MessageConflict(
            f"message {message.message_id!r} is still being processed; send it again in a moment for its replies"
        )
    return [bot_event_message(message.sender_id, e) for e in turn_replies(events[start + 1 :])]


def turn_replies(after_user_event: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The bot events of the turn that begins just before `after_user_event`.

    A turn the bot answered is stored in one piece and ends with `action_listen`; a message
    that joined an agent's ticket was a turn of its own, so what follows it (an agent's reply, a
    ticket change, the next message) is not its reply."""
    replies = []
    for event in after_user_event:
        if event["event"] == "user" or (event["event"] == "action" and event.get("name") == "action_listen"):
            break
        if event["event"].startswith("handoff_") or (event.get("metadata") or {}).get("agent_id"):
            return []
        if event["event"] == "bot":
            replies.append(event)
    return replies
