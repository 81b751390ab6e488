"""Customer text as the gateway passes it on: valid, composed Unicode without controls, bidi
overrides or combining-mark floods; the original kept, escaped, for the agent (the gateway's
use of it: tests/test_gateway.py)."""

from __future__ import annotations

import pytest

from crowddesk.connectors.text import MAX_MARKS_PER_CHARACTER, escaped_original, normalise_text, repaired

FAMILY = "\U0001f468\u200d\U0001f469\u200d\U0001f467"  # one emoji: three people joined by ZWJs
ZALGO = "card" + "\u0301\u0316\u0344" * 1400  # 4,200 combining marks on one letter


@pytest.mark.parametrize(
    ("sent", "normalised"),
    [
        ("my card \ud800 is blocked", "my card \ufffd is blocked"),  # lone surrogate
        ("\ud83d\ude00 thanks", "\U0001f600 thanks"),  # a surrogate pair is its character
        ("cafe\u0301", "caf\u00e9"),  # NFC
        ("pay\x00ment\x1b[31m\x85 failed\r\n", "payment[31m failed\n"),  # C0/C1 controls
        ("line one\n\tline two", "line one\n\tline two"),  # newline and tab kept
        ("refund \u202eDNUFER\u202c now \u2066x\u2069 \u200fy\u200e", "refund DNUFER now x y"),  # bidi
        (f"{FAMILY} \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd", None),  # kept as is
        (
            (
                "Ti\u1ebfng Vi\u1ec7t, \u0928\u092e\u0938\u094d\u0924\u0947, "
                "\u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645"
            ),
            None,
        ),
    ],
)
def test_normalise_text(sent: str, normalised: str | None) -> None:
    assert normalise_text(sent) == (sent if normalised is None else normalised)


def test_combining_mark_floods_are_capped_per_character() -> None:
    text = "a" + "\u0316" * 10 + "b" + "\u0316" * 2

    assert normalise_text(text) == "a" + "\u0316" * MAX_MARKS_PER_CHARACTER + "b\u0316\u0316"
    capped = normalise_text(ZALGO)  # composed: its marks are in canonical order
    assert capped.startswith("card") and len(capped) == len("card") + MAX_MARKS_PER_CHARACTER


def test_the_original_is_kept_escaped_only_when_the_repair_changed_something() -> None:
    assert repaired("where is my card?") == ("where is my card?", None)
    assert repaired("cafe\u0301") == ("caf\u00e9", None)  # composing changes nothing visible
    text, original = repaired("hi \ud800 \u202eevil")
    assert text == "hi \ufffd evil"
    assert original == "hi \\ud800 \\u202eevil"
    original.encode("utf-8")  # storable anywhere: no lone surrogate left
    assert escaped_original(ZALGO) == "card\u0301\u0316\u0344\u0301[+4196 combining marks]"
    assert escaped_original("a" + "\u0316" * 6 + "b") == "a" + "\u0316" * 4 + "[+2 combining marks]b"
