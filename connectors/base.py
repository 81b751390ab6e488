"""The channel seam: how one platform's messages come in and go out.

A connector parses and verifies the platform's inbound requests into `InboundMessage`s, hands
them to the bot through a `MessageSink`, and renders `OutboundMessage`s natively in `send`.
Delivery (the outbox, retries, rate limits) and de-duplication live outside the connector, so
a new channel is one module plus one line in `crowddesk.connectors.registry`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, ClassVar

from fastapi import APIRouter

from crowddesk.connectors.memory import ChannelMemory, ProcessMemory
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from crowddesk.errors import CrowdDeskError, Rejected

MessageSink = Callable[[InboundMessage], Awaitable[list[OutboundMessage]]]
"""Gives one verified inbound message to the bot. Returns the replies for channels that answer
inline (`ChannelConnector.replies_inline`); other channels get theirs through `send`."""


class CredentialsError(Rejected, ValueError):
    """A channel's block in credentials.yml is missing a key or has a bad value."""


def reject_unknown_keys(channel: str, block: Mapping[str, Any], known: Iterable[str]) -> None:
    """Raise `CredentialsError` naming the first key of a channel's block that is not `known`."""
    expected = sorted(known)
    unknown = sorted(set(block) - set(expected))
    if unknown:
        raise CredentialsError(f"{channel}.{unknown[0]}: unknown key; expected one of: {', '.join(expected)}")


def text_settings(channel: str, block: Mapping[str, Any]) -> dict[str, str]:
    """The keys of a channel's block that are set (not empty), each a string; `CredentialsError`
    names the first value that is not one."""
    values = {}
    for key, value in block.items():
        if value in (None, ""):
            continue
        if not isinstance(value, str):
            raise CredentialsError(f"{channel}.{key}: expected a string, got {type(value).__name__}")
        values[key] = value
    return values


class DeliveryError(CrowdDeskError):
    """The platform did not accept a message.

    `retry_after` is the delay in seconds the platform asked for (HTTP 429 Retry-After);
    `permanent` means retrying cannot help (unknown chat, bot blocked by the user)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, permanent: bool = False) -> None:
        super().__init__(reason)
        self.retry_after = retry_after
        self.permanent = permanent


class ChannelConnector(ABC):
    """One messaging platform. Subclasses set `name` and implement `from_credentials` and `send`."""

    name: ClassVar[str]
    replies_inline: ClassVar[bool] = False
    """True when the webhook's HTTP response carries the replies (Rasa's REST channel)."""
    api_client: ClassVar[bool] = False
    """True when messages come from API clients that read each request's HTTP status (REST,
    callback), not from a platform that redelivers: a rejected message is refused with its 4xx,
    and one sent again with the same `message_id` gets the replies of its first delivery."""
    max_messages_per_second: ClassVar[float] = 20.0
    """The outbox never sends faster than this to one channel (the platform's own limit)."""
    _memory: ChannelMemory | None = None

    @property
    def memory(self) -> ChannelMemory:
        """What this channel remembers about its customers: the database's memory once
        `attach_memory` gave it one, this process's until then."""
        if self._memory is None:
            self._memory = ProcessMemory()
        return self._memory

    def attach_memory(self, memory: ChannelMemory) -> None:
        """Remember in `memory` from now on (the server attaches the database's at start)."""
        self._memory = memory

    @classmethod
    @abstractmethod
    def from_credentials(cls, settings: Mapping[str, Any]) -> ChannelConnector:
        """Build from this channel's block of credentials.yml (`${VAR}` already expanded);
        raise `CredentialsError` naming the key that is missing or wrong."""

    def router(self, sink: MessageSink) -> APIRouter | None:
        """The inbound webhook routes (mounted by `crowddesk run`), or None for none."""
        return None

    async def start(self, sink: MessageSink) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Begin background reception (polling, socket mode); webhook-only channels do nothing."""

    async def stop(self) -> None:  # noqa: B027 - optional hook, a no-op by default
        """Stop what `start` began and release clients."""

    def open_sessions(self) -> int:
        """Connections customers hold open to this server right now (the web chat's sockets);
        channels reached through a platform hold none."""
        return 0

    def refusal(self, message: OutboundMessage, now: float) -> str | None:
        """Why the platform will refuse `message` at `now` (epoch seconds) however often it is
        retried, e.g. its reply window has closed; the desk asks before it stores an agent's
        reply. None: the message can go."""
        return None

    @abstractmethod
    async def send(self, recipient_id: str, message: OutboundMessage) -> None:
        """Deliver one message in the platform's native form; raise `DeliveryError` if refused."""
