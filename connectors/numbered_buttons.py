"""Buttons on text-only channels (SMS, X): a numbered list, and a numbered reply read back as a payload.

A connector renders each message's buttons as "Reply 1 for …" lines and remembers, in its
`ChannelMemory`, the buttons of the last message it sent to each recipient, so the customer's
"2" reaches the bot as the second button's payload, as a press would on a platform with real
buttons, whichever server process the reply reaches.
"""

from __future__ import annotations

import asyncio

from crowddesk.connectors.memory import ChannelMemory
from crowddesk.connectors.types import Button, OutboundMessage

MEMORY_KEY = "numbered_buttons"


async def numbered_text(memory: ChannelMemory, recipient_id: str, message: OutboundMessage) -> str:
    """`message`'s text followed by one "Reply N for <title>" line per button (remembered).
    A message without buttons forgets the earlier ones: a number then answers that message
    (an agent's question, say), not a list further up."""
    offered = [button.as_dict() for button in message.buttons] or None
    await asyncio.to_thread(memory.remember, recipient_id, MEMORY_KEY, offered)
    if not message.buttons:
        return message.text
    choices = "\n".join(f"Reply {number} for {button.title}" for number, button in enumerate(message.buttons, 1))
    return f"{message.text}\n\n{choices}" if message.text else choices


async def chosen_payload(memory: ChannelMemory, sender_id: str, text: str) -> str:
    """The payload of the button numbered `text` among the last ones offered to `sender_id`;
    any other text unchanged."""
    choice = text.strip()
    if not choice.isdecimal():
        return text
    offered = [Button(**b) for b in await asyncio.to_thread(memory.recall, sender_id, MEMORY_KEY) or ()]
    if 1 <= int(choice) <= len(offered):
        return offered[int(choice) - 1].payload
    return text
