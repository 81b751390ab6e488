"""What the `crowddesk` sub-parsers share when they register their verbs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

ProjectArg = Callable[[argparse.ArgumentParser], None]
"""Adds `--project` to a verb's parser; main.py hands one to each sub-parser."""


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text}")
    return int(text)
