"""Lookup-table entries found despite a small typo: "pikachuu" finds the entry "pikachu"."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz, process
from rapidfuzz.distance import Levenshtein

MIN_ENTRY_CHARS = 5  # shorter entries match exactly only: one typo turns them into other words
MIN_RATIO = 90.0  # rapidfuzz's normalised similarity, 0..100
# Entries up to this long also match at one edit: a substituted letter in an 8-character word
# scores 87.5, under MIN_RATIO.
ONE_EDIT_MAX_CHARS = 8


@dataclass(frozen=True)
class FuzzyMatch:
    """A window of tokens `start:end` (token indices) close to one lookup entry."""

    entity: str
    entry: str  # as written in the lookup table
    start: int
    end: int


@dataclass(frozen=True)
class _Entries:
    """The lookup entries of one token count, keyed by their lower-cased tokens joined by spaces."""

    owners: dict[str, tuple[str, str]]  # key -> (entity, entry)
    keys: list[str]
    short_keys: list[str]  # the ones that match at one edit as well


class FuzzyLookup:
    """Compares token windows with the lookup entries of the same token count, only where the
    window is not an entry already; rapidfuzz stops comparing an entry once it cannot reach the
    cut-off, so a message costs a few C loops per window even for tables of thousands of entries."""

    def __init__(self, lookups: Mapping[str, Sequence[str]], tokenize: Callable[[str], Sequence[str]]) -> None:
        owners: dict[int, dict[str, tuple[str, str]]] = {}
        for entity, entries in lookups.items():
            for entry in entries:
                tokens = [token.lower() for token in tokenize(entry)]
                key = " ".join(tokens)
                if len(key) >= MIN_ENTRY_CHARS:
                    owners.setdefault(len(tokens), {}).setdefault(key, (entity, entry))
        self._by_count = {
            count: _Entries(found, list(found), [key for key in found if len(key) <= ONE_EDIT_MAX_CHARS])
            for count, found in owners.items()
        }

    def find(self, tokens: Sequence[str]) -> list[FuzzyMatch]:
        """Every window of `tokens` within a typo of an entry (windows may overlap)."""
        lowered = [token.lower() for token in tokens]
        matches = []
        for count, entries in self._by_count.items():
            for start in range(len(lowered) - count + 1):
                window = " ".join(lowered[start : start + count])
                if window in entries.owners or len(window) < MIN_ENTRY_CHARS - 1:
                    continue
                key = _closest(window, entries)
                if key is not None:
                    entity, entry = entries.owners[key]
                    matches.append(FuzzyMatch(entity, entry, start, start + count))
        return matches


def _closest(window: str, entries: _Entries) -> str | None:
    found = process.extractOne(window, entries.keys, scorer=fuzz.ratio, score_cutoff=MIN_RATIO)
    if found is None and len(window) <= ONE_EDIT_MAX_CHARS + 1:
        # rapidfuzz's stubs match no overload for its own overloaded scorer; the call is as documented.
        found = process.extractOne(  # type: ignore[call-overload]
            window, entries.short_keys, scorer=Levenshtein.distance, score_cutoff=1
        )
    return None if found is None else found[0]
