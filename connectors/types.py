"""The messages that cross the channel seam, in a platform-neutral shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Button:
    title: str
    payload: str

    def as_dict(self) -> dict[str, str]:
        return {"title": self.title, "payload": self.payload}


@dataclass(frozen=True)
class InboundMessage:
    """One customer message as a channel hands it to the engine."""

    channel: str
    sender_id: str
    text: str
    message_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    original_text: str | None = None
    """The text as the platform sent it, escaped, when the gateway repaired `text`."""


@dataclass(frozen=True)
class OutboundMessage:
    """One bot (or agent) message for a channel to render natively; `custom` carries extras
    such as the KB entry and its source, which text-only channels may ignore."""

    recipient_id: str
    text: str
    buttons: tuple[Button, ...] = ()
    image: str | None = None
    custom: dict[str, Any] = field(default_factory=dict)
    customer_wrote_at: float | None = None
    """When the customer last wrote (epoch seconds), for platforms that accept free-form messages
    only for a while after it (`crowddesk.connectors.reply_window`); None: this message answers
    the one just received."""
    sent_by_agent: bool = False
    """A person at the desk wrote it (Messenger lets a person answer longer than a bot)."""
    delivery_key: str | None = None
    """The same on every attempt to send this message (the outbox row's): a receiver that keeps
    it drops a repeat sent after a crash between sending and recording the delivery."""
    public_post: dict[str, Any] | None = None
    """For a reply to a public post (an X mention, a page comment): the inbound message's
    `public_post` plus "visibility" ("public": reply under the post; "private": post only the
    "acknowledgement" text there and send this message privately). None: an ordinary message."""

    def as_rasa(self) -> dict[str, Any]:
        """The shape Rasa's REST channel returns, so existing clients keep working."""
        body: dict[str, Any] = {"recipient_id": self.recipient_id, "text": self.text}
        if self.buttons:
            body["buttons"] = [b.as_dict() for b in self.buttons]
        if self.image:
            body["image"] = self.image
        if self.custom:
            body["custom"] = self.custom
        return body
