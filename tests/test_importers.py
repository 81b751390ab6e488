"""FAQ importers: YAML, CSV, Markdown and Rasa retrieval intents, and their error messages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from crowddesk.knowledge_base.sources.importers import (
    IMPORTERS,
    CsvImporter,
    KBImportError,
    MarkdownImporter,
    RasaRetrievalImporter,
    YamlImporter,
    importer_for,
)
from crowddesk.knowledge_base.types import EntryStatus

FIXTURES = Path(__file__).parent / "fixtures" / "kb"
MALFORMED = FIXTURES / "malformed"


def test_yaml_entries_are_cleaned_and_get_defaults_and_stable_ids() -> None:
    pin, close = YamlImporter().load(FIXTURES / "faq.yml")

    assert pin.id == "reset-pin"
    assert pin.questions == ["How do I reset my PIN?", "I forgot my PIN"]
    assert pin.answer == "Open Settings > Security > Reset PIN and follow the steps."
    assert pin.source_url == "https://community.example.com/t/reset-pin/123"
    assert pin.tags == ["cards", "security"]
    assert (pin.language, pin.status) == ("en", EntryStatus.PUBLISHED)
    assert close.id == "faq:how-do-i-close-my-account"
    assert close.questions == ["How do I close my account?"]
    assert (close.language, close.status) == ("de", EntryStatus.DRAFT)


def test_generated_id_does_not_depend_on_entry_order(tmp_path: Path) -> None:
    faq = tmp_path / "help-center.yaml"
    faq.write_text(
        "entries:\n"
        "  - {question: Where is my parcel?, answer: Track it in the app.}\n"
        "  - {question: 'What is E-1043?', answer: Session expired.}\n"
    )
    first = [e.id for e in YamlImporter().load(faq)]
    faq.write_text(
        "entries:\n"
        "  - {question: 'What is E-1043?', answer: Session expired.}\n"
        "  - {question: Where is my parcel?, answer: Track it in the app.}\n"
    )

    assert first == ["help-center:where-is-my-parcel", "help-center:what-is-e-1043"]
    assert [e.id for e in YamlImporter().load(faq)] == first[::-1]


def test_csv_rows_with_the_same_id_merge_into_variants() -> None:
    e1043, address = CsvImporter().load(FIXTURES / "faq.csv")

    assert e1043.id == "e1043"
    assert e1043.questions == [
        "What does error E-1043 mean?",
        "E-1043 on login",
        "error E-1043",
        "Why do I get E-1043?",
    ]
    assert e1043.answer == "Your session expired.\nSign in again."
    assert e1043.tags == ["login", "errors", "auth"]
    assert e1043.source_url == "https://community.example.com/t/e1043/7"
    assert address.id == "faq:how-do-i-change-my-address"
    assert address.status is EntryStatus.PUBLISHED


def test_markdown_headings_become_questions_with_metadata_taken_out_of_the_answer() -> None:
    activate, declined = MarkdownImporter().load(FIXTURES / "faq.md")

    assert activate.id == "faq:how-do-i-activate-my-card"
    assert activate.questions == ["How do I activate my card?", "card activation"]
    assert activate.answer == "Open the app and tap **Activate card**."
    assert activate.source_url == "https://community.example.com/t/activate/42"
    assert activate.tags == ["cards", "onboarding"]
    assert declined.questions == ["Why was my payment declined?"]
    # Heading-like and Source-like lines inside a code block belong to the answer.
    assert declined.answer == (
        "Common reasons:\n\n```text\n## this is code, not a heading\n"
        "Source: inside code stays\n```\n\nCheck your balance first."
    )
    assert declined.source_url == ""


def test_rasa_project_retrieval_intents_become_entries() -> None:
    entries = {e.id: e for e in RasaRetrievalImporter().load(FIXTURES / "rasa_project")}

    assert sorted(entries) == ["faq/card_arrival", "faq/lost_card"]  # `greet` is no FAQ
    arrival = entries["faq/card_arrival"]
    assert arrival.questions == [
        "Card delivery times",
        "When will my card arrive?",
        "how long does card delivery take",
    ]
    assert arrival.answer == "Cards arrive within 5 working days."
    assert arrival.source_url == "https://community.example.com/t/card-arrival/9"
    assert arrival.intent == "faq/card_arrival"
    lost = entries["faq/lost_card"]  # its response lives in a data file, not the domain
    assert lost.questions == ["I lost my card", "my visa card is gone"]
    assert lost.answer == "Freeze the card in the app, then order a new one."


def test_rasa_load_project_reads_the_given_files() -> None:
    project = FIXTURES / "rasa_project"
    entries = RasaRetrievalImporter().load_project(
        [project / "data" / "nlu.yml"], [project / "domain.yml", project / "data" / "responses.yml"]
    )

    assert [e.id for e in entries] == ["faq/card_arrival", "faq/lost_card"]


@pytest.mark.parametrize(
    ("path", "line", "message"),
    [
        (MALFORMED / "missing_answer.yml", 4, "missing answer"),
        (
            MALFORMED / "unknown_key.yml",
            3,
            ("unknown key 'anwser' (allowed: answer, id, language, question, questions, source_url, status, tags)"),
        ),
        (
            MALFORMED / "bad_syntax.yml",
            4,
            ("invalid YAML: expected ',' or ']', but got ':' (while parsing a flow sequence started on line 3)"),
        ),
        # The bad row spans lines 5-6 (a quoted newline): the error names where it starts.
        (MALFORMED / "missing_answer.csv", 5, "missing answer"),
        (MALFORMED / "missing_column.csv", 1, "header is missing column(s): answer"),
        (MALFORMED / "conflicting_answer.csv", 3, "id 'pin' has a different answer than on line 2"),
        (
            MALFORMED / "empty_body.md",
            5,
            "heading 'How do I close my account?' has no answer below it",
        ),
    ],
    ids=lambda value: value.name if isinstance(value, Path) else None,
)
def test_malformed_files_fail_naming_file_and_line(path: Path, line: int, message: str) -> None:
    with pytest.raises(KBImportError) as raised:
        importer_for(path).load(path)

    assert str(raised.value) == f"{path}:{line}: {message}"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("../../etc/passwd,Hi?,Hi.,", "KB entry id '../../etc/passwd' must start with a letter or digit"),
        ("faq/../secrets,Hi?,Hi.,", "KB entry id 'faq/../secrets' must not have a '.' or '..' segment"),
        ("pin,Hi?,Hi.,javascript:alert(1)", "source URL 'javascript:alert(1)' must be an http:// or https://"),
    ],
)
def test_an_unsafe_id_or_source_url_fails_naming_file_and_line(tmp_path: Path, row: str, message: str) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text(f"id,question,answer,source_url\nok,Fine?,Yes.,https://example.com/t/1\n{row}\n", encoding="utf-8")

    with pytest.raises(KBImportError, match=re.escape(f"{faq}:3: {message}")):
        CsvImporter().load(faq)


def test_ids_the_importers_make_are_accepted(tmp_path: Path) -> None:
    faq = tmp_path / "faq.csv"
    faq.write_text(
        "id,question,answer\n"
        "faq/reverted_card_payment?,Reverted?,Yes.\n"
        "stackexchange:bank.stackexchange.com:4,Why?,Because.\n"
        ",Où est ma carte ?,Elle arrive.\n",
        encoding="utf-8",
    )

    assert [e.id for e in CsvImporter().load(faq)] == [
        "faq/reverted_card_payment?",
        "stackexchange:bank.stackexchange.com:4",
        "faq:où-est-ma-carte",
    ]


def test_retrieval_intent_without_response_fails_at_the_intent() -> None:
    project = MALFORMED / "rasa_missing_response"

    with pytest.raises(KBImportError) as raised:
        RasaRetrievalImporter().load(project)

    error = raised.value
    assert (error.path, error.line) == (project / "data" / "nlu.yml", 6)
    assert "retrieval intent 'faq/lost_card' has no response 'utter_faq/lost_card'" in str(error)


def test_rasa_example_outside_the_list_fails_at_its_line(tmp_path: Path) -> None:
    nlu = tmp_path / "nlu.yml"
    nlu.write_text(
        "nlu:\n"
        "- intent: faq/lost_card\n"
        "  examples: |\n"
        "    - I lost my card\n"
        "    card is gone\n"
        "responses:\n"
        "  utter_faq/lost_card:\n"
        "  - text: Freeze it.\n"
    )

    with pytest.raises(KBImportError, match=r"nlu\.yml:5: example 'card is gone' must start with '- '"):
        RasaRetrievalImporter().load(nlu)


def test_import_error_text_is_file_colon_line_colon_message() -> None:
    assert str(KBImportError(Path("faq.csv"), 12, "missing answer")) == "faq.csv:12: missing answer"
    assert str(KBImportError(Path("faq.csv"), None, "empty file")) == "faq.csv: empty file"


def test_unreadable_file_is_an_import_error(tmp_path: Path) -> None:
    with pytest.raises(KBImportError, match=r"missing\.csv: cannot read file"):
        CsvImporter().load(tmp_path / "missing.csv")


@pytest.mark.parametrize(
    ("relative_path", "expected_format"),
    [
        ("faq.yml", "yaml"),
        ("faq.csv", "csv"),
        ("faq.md", "markdown"),
        ("rasa_project", "rasa"),
        ("rasa_project/data/nlu.yml", "rasa"),  # a .yml with faq/ intents is Rasa NLU data
        ("stackexchange/Posts.xml", "stackexchange"),
        ("discourse/t-42.json", "discourse"),
    ],
)
def test_importer_is_chosen_by_path(relative_path: str, expected_format: str) -> None:
    assert importer_for(FIXTURES / relative_path).format == expected_format


def test_explicit_format_wins_and_unknown_formats_list_the_known_ones() -> None:
    assert importer_for(Path("faq.txt"), "CSV") is IMPORTERS["csv"]
    with pytest.raises(KBImportError, match=r"known formats: csv, discourse, markdown, rasa, stackexchange, yaml"):
        importer_for(Path("faq.txt"))
    with pytest.raises(KBImportError, match=r"unknown format 'xml' \(known formats: csv, discourse, markdown"):
        importer_for(Path("faq.xml"), "xml")
