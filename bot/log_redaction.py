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

from crowddesk.knowledge_base.redaction import Redactor

# "" is the root logger; uvicorn.access does not propagate, so it is listed apart.
REDACTED_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
_TRACEBACKS = logging.Formatter()


class PiiLogFilter(logging.Filter):
    """Replaces PII in a record's formatted message and traceback; never drops a record."""

    def __init__(self, redactor: Redactor) -> None:
        super().__init__()
        self._redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = self._redactor.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            # Formatted here, as handlers would, so the exception's text is redacted too.
            record.exc_text = _TRACEBACKS.formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redactor.redact(record.exc_text)
        return True


@contextmanager
def redacted_logs(redactor: Redactor, *, enabled: bool = True) -> Iterator[None]:
    """While open (and `enabled`), the handlers of `REDACTED_LOGGERS` redact PII."""
    log_filter = PiiLogFilter(redactor)
    handlers = ({handler for name in REDACTED_LOGGERS for handler in logging.getLogger(name).handlers}
                if enabled else set())
    for handler in handlers:
        handler.addFilter(log_filter)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(log_filter)
