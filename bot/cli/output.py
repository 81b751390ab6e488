"""How every `crowddesk` verb writes: results to stdout at once, errors to stderr as `error: ...`."""

from __future__ import annotations

import sys


def say(text: str) -> None:
    """Print a line of output at once (a long verb shows its progress as it goes)."""
    print(text, flush=True)


def fail(message: str, exit_code: int) -> int:
    """Report `message` as an error and return the verb's exit code."""
    print(f"error: {message}", file=sys.stderr)
    return exit_code
