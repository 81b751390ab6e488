"""The errors CrowdDesk refuses a request with, by what went wrong rather than where: an unknown
id (`NotFound`), a state that does not allow the change (`Conflict`), input that is refused as
sent (`Rejected`; `Invalid` when a value breaks the rules of its field, `TooLarge` when it is over
a size limit), a caller who may not do it (`Forbidden`), a service it needs is down or busy for
a moment (`Unavailable`: send it again). Every exception class of CrowdDesk
derives from `CrowdDeskError`; the HTTP API (bot/web/errors.py) and the command line
(bot/cli/output.py) each turn these families into status codes and exit codes in one place, so
domain code only says what happened. This package is the lowest layer and imports nothing of
CrowdDesk."""

from __future__ import annotations


class CrowdDeskError(Exception):
    """A failure CrowdDesk reports to whoever asked, in one line: its message."""


class NotFound(CrowdDeskError):
    """No such ticket, agent, suggestion or entry."""


class Conflict(CrowdDeskError):
    """The thing exists but its state does not allow this: already claimed, already approved."""


class Rejected(CrowdDeskError):
    """The input is refused as sent: an empty reason, a value out of bounds."""


class Invalid(Rejected):
    """A value breaks the rules of its field: an unsafe entry id or link, an unknown role."""


class TooLarge(Rejected):
    """The input is over a size limit."""


class Forbidden(CrowdDeskError):
    """The caller may not do this."""


class Unavailable(CrowdDeskError):
    """Nothing was done because a service it needs is down or busy for a moment: send it again."""
