"""What the `crowddesk` sub-parsers share when they register their verbs."""

from __future__ import annotations

import argparse
from collections.abc import Callable

ProjectArg = Callable[[argparse.ArgumentParser], None]
"""Adds `--project` to a verb's parser; main.py hands one to each sub-parser."""
