"""Numbers, amounts of money, dates and times, e-mail addresses: entities every project may
declare without examples, in the shape Rasa's DucklingEntityExtractor gives them."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from dateparser.date import DateData, DateDataParser
from dateparser.search import search_dates
from price_parser import Price
from text_to_num import text2num

from crowddesk.nlu.entities import without_overlaps
from crowddesk.nlu.types import Entity

# Rasa's (Duckling's) dimension names this extractor produces.
NUMBER = "number"
AMOUNT = "amount-of-money"
TIME = "time"
EMAIL = "email"
DIMENSIONS = (NUMBER, AMOUNT, TIME, EMAIL)

# "1,200.50", "1.200,50", "12,50", "20"; not part of a word ("20th", "5pm", "A4").
_NUMBER = r"(?<![\w.,])(?:\d{1,3}(?:[,.]\d{3})+|\d+)(?:[.,]\d+)?(?!\w)"
# Currency symbols, ISO codes and English names, lower-cased, with their ISO 4217 code.
CURRENCIES = {
    "$": "USD",
    "usd": "USD",
    "dollar": "USD",
    "dollars": "USD",
    "bucks": "USD",
    "€": "EUR",
    "eur": "EUR",
    "euro": "EUR",
    "euros": "EUR",
    "£": "GBP",
    "gbp": "GBP",
    "pound": "GBP",
    "pounds": "GBP",
    "¥": "JPY",
    "jpy": "JPY",
    "yen": "JPY",
    "₹": "INR",
    "inr": "INR",
    "rupees": "INR",
    **{code.lower(): code for code in ("AUD", "CAD", "CHF", "CNY", "DKK", "NOK", "PLN", "SEK")},
}
_CURRENCY = "|".join(re.escape(name) for name in sorted(CURRENCIES, key=len, reverse=True))
_AMOUNT = re.compile(
    rf"(?<!\w)(?P<before>{_CURRENCY})\s?(?P<number>{_NUMBER})"
    rf"|(?P<number_first>{_NUMBER})\s?(?P<after>{_CURRENCY})(?!\w)",
    re.IGNORECASE,
)
_NUMBER_ONLY = re.compile(_NUMBER)
_CURRENCY_AFTER = re.compile(rf"\s?(?P<currency>{_CURRENCY})(?!\w)", re.IGNORECASE)
# English number words ("twenty-two", "one hundred and five"), read by text2num as Duckling does.
_NUMBER_WORD = (
    r"(?:zero|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen"
    r"|sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety"
    r"|hundred|thousand|million|billion)"
)
_NUMBER_WORDS_EN = re.compile(
    rf"(?<![\w-]){_NUMBER_WORD}(?:(?:[\s-]+|\s+and\s+){_NUMBER_WORD})*(?![\w-])", re.IGNORECASE
)
_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+")


def _midnight(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


# dateparser's periods as Duckling's grains, and how a value of that grain is rounded down.
_GRAINS: dict[str, tuple[str, Callable[[datetime], datetime]]] = {
    "time": ("minute", lambda moment: moment.replace(second=0, microsecond=0)),
    "part_of_day": ("hour", lambda moment: moment.replace(minute=0, second=0, microsecond=0)),
    "day": ("day", _midnight),
    "week": ("week", lambda moment: _midnight(moment) - timedelta(days=moment.weekday())),
    "month": ("month", lambda moment: _midnight(moment).replace(day=1)),
    "year": ("year", lambda moment: _midnight(moment).replace(month=1, day=1)),
}
# English words dateparser reads as dates that in a chat message rarely are ("may I", "the sun").
_NOT_DATES_EN = frozenset({"may", "march", "mar", "sun", "sat", "second", "mon", "wed"})
_ARTICLES_EN = frozenset({"a", "an", "the"})


def local_now() -> datetime:
    return datetime.now(UTC).astimezone()


class SystemEntityExtractor:
    """Finds the `dimensions` asked for; overlapping finds keep the longest ("20 dollars" is an
    amount, not also a number). Dates and times are read relative to `clock()`, a timezone-aware
    now, by dateparser; numbers by price-parser, which tells "1,200.50" from "1.200,50"."""

    name = "SystemEntityExtractor"

    def __init__(self, dimensions: Sequence[str], language: str, clock: Callable[[], datetime] = local_now) -> None:
        unknown = sorted(set(dimensions) - set(DIMENSIONS))
        if unknown:
            raise ValueError(f"no system entity {', '.join(unknown)}; available: {', '.join(DIMENSIONS)}")
        self.dimensions = tuple(dimension for dimension in DIMENSIONS if dimension in dimensions)
        self.language = language
        self._clock = clock
        if TIME in self.dimensions:
            try:
                DateDataParser(languages=[language])
            except ValueError as err:
                raise ValueError(f"dates and times cannot be read in language {language!r} ({err})") from err

    @classmethod
    def for_entities(cls, entities: Iterable[str], language: str) -> SystemEntityExtractor | None:
        """The extractor of the system entities among a domain's `entities`; None if it has none."""
        dimensions = [dimension for dimension in DIMENSIONS if dimension in set(entities)]
        return cls(dimensions, language) if dimensions else None

    def extract(self, text: str) -> list[Entity]:
        found: list[Entity] = []
        if EMAIL in self.dimensions:
            found.extend(
                self._entity(EMAIL, m.group(), m.start(), m.group(), {"value": m.group()})
                for m in _EMAIL.finditer(text)
            )
        if AMOUNT in self.dimensions:
            found.extend(self._amounts(text))
        if NUMBER in self.dimensions:
            for start, surface, value in self._numbers(text):
                found.append(self._entity(NUMBER, value, start, surface, {"value": value, "type": "value"}))
        if TIME in self.dimensions:
            found.extend(self._times(text))
        return without_overlaps(found, lambda e: (e.start - e.end, e.start))

    def _entity(self, dimension: str, value: Any, start: int, surface: str, info: dict[str, Any]) -> Entity:
        return Entity(dimension, value, start, start + len(surface), self.name, surface, additional_info=info)

    def _numbers(self, text: str) -> list[tuple[int, str, int | float]]:
        """(start, surface, value) of every number: in digits, and in English words."""
        found = [(m.start(), m.group(), _number(m.group())) for m in _NUMBER_ONLY.finditer(text)]
        if self.language.startswith("en"):
            for m in _NUMBER_WORDS_EN.finditer(text):
                try:
                    found.append((m.start(), m.group(), text2num(m.group().lower(), "en")))
                except ValueError:  # words in an order no number is written in ("two one")
                    continue
        return found

    def _amounts(self, text: str) -> list[Entity]:
        amounts = []
        for m in _AMOUNT.finditer(text):
            value = _number(m["number"] or m["number_first"])
            unit = CURRENCIES[(m["before"] or m["after"]).lower()]
            info = {"value": value, "type": "value", "unit": unit}
            amounts.append(self._entity(AMOUNT, value, m.start(), m.group(), info))
        if self.language.startswith("en"):  # "twenty dollars"
            for start, surface, value in self._numbers(text):
                after = _CURRENCY_AFTER.match(text, start + len(surface))
                if after is not None and not surface[0].isdigit():
                    info = {"value": value, "type": "value", "unit": CURRENCIES[after["currency"].lower()]}
                    amounts.append(self._entity(AMOUNT, value, start, surface + after.group(), info))
        return amounts

    def _times(self, text: str) -> list[Entity]:
        now = self._clock()
        offset = now.strftime("%z")
        settings = {
            "RELATIVE_BASE": now,
            "TIMEZONE": offset,
            "TO_TIMEZONE": offset,
            "RETURN_AS_TIMEZONE_AWARE": True,
            "PREFER_DATES_FROM": "future",
        }
        parser = DateDataParser(languages=[self.language], settings={**settings, "RETURN_TIME_AS_PERIOD": True})
        times = []
        position = 0
        for phrase, _moment in search_dates(text, languages=[self.language], settings=settings) or []:
            start = text.find(phrase, position)
            if start < 0:
                continue
            position = start + len(phrase)
            if not self._plausible_date(phrase):
                continue
            parsed = parser.get_date_data(phrase)
            if parsed.date_obj is None:
                continue
            trimmed, parsed = _without_leading_numbers(parser, phrase, parsed)
            start += len(phrase) - len(trimmed)
            phrase = trimmed
            grain, round_down = _GRAINS.get(parsed.period or "time", _GRAINS["time"])
            value = round_down(parsed.date_obj).isoformat(timespec="milliseconds")
            times.append(self._entity(TIME, value, start, phrase, {"value": value, "grain": grain, "type": "value"}))
        return times

    def _plausible_date(self, phrase: str) -> bool:
        """False for the English words dateparser mistakes for dates (other languages: always true)."""
        if not self.language.startswith("en"):
            return True
        words = [word for word in phrase.lower().split() if word not in _ARTICLES_EN]
        # "I am 25 years old": "am" before a number is the verb, never the time of day.
        return bool(words) and words[0] != "am" and not set(words) <= _NOT_DATES_EN


def _number(text: str) -> int | float:
    """An int when whole, as Duckling's values of whole numbers compare equal to ints."""
    amount = Price.fromstring(text).amount
    if amount is None:
        raise ValueError(f"not a number: {text!r}")
    return int(amount) if amount == amount.to_integral_value() else float(amount)


def _without_leading_numbers(parser: DateDataParser, phrase: str, parsed: DateData) -> tuple[str, DateData]:
    """dateparser takes a number before a date along ("order 12345 next week"): drop it while
    the date read stays the same."""
    while True:
        first, _, rest = phrase.partition(" ")
        rest = rest.lstrip()
        if not (first.isdigit() and rest):
            return phrase, parsed
        shorter = parser.get_date_data(rest)
        if shorter.date_obj != parsed.date_obj:
            return phrase, parsed
        phrase, parsed = rest, shorter
