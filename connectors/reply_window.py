"""How long after a customer's last message a platform accepts a free-form message to them.

WhatsApp, Messenger and Instagram open a 24-hour customer service window with each message the
customer sends; outside it WhatsApp takes only an approved template, and Meta's messengers take
a person's message tagged `HUMAN_AGENT` for 7 days. Connectors read a message's state here when
they send it, and the desk asks the same question before it stores an agent's reply.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from crowddesk.connectors.types import OutboundMessage

CUSTOMER_SERVICE_WINDOW = timedelta(hours=24)
HUMAN_AGENT_WINDOW = timedelta(days=7)


class WindowState(StrEnum):
    OPEN = "open"
    """Within the customer service window: any message may be sent."""
    HUMAN_AGENT = "human_agent"
    """Past it, but a person may still answer with the platform's human-agent tag."""
    CLOSED = "closed"
    """Only what the platform allows outside the window (a WhatsApp template), or nothing."""


@dataclass(frozen=True)
class ReplyWindow:
    """One platform's rule: free-form for `open_for` after the customer last wrote, and for
    `agent_open_for` when a person writes (None: no longer than anyone else)."""

    open_for: timedelta = CUSTOMER_SERVICE_WINDOW
    agent_open_for: timedelta | None = None

    def state(self, message: OutboundMessage, now: float) -> WindowState:
        """Where `message` stands at `now` (epoch seconds)."""
        if message.customer_wrote_at is None:
            return WindowState.OPEN
        elapsed = timedelta(seconds=max(0.0, now - message.customer_wrote_at))
        if elapsed <= self.open_for:
            return WindowState.OPEN
        if message.sent_by_agent and self.agent_open_for is not None and elapsed <= self.agent_open_for:
            return WindowState.HUMAN_AGENT
        return WindowState.CLOSED

    def closed_reason(self, platform: str, message: OutboundMessage, now: float) -> str:
        """What an agent reads when `message` cannot go out (it was not sent): how long ago the
        customer wrote and what reopens the conversation."""
        hours = (now - (message.customer_wrote_at or now)) / 3600
        longest = self.agent_open_for if message.sent_by_agent and self.agent_open_for else self.open_for
        return (
            f"{platform} accepts messages only within {_span(longest)} of the customer's last message, "
            f"and the customer last wrote {hours:.0f} hours ago: send it again once they write"
        )


def _span(window: timedelta) -> str:
    return f"{window.days} days" if window.days > 1 else f"{window.total_seconds() / 3600:.0f} hours"
