"""The satisfaction question the bot asks when an agent resolves a ticket (API, console and CLI)."""

from __future__ import annotations

import time
from typing import Any

from crowddesk.bot.project.responses import ResponseRenderer, bot_event_data

RATING_RESPONSE = "utter_ask_rating"


def rating_request(renderer: ResponseRenderer, sender_id: str) -> list[dict[str, Any]]:
    """The bot's first events after a ticket is resolved: ask how it went.

    Empty when the domain has no `utter_ask_rating`, so projects without one just hand back.
    """
    if not renderer.has(RATING_RESPONSE):
        return []
    reply = renderer.render(RATING_RESPONSE, sender_id, {})
    now = time.time()
    return [
        {"event": "action", "timestamp": now, "name": RATING_RESPONSE},
        {
            "event": "bot",
            "timestamp": now,
            "text": reply.text,
            "data": bot_event_data(reply),
            "metadata": {"utter_action": RATING_RESPONSE},
        },
    ]
