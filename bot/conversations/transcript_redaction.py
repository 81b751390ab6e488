"""Customer text redacted before a turn is stored (config.yml: SupportPolicy `privacy.redact_transcripts`).

The engine understands the message as sent; what is written (the user events, the conversation's
latest message, a new ticket's packet) carries `[card]`, `[email]`, ... instead. Slot values are
kept as extracted: they are the bot's working memory, which custom actions read.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from crowddesk.bot.conversations.store import NewHandoff
from crowddesk.knowledge_base.redaction import Redactor

# Keys of a user event or transcript line that hold what the customer typed; `original_text`
# is the message as sent when the gateway had to repair it.
_CUSTOMER_TEXT_KEYS = ("text", "original_text")


@dataclass(frozen=True)
class TranscriptRedactor:
    """Redacts the customer's words in what one turn stores."""

    redactor: Redactor

    def events(self, events: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The turn's events with every user event's text and parse data redacted."""
        return [self._user_event(event) if event["event"] == "user" else event for event in events]

    def parse(self, parse: dict[str, Any] | None) -> dict[str, Any] | None:
        """A Rasa parse result (`latest_message`) with its text and entity values redacted."""
        if parse is None:
            return None
        return {**self._texts(parse), "entities": self._entities(parse.get("entities") or [])}

    def handoff(self, handoff: NewHandoff | None) -> NewHandoff | None:
        """A new ticket whose packet's summary, entities and customer lines are redacted."""
        if handoff is None:
            return None
        packet = handoff.packet
        return replace(
            handoff,
            packet={
                **packet,
                "summary": self.redactor.redact(str(packet.get("summary") or "")),
                "entities": self._entities(packet.get("entities") or []),
                "transcript": [
                    self._texts(line) if line.get("role") == "customer" else line
                    for line in packet.get("transcript") or []
                ],
            },
        )

    def _user_event(self, event: dict[str, Any]) -> dict[str, Any]:
        redacted = self._texts(event)
        if event.get("parse_data") is not None:
            redacted["parse_data"] = self.parse(event["parse_data"])
        return redacted

    def _texts(self, item: dict[str, Any]) -> dict[str, Any]:
        return {
            **item,
            **{key: self.redactor.redact(item[key]) for key in _CUSTOMER_TEXT_KEYS if isinstance(item.get(key), str)},
        }

    def _entities(self, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [
            {**e, "value": self.redactor.redact(e["value"])} if isinstance(e.get("value"), str) else e for e in entities
        ]
