"""Finds an explicit request for a person ("get me a human", "can I talk to someone").

A customer who asks for a person must get one whatever else the message says ("this bot is
useless, get me a human"), but the intent classifier sees the whole message and may rank
another intent first. These rules look for the request itself: a verb of asking or contacting
followed by someone to be put through to. Mentioning people is not asking for one: "are you a
human?", "my husband's card", "the agent at the branch told me..." have no such verb, and a
negated request ("I don't need an agent") does not count.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

# Someone a customer can be put through to. Bare "someone" or "support" only count after a
# verb of contacting ("talk to someone", "connect me to support"): "I need support with my
# card" or "I need someone to send me money" ask for help, not for a person.
_QUALIFIER = r"(?:(?:a|an|the|some|one|of|your|real|live|actual|proper|human|customer|bank|support|service|team)\s+)*"
_PERSON = (
    _QUALIFIER + r"(?:human(?:\s+being)?s?|person|people|agents?|representatives?|reps?|operators?|"
    r"advis[eo]rs?|staff(?:\s+members?)?|team\s+members?|members?\s+of\s+(?:staff|(?:your|the)\s+team)|"
    r"managers?|supervisors?|employees?|colleagues?)"
)
_ANYONE = (
    _PERSON + r"|(?:someone|somebody|anyone|anybody)(?:\s+real)?|" + _QUALIFIER + r"(?:support|customer\s+service)"
)
_CONTACT = (
    r"(?:talk|speak|chat)\s+(?:to|with)|"
    r"(?:connect|transfer|pass|put)\s+(?:me|us)\s+(?:through\s+)?(?:to|with)|"
    r"be\s+(?:connected|transferred|put\s+through)\s+(?:to|with)|escalate\s+(?:this\s+|it\s+)?to"
)
_ASK = (
    r"(?:get|give|find|bring|fetch|send)\s+me|(?:want|need|like|request|prefer)|"
    r"(?:can|could|may)\s+(?:i|we)\s+(?:have|get)"
)
_PATTERNS = (
    re.compile(rf"\b(?:{_CONTACT})\s+(?:{_ANYONE})\b"),
    re.compile(rf"\b(?:{_ASK})\s+(?:{_PERSON}|(?:someone|somebody)\s+real)\b(?!\s+(?:who|that)\b)"),
    re.compile(rf"\b(?:{_ASK})\s+(?:some\s+)?(?:human|real|live|personal)\s+(?:help|assistance|support)\b"),
    # The whole message is the request: "human please", "agent!", "real person now".
    re.compile(rf"^\W*(?:please\s+)?(?:{_PERSON})\s*(?:please|pls|plz|now|asap)?\W*$"),
)
# A request the customer turns down: "I don't need an agent", "no need to talk to anyone".
_NEGATED = re.compile(r"\b(?:don'?t|do\s+not|doesn'?t|didn'?t|won'?t|never|not|no\s+need\s+to|no)\s+(?:\w+\s+){0,3}$")


class PersonRequestDetector:
    """Whether a message explicitly asks for a person; `extra_phrases` are project additions."""

    def __init__(self, extra_phrases: Sequence[str] = ()) -> None:
        extra = sorted({p.strip().lower() for p in extra_phrases if p.strip()}, key=len, reverse=True)
        alternation = "|".join(map(re.escape, extra))
        self._patterns = _PATTERNS + ((re.compile(rf"(?<!\w)(?:{alternation})(?!\w)"),) if extra else ())

    def find(self, text: str) -> str:
        """The words that ask for a person ("get me a human"), or "" when the message doesn't."""
        lowered = " ".join(text.lower().replace("\u2019", "'").split())
        for pattern in self._patterns:
            for match in pattern.finditer(lowered):
                if not _NEGATED.search(lowered[: match.start()]):
                    return match.group().strip()
        return ""
