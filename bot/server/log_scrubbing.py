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
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote_plus

from uvicorn.config import LOGGING_CONFIG

from crowddesk.bot.desk.agents import TOKEN_PREFIX

# `session` is the web chat's session id: whoever holds it reads that customer's chat history.
SECRET_QUERY_KEYS = frozenset({"token", "access_token", "ticket", "stream_ticket", "session"})
REDACTED = "[redacted]"
_TRACEBACKS = logging.Formatter()

_QUERY_PAIR = re.compile(r"(?<=[?&;])([^=&;#\s\"']+)=([^&;#\s\"']*)")
# Our agent tokens and stream tickets, wherever they appear (a path, a header echoed in an error).
_OUR_TOKENS = re.compile(re.escape(TOKEN_PREFIX) + r"[A-Za-z0-9_\-]+")


def scrub(text: str) -> str:
    """`text` with the values of credential query parameters and anything like `cdk_…` replaced."""

    def pair(match: re.Match[str]) -> str:
        # Keys are compared decoded: `?%74oken=` is parsed as `token` too.
        return f"{match[1]}={REDACTED}" if unquote_plus(match[1]).lower() in SECRET_QUERY_KEYS else match[0]

    return _OUR_TOKENS.sub(REDACTED, _QUERY_PAIR.sub(pair, text))


class RewritingFilter(logging.Filter):
    """Rewrites a record's message template, its arguments and its traceback text with
    `rewrite`; never drops a record.

    The arguments keep their shape, one by one: uvicorn's access formatter unpacks them, so a
    record whose arguments were folded into its message would be lost with a logging error.
    """

    def __init__(self, rewrite: Callable[[str], str]) -> None:
        super().__init__()
        self._rewrite = rewrite

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = self._rewrite(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(self._argument(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {key: self._argument(arg) for key, arg in record.args.items()}
        if record.exc_info and not record.exc_text:
            # Formatted here, as a handler would, so the exception's text is rewritten too.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._rewrite(record.exc_text)
        return True

    def _argument(self, value: Any) -> Any:
        """A string rewritten; another object replaced by its rewritten text only when that
        changed it (numbers are kept: `%d` needs them)."""
        if isinstance(value, (int, float)):
            return value
        text = value if isinstance(value, str) else str(value)
        rewritten = self._rewrite(text)
        return rewritten if isinstance(value, str) or rewritten != text else value


class CredentialScrubber(RewritingFilter):
    """Scrubs credentials (`scrub`) from every record it sees."""

    def __init__(self) -> None:
        super().__init__(scrub)


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's default `log_config`, with `CredentialScrubber` on its handlers."""
    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["scrub_credentials"] = {"()": CredentialScrubber}
    for handler in config["handlers"].values():
        handler.setdefault("filters", []).append("scrub_credentials")
    return config
