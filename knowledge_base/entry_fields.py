"""What a KB entry's id and source URL may be, wherever an entry is created or edited.

Ids travel into URLs (`/kb/api/entries/{id}`), file paths of exports and button payloads, and
source URLs become links in the desk, the widget and messaging apps. So an id starts with a
letter or digit, has no whitespace, control, quote, angle-bracket or backslash character and no
`.`/`..` path segment (Rasa intent names such as `faq/reverted_card_payment?` keep working),
and a source is an http(s) URL.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# Every id the importers make fits: faq/<intent key>, <file>:<slug of the question, any
# script>, manual:<slug>, stackexchange:<site>:<id>, discourse:<site>:<id>, handoff:<ticket>.
_ID = re.compile(r"[^\W_][^\s\\<>\"'`]*")
_ID_RULE = "start with a letter or digit and have no space, quote, <, > or backslash"
_URL_SCHEMES = ("http", "https")


def entry_id_problem(entry_id: str) -> str | None:
    """Why `entry_id` can't name a KB entry, or None when it can."""
    if not _ID.fullmatch(entry_id) or not entry_id.isprintable():
        return f"KB entry id {entry_id!r} must {_ID_RULE}"
    if any(segment in (".", "..") for segment in entry_id.split("/")):
        return f"KB entry id {entry_id!r} must not have a '.' or '..' segment"
    return None


def source_url_problem(url: str) -> str | None:
    """Why `url` can't be an entry's source link, or None when it can (empty: no source)."""
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme.lower() not in _URL_SCHEMES or not parts.netloc or not url.isprintable() or " " in url:
        return f"source URL {url!r} must be an http:// or https:// link (or empty)"
    return None
