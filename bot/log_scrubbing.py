"""Credentials out of the server's logs: uvicorn's access and error lines print request URLs.

A URL may carry a credential (Rasa clients send `?token=`, an old desk console sent its bearer
token to the event stream), and a logged token is a stolen token. `uvicorn_log_config` is
uvicorn's own logging setup with `CredentialScrubber` on both of its handlers, so every line
they write (access lines, and websocket lines, which go to the error log) is scrubbed.
"""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote_plus

from uvicorn.config import LOGGING_CONFIG

from crowddesk.bot.agents import TOKEN_PREFIX

# `session` is the web chat's session id: whoever holds it reads that customer's chat history.
SECRET_QUERY_KEYS = frozenset({"token", "access_token", "ticket", "stream_ticket", "session"})
REDACTED = "[redacted]"

_QUERY_PAIR = re.compile(r"(?<=[?&;])([^=&;#\s\"']+)=([^&;#\s\"']*)")
# Our agent tokens and stream tickets, wherever they appear (a path, a header echoed in an error).
_OUR_TOKENS = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]+")


def scrub(text: str) -> str:
    """`text` with the values of credential query parameters and anything like `cdk_…` replaced."""

    def pair(match: re.Match[str]) -> str:
        # Keys are compared decoded: `?%74oken=` is parsed as `token` too.
        return f"{match[1]}={REDACTED}" if unquote_plus(match[1]).lower() in SECRET_QUERY_KEYS else match[0]

    return _OUR_TOKENS.sub(REDACTED, _QUERY_PAIR.sub(pair, text))


class CredentialScrubber(logging.Filter):
    """Scrubs a record's message and string arguments; never drops a record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(scrub(arg) if isinstance(arg, str) else arg for arg in record.args)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default `log_config`, with `CredentialScrubber` on its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["scrub_credentials"] = {"()": CredentialScrubber}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("scrub_credentials")
    return config
