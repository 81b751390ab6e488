"""How every `crowddesk` verb writes: results to stdout at once, errors to stderr as `error: ...`,
and which exit code an error gives (EXIT_CODES, shown by `crowddesk --help`)."""

from __future__ import annotations

import sys

from crowddesk.errors import CrowdDeskError, NotFound

EXIT_REFUSED = 1
EXIT_NOT_FOUND = 2
EXIT_CODES = (
    "Exit codes: 0 done; 1 refused or failed, with the reason on stderr; 2 for `desk` an unknown "
    "ticket or agent, for `kb` an unknown entry, version or suggestion, for `privacy` nothing held "
    "about the customer."
)


def say(text: str) -> None:
    """Print a line of output at once (a long verb shows its progress as it goes)."""
    print(text, flush=True)


def fail(message: str, exit_code: int) -> int:
    """Report `message` as an error and return the verb's exit code."""
    print(f"error: {message}", file=sys.stderr)
    return exit_code


def exit_code_for(error: CrowdDeskError) -> int:
    """EXIT_NOT_FOUND for an unknown id, EXIT_REFUSED for every other error."""
    return EXIT_NOT_FOUND if isinstance(error, NotFound) else EXIT_REFUSED


def refuse(error: CrowdDeskError) -> int:
    """Report `error` and return its exit code."""
    return fail(str(error), exit_code_for(error))
