"""PII redaction of log messages (config.yml: SupportPolicy `privacy.redact_logs`).

A filter on the handlers of the root logger (where CrowdDesk's loggers propagate) and of
uvicorn's loggers rewrites each record's message, arguments and traceback text before any of
them writes it. Handlers are only known once uvicorn has configured logging, so the server turns
it on for its lifetime (`redacted_logs`), not at import.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

from crowddesk.bot.server.log_scrubbing import RewritingFilter
from crowddesk.knowledge_base.redaction import Redactor

# "" is the root logger; uvicorn.access does not propagate, so it is listed apart.
REDACTED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")


class PiiLogFilter(RewritingFilter):
    """Replaces PII in a record's message, arguments and traceback; never drops a record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__(redactor.redact)


@contextmanager
def redacted_logs(redactor: Redactor, *, enabled: bool = True) -> Iterator[None]:
    """While open (and `enabled`), the handlers of `REDACTED_LOGGERS` redact PII."""
    log_filter = PiiLogFilter(redactor)
    handlers = (
        {handler for name in REDACTED_LOGGERS for handler in logging.getLogger(name).handlers} if enabled else set()
    )
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)
