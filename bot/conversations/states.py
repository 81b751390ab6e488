"""The states the conversation tables store, by name.

Members are `StrEnum`s: each equals, formats and is stored as its plain string, so the database,
the JSON of the APIs and the CLI output carry the same values as before they had names.
"""

from __future__ import annotations

from enum import StrEnum


class TicketStatus(StrEnum):
    """Where a hand-off ticket (`handoffs.status`) stands."""

    QUEUED = "queued"
    ASSIGNED = "assigned"
    RESOLVED = "resolved"


# A ticket still waiting for, or with, an agent: the conversation has not gone back to the bot.
OPEN_TICKET_STATUSES: tuple[TicketStatus, ...] = (TicketStatus.QUEUED, TicketStatus.ASSIGNED)


class ConversationOwner(StrEnum):
    """Who answers the customer (`conversations.owner`): the bot, or the desk through a ticket
    that is queued or assigned (the same words as the ticket's status)."""

    BOT = "bot"
    QUEUED = TicketStatus.QUEUED.value
    ASSIGNED = TicketStatus.ASSIGNED.value


class OutboxState(StrEnum):
    """Where an outbound message (`outbox.status`) stands."""

    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"
