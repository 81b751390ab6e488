"""Reading a satisfaction rating (1–5) from the customer's answer to the rating question.

Only the answer to that question is read this way, so a bare "4" is a rating there and
nowhere else. Thumbs map to the ends of the scale, as in top/bottom-box CSAT.
"""

from __future__ import annotations

import re

from crowddesk.nlu.payload import parse_payload

RATING_ENTITY = "rating"
THUMBS = {"👍": 5, "👎": 1}
_STARS = re.compile(r"^(?:⭐|★|\*){1,5}$")
_SKIN_TONES = re.compile("[\U0001f3fb-\U0001f3ff\ufe0f]")
# "4", "4/5", "4 out of 5", "5 stars", "I'd give it a 4", "4 - great": one digit 1-5 that is
# either the whole answer or followed by a rating cue; other numbers ("I tried 5 times") aren't.
_NUMBER = re.compile(
    r"^(?:(?:i'?d |i would |i )?(?:give (?:it |you )?|rate (?:it |this |you )?)(?:an? )?)?"
    r"(?P<n>[1-5])(?:\s*(?:/\s*5|out of 5|of 5|stars?)|\s*[.!]*\s*(?:[-–:,]\s*\w[\w\s!.]*)?)?[.!]*$",
    re.IGNORECASE,
)


def parse_rating(text: str) -> int | None:
    """The 1–5 rating `text` gives, or None if it is not a rating."""
    payload = parse_payload(text)
    if payload is not None:
        value = payload.entities.get(RATING_ENTITY)
        is_rating = isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 5
        return value if is_rating else None
    answer = _SKIN_TONES.sub("", text).strip()
    if answer in THUMBS:
        return THUMBS[answer]
    if _STARS.match(answer):
        return len(answer)
    match = _NUMBER.match(answer)
    return int(match.group("n")) if match else None
