"""`crowddesk shell`: chat with the bot in the terminal; numbers press the last buttons."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TextIO

from crowddesk.bot.dialogue.engine import Engine, MessageRejected
from crowddesk.connectors.types import InboundMessage, OutboundMessage

CHANNEL_NAME = "shell"
EXIT_WORDS = frozenset({"/stop", "/exit", "/quit"})


def render(reply: OutboundMessage) -> str:
    lines = [f"Bot: {reply.text}"]
    lines += [f"  {i}. {b.title}" for i, b in enumerate(reply.buttons, start=1)]
    return "\n".join(lines)


async def chat(
    engine: Engine,
    *,
    sender_id: str = "shell",
    read: Callable[[str], str] | None = None,
    out: TextIO | None = None,
) -> None:
    prompt = read or input

    def say(text: str) -> None:
        print(text, file=out, flush=True)

    say("Type a message (or /stop to quit). Numbers press the buttons shown last.")
    buttons: list[str] = []
    while True:
        try:
            text = await asyncio.to_thread(prompt, "You: ")
        except (EOFError, KeyboardInterrupt):
            say("")
            return
        text = text.strip()
        if text in EXIT_WORDS:
            return
        if text.isdigit() and 0 < int(text) <= len(buttons):
            text = buttons[int(text) - 1]
        try:
            replies = await engine.handle(InboundMessage(CHANNEL_NAME, sender_id, text))
        except MessageRejected as exc:
            say(f"(not sent: {exc})")
            continue
        if not replies:
            say("(a member of the support team owns this conversation now)")
        buttons = [b.payload for reply in replies for b in reply.buttons]
        for reply in replies:
            say(render(reply))
