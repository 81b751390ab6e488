"""Buttons on text-only channels (SMS): a numbered list, and a numbered reply read back as a payload.

A connector renders each message's buttons as "Reply 1 for …" lines and remembers the buttons
of the last message it sent to each recipient, so the customer's "2" reaches the bot as the
second button's payload, as a press would on a platform with real buttons.
"""

from __future__ import annotations

from collections import OrderedDict

from crowddesk.connectors.types import Button, OutboundMessage

# Recipients whose last buttons are remembered; the oldest are forgotten first, so memory stays
# bounded however many customers write.
MAX_REMEMBERED_RECIPIENTS = 10_000


class NumberedButtons:
    """The last buttons offered to each recipient, to map a numbered reply back to a payload."""

    def __init__(self) -> None:
        self._offered: OrderedDict[str, tuple[Button, ...]] = OrderedDict()

    def render(self, recipient_id: str, message: OutboundMessage) -> str:
        """`message`'s text followed by one "Reply N for <title>" line per button (remembered).
        A message without buttons forgets the earlier ones: a number then answers that message
        (an agent's question, say), not a list further up."""
        if not message.buttons:
            self._offered.pop(recipient_id, None)
            return message.text
        self._offered[recipient_id] = message.buttons
        self._offered.move_to_end(recipient_id)
        while len(self._offered) > MAX_REMEMBERED_RECIPIENTS:
            self._offered.popitem(last=False)
        choices = "\n".join(f"Reply {number} for {button.title}" for number, button in enumerate(message.buttons, 1))
        return f"{message.text}\n\n{choices}" if message.text else choices

    def read(self, sender_id: str, text: str) -> str:
        """The payload of the button numbered `text` among the last ones offered to `sender_id`;
        any other text unchanged."""
        offered = self._offered.get(sender_id, ())
        choice = text.strip()
        if choice.isdecimal() and 1 <= int(choice) <= len(offered):
            return offered[int(choice) - 1].payload
        return text
