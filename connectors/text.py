"""Customer text made safe to process, store and show, whatever a platform delivered.

A lone surrogate crashes the sentence encoder's tokenizer, control and bidi-override characters
reorder or hide what an agent reads, and thousands of combining marks stacked on one letter
draw across the desk. `normalise_text` repairs all of these and nothing else: zero-width
joiners (emoji sequences, Persian), variation selectors, newlines and tabs are kept.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable

# Combining marks (Mn, Me) kept on one base character; real scripts stack at most about four
# (Vietnamese, Hebrew points with cantillation), "Zalgo" text stacks hundreds.
MAX_MARKS_PER_CHARACTER = 4

# C0 and C1 controls except tab and newline; bidi marks, embeddings, overrides and isolates
# (U+061C, U+200E/F, U+202A-U+202E, U+2066-U+2069), which can make text read differently than
# it is stored.
_UNSAFE_RANGES = "\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE = re.compile(f"[{_UNSAFE_RANGES}]")
# What the escaped original must not contain either: the above plus lone surrogates.
_UNSTORABLE = re.compile(f"[{_UNSAFE_RANGES}\ud800-\udfff]")


def normalise_text(text: str) -> str:
    """`text` with invalid Unicode replaced (U+FFFD), unsafe controls removed, in NFC, and
    combining marks capped at `MAX_MARKS_PER_CHARACTER` per base character."""
    if text.isascii() and _UNSAFE.search(text) is None:
        return text  # the common case, untouched
    # Through UTF-16: a surrogate pair becomes its character, a lone surrogate becomes U+FFFD.
    text = text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    return _capped_marks(unicodedata.normalize("NFC", _UNSAFE.sub("", text)), lambda _: "")


def escaped_original(original: str) -> str:
    """`original` as valid, inert Unicode for an agent to inspect: the characters
    `normalise_text` removes or replaces written as `\\uXXXX`, and the marks past the cap on
    a character counted (`[+2996 combining marks]`)."""
    escaped = _UNSTORABLE.sub(lambda found: f"\\u{ord(found.group()):04x}", original)
    return escaped if escaped.isascii() else _capped_marks(escaped, lambda count: f"[+{count} combining marks]")


def _capped_marks(text: str, dropped: Callable[[int], str]) -> str:
    """`text` with each run of combining marks past the cap on one base replaced by
    `dropped(how many)`."""
    kept: list[str] = []
    marks = excess = 0
    for character in text:
        if unicodedata.category(character) in ("Mn", "Me"):
            marks += 1
            if marks > MAX_MARKS_PER_CHARACTER:
                excess += 1
                continue
        else:
            marks = 0
        if excess:
            kept.append(dropped(excess))
            excess = 0
        kept.append(character)
    if excess:
        kept.append(dropped(excess))
    return "".join(kept)


def repaired(text: str) -> tuple[str, str | None]:
    """(`normalise_text(text)`, `escaped_original(text)` when the repair removed or replaced
    something, None when it at most composed characters (NFC), which changes nothing visible)."""
    normalised = normalise_text(text)
    if normalised == text or normalised == unicodedata.normalize("NFC", text):
        return normalised, None
    return normalised, escaped_original(text)
