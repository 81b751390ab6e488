"""PII redaction of imported community text, and its configuration."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowddesk.bot.project.config import load_config
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.knowledge_base.redaction import Redactor, iban_valid, luhn_valid


def test_emails_and_phone_numbers_become_placeholders() -> None:
    redactor = Redactor()

    text = redactor.redact("Mail ana.lopez+bank@example.co.uk or call +44 20 7946 0958, (555) 123-4567 or 030 1234567.")

    assert text == "Mail [email] or call [phone], [phone] or [phone]."
    assert redactor.counts == {"email": 1, "phone": 3}


def test_only_luhn_valid_card_numbers_are_redacted_so_order_numbers_survive() -> None:
    assert luhn_valid("4111111111111111") and not luhn_valid("4111111111111112")
    redactor = Redactor()

    text = redactor.redact("Card 4111 1111 1111 1111 paid order 4111 1111 1111 1112 and 5500-0000-0000-0004.")

    assert text == "Card [card] paid order 4111 1111 1111 1112 and [card]."
    assert redactor.counts == {"card": 2}


def test_only_mod97_valid_ibans_are_redacted() -> None:
    assert iban_valid("GB82WEST12345698765432") and not iban_valid("GB82WEST12345698765433")
    redactor = Redactor()

    text = redactor.redact("To DE89 3704 0044 0532 0130 00 or GB82WEST12345698765432, not GB82WEST12345698765433.")

    assert text == "To [iban] or [iban], not GB82WEST12345698765433."
    assert redactor.counts == {"iban": 2}


def test_dates_addresses_versions_and_error_codes_are_left_alone() -> None:
    text = "On 2024-07-04 the host 192.168.100.200 ran v1.2.3 and showed E-1043 for order CD-562173 (ref 12345678)."
    redactor = Redactor()

    assert redactor.redact(text) == text
    assert not redactor.counts


def test_configured_patterns_are_redacted_and_counted_apart() -> None:
    redactor = Redactor(extra_patterns=[r"\bACC-\d{6}\b"])

    assert redactor.redact("Account ACC-123456, mail bo@example.org") == "Account [redacted], mail [email]"
    assert redactor.counts == {"redacted": 1, "email": 1}


def test_an_invalid_pattern_in_config_names_the_file_line_and_key(tmp_path: Path) -> None:
    config = tmp_path / "config.yml"
    config.write_text(
        "pipeline:\n"
        "  - name: SentenceEncoder\n"
        "  - name: CalibratedIntentClassifier\n"
        "  - name: KnowledgeBaseRetriever\n"
        "    ingestion:\n"
        "      redact_patterns: ['ACC-[0-9']\n",
        encoding="utf-8",
    )

    with pytest.raises(ProjectFileError) as error:
        load_config(config)

    assert "config.yml:6" in str(error.value)
    assert "pipeline[2].ingestion.redact_patterns" in str(error.value)
    assert "not a valid regular expression" in str(error.value)
