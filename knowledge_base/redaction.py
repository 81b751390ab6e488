"""PII redaction: e-mails, phone numbers, card numbers, IBANs, wherever customer text is kept.

Imports, suggestions from handoffs, entries written from the consoles, the gap report and
(optionally) stored transcripts and logs all go through `Redactor.redact`. Each match is replaced
by a placeholder naming its kind (`[email]`, `[phone]`, `[card]`, `[iban]`, `[redacted]` for
configured patterns). Card numbers must pass the Luhn check, IBANs their country's length and
format and the mod-97 check, so order numbers and reference codes of the same shape survive.
Only counts per kind leave this module, never the matched text.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial

from schwifty import IBAN
from schwifty.exceptions import SchwiftyException

from crowddesk.knowledge_base.types import KBEntry

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes (4-4-4-4, 4-6-5, ...).
_CARD = re.compile(r"(?<![\w+-])\d(?:[ -]?\d){12,18}(?![\w-])")
# Customers type IBANs in lower case too; `_iban_length` trims words the pattern ran on into.
_IBAN = re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]){11,30}\b")
# Digit groups that may be a phone number; `_is_phone` then keeps only the shapes phone numbers
# are written in, so dates, IP addresses and version numbers are left alone.
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,5}(?:[ .-]\d{2,8}){1,4}(?![\w-])"
    r"|(?<![\w+])\+\d{7,15}(?!\w)"
)
_MIN_PHONE_DIGITS = 7
_MAX_PHONE_DIGITS = 15
# +44 20 7946 0958, (555) 123-4567, 030 1234567 and 07700 900123 (national trunk prefix), 555-123-4567.
_PHONE_SHAPE = re.compile(r"^(?:[+(0]|\d{3}([ .-])\d{3}\1\d{4}$)")


def luhn_valid(digits: str) -> bool:
    """The Luhn checksum of a card number (digits only)."""
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2:
            value = value * 2 - 9 if value > 4 else value * 2
        total += value
    return total % 10 == 0


def iban_valid(iban: str) -> bool:
    """An IBAN (spaces and either case allowed) with its country's length and format and valid
    ISO 13616 mod-97 check digits, by schwifty's registry of countries."""
    try:
        IBAN(iban, validate_bban=True)
    except SchwiftyException:
        return False
    return True


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _is_card(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _iban_length(text: str) -> int:
    """How many leading characters of `text` are a valid IBAN (0: none), ending at a space, so
    "DE89 3704 0044 0532 0130 00 OK" redacts the IBAN and keeps "OK"."""
    ends = [len(text)] + [i for i in range(len(text) - 1, 0, -1) if text[i] == " "]
    return next((end for end in ends if iban_valid(text[:end])), 0)


def _is_phone(text: str) -> bool:
    return _MIN_PHONE_DIGITS <= len(_digits(text)) <= _MAX_PHONE_DIGITS and bool(_PHONE_SHAPE.match(text))


def _whole(accept: Callable[[str], bool]) -> Callable[[str], int]:
    return lambda text: len(text) if accept(text) else 0


@dataclass(frozen=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    # How many leading characters of a match are PII (0: none, so the match is kept).
    pii_length: Callable[[str], int] = len


# Order matters: cards and IBANs before phones, whose pattern also matches grouped digits.
_BUILT_IN = (
    _Rule("email", _EMAIL),
    _Rule("iban", _IBAN, _iban_length),
    _Rule("card", _CARD, _whole(_is_card)),
    _Rule("phone", _PHONE, _whole(_is_phone)),
)
CUSTOM_KIND = "redacted"


@dataclass
class Redactor:
    """Replaces PII in text and counts the replacements per kind."""

    extra_patterns: Sequence[str] = ()
    counts: Counter[str] = field(default_factory=Counter)

    def __post_init__(self) -> None:
        # config.yml's patterns are checked when it is loaded (bot/project/config.py regex_problem).
        custom = (_Rule(CUSTOM_KIND, re.compile(pattern)) for pattern in self.extra_patterns)
        self._rules = (*_BUILT_IN, *custom)

    def redact(self, text: str) -> str:
        """`text` with every PII match replaced by `[kind]`; counts are added to `counts`."""
        for rule in self._rules:
            text = rule.pattern.sub(partial(self._replace, rule), text)
        return text

    def redact_entry(self, entry: KBEntry) -> KBEntry:
        """A copy of `entry` with its questions, answer and context redacted."""
        return replace(
            entry,
            questions=[self.redact(q) for q in entry.questions],
            answer=self.redact(entry.answer),
            context=self.redact(entry.context),
        )

    def _replace(self, rule: _Rule, match: re.Match[str]) -> str:
        text = match.group(0)
        length = rule.pii_length(text)
        if not length:
            return text
        self.counts[rule.kind] += 1
        return f"[{rule.kind}]{text[length:]}"
