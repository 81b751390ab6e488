"""What a connector must remember about a customer between messages: the buttons it offered as a
numbered list, the private identity a public commenter answered from.

`crowddesk run` gives every connector the database's memory, so a fact written by one server
process is read by the next one a customer's message reaches, and survives restarts; until a
connector is given one (a unit test, a script) it remembers in its own process.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Protocol

# Facts kept by a process's own memory; the oldest are forgotten first, so memory stays bounded
# however many customers write.
MAX_FACTS_IN_PROCESS = 10_000


class ChannelMemory(Protocol):
    """One channel's facts about its customers, each a JSON value under (sender id, key)."""

    def recall(self, sender_id: str, key: str) -> Any | None:
        """The value last remembered, or None."""
        ...

    def remember(self, sender_id: str, key: str, value: Any | None) -> None:
        """Keep `value` (None forgets the fact)."""
        ...


class ProcessMemory:
    """A `ChannelMemory` in this process only: lost on restart, not shared between processes."""

    def __init__(self) -> None:
        self._facts: OrderedDict[tuple[str, str], Any] = OrderedDict()

    def recall(self, sender_id: str, key: str) -> Any | None:
        return self._facts.get((sender_id, key))

    def remember(self, sender_id: str, key: str, value: Any | None) -> None:
        if value is None:
            self._facts.pop((sender_id, key), None)
            return
        self._facts[(sender_id, key)] = value
        self._facts.move_to_end((sender_id, key))
        while len(self._facts) > MAX_FACTS_IN_PROCESS:
            self._facts.popitem(last=False)
