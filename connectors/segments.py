"""Long replies cut into the parts a platform accepts (SMS 1,600 characters, Messenger 2,000...)."""

from __future__ import annotations

import re
from collections.abc import Iterator

_WHITESPACE = re.compile(r"\s")


def split_text(text: str, limit: int) -> Iterator[str]:
    """`text` in parts of at most `limit` characters, cut at the last whitespace before the
    limit (mid-word only when a word is longer than that)."""
    rest = text.strip()
    while len(rest) > limit:
        cut = max((found.start() for found in _WHITESPACE.finditer(rest, 0, limit + 1)), default=0) or limit
        yield rest[:cut].rstrip()
        rest = rest[cut:].lstrip()
    if rest:
        yield rest
