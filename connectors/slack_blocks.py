"""Block Kit rendering: an `OutboundMessage` as the `text` and `blocks` of chat.postMessage.

Limits are Slack's own (https://docs.slack.dev/reference/block-kit): a section's text holds
3,000 characters, a button's label 75 and its value 2,000, an actions block 25 elements.
"""

from __future__ import annotations

import re
from typing import Any

from crowddesk.connectors.types import Button, OutboundMessage

SECTION_CHARS = 3000
BUTTON_LABEL_CHARS = 75
BUTTON_VALUE_CHARS = 2000
ACTIONS_PER_BLOCK = 25
BUTTON_ACTION_PREFIX = "crowddesk_button_"
"""Action ids of the buttons on bot messages; a press comes back as `block_actions`."""

Block = dict[str, Any]


def escape(text: str) -> str:
    """Text safe to put in mrkdwn: Slack reads `&`, `<` and `>` as markup."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unformat(text: str) -> str:
    """What a person typed, from Slack's markup of it: links as their text (and address),
    other references (<@U…>, <#C…>) as written, and `&amp;`, `&lt;`, `&gt;` decoded."""

    def plain_reference(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target.startswith(("http://", "https://", "mailto:")):
            address = target.removeprefix("mailto:")
            return f"{label} ({address})" if label and label != address else address
        return label or target

    text = re.sub(r"<([^<>]+)>", plain_reference, text)
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def plain(text: str, limit: int = BUTTON_LABEL_CHARS) -> dict[str, Any]:
    """A plain_text object, shortened with an ellipsis to Slack's `limit` for the field."""
    shown = text if len(text) <= limit else text[: limit - 1] + "…"
    return {"type": "plain_text", "text": shown, "emoji": True}


def sections(text: str) -> list[Block]:
    """mrkdwn `text` as section blocks, split on line breaks where it exceeds one section."""
    blocks: list[Block] = []
    rest = text.strip()
    while rest:
        if len(rest) <= SECTION_CHARS:
            cut = len(rest)
        else:
            # Prefer a line break, then a space, so a split never lands inside a word or link.
            cut = max(rest.rfind("\n", 0, SECTION_CHARS), rest.rfind(" ", 0, SECTION_CHARS))
            cut = cut if cut > 0 else SECTION_CHARS
        blocks.append({"type": "section", "text": mrkdwn(rest[:cut])})
        rest = rest[cut:].strip()
    return blocks


def button(label: str, action_id: str, value: str, style: str | None = None) -> Block:
    element: Block = {
        "type": "button",
        "text": plain(label),
        "action_id": action_id,
        "value": value[:BUTTON_VALUE_CHARS],
    }
    if style:
        element["style"] = style
    return element


def actions(elements: list[Block]) -> list[Block]:
    """Actions blocks holding `elements`, as many blocks as Slack's per-block limit needs."""
    return [
        {"type": "actions", "elements": elements[start : start + ACTIONS_PER_BLOCK]}
        for start in range(0, len(elements), ACTIONS_PER_BLOCK)
    ]


def choice_buttons(buttons: tuple[Button, ...]) -> list[Block]:
    return actions([button(b.title, f"{BUTTON_ACTION_PREFIX}{i}", b.payload) for i, b in enumerate(buttons)])


def render(message: OutboundMessage, *, prefix: str = "") -> tuple[str, list[Block]]:
    """The notification text and the blocks for `message`; `prefix` is mrkdwn put before the
    text (a mention of the customer in a shared channel)."""
    text = message.text
    source = str(message.custom.get("source_url") or "")
    if source:
        # The engine appends the source as a last line for text-only channels; Slack shows it
        # as a link under the answer instead.
        text = text.removesuffix(f"\n\nSource: {source}")
    body = prefix + escape(text)
    blocks = sections(body)
    if message.custom.get("agent_name"):
        # A person answers after a handoff: say who, so the customer knows it's not the bot.
        blocks.insert(
            0, {"type": "context", "elements": [mrkdwn(f"*{escape(str(message.custom['agent_name']))}*, support team")]}
        )
    if message.image:
        blocks.append({"type": "image", "image_url": message.image, "alt_text": "image"})
    if source:
        blocks.append({"type": "context", "elements": [mrkdwn(f"Source: <{source}>")]})
    blocks.extend(choice_buttons(message.buttons))
    return body, blocks
