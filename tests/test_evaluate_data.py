"""Reading evaluation files: every problem names the file and the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.evaluation.data import load_conversation_tests, load_kb_queries, load_labelled_messages
from crowddesk.bot.project.story_steps import ActionStep, StepEntity, UserStep
from crowddesk.bot.project.yaml_files import ProjectFileError


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_csv_accepts_intent_or_banking77_category_and_quoted_multiline_text(tmp_path: Path) -> None:
    messages = load_labelled_messages(
        write(
            tmp_path / "test.csv", 'text,category\n"my card,\nit never came",card_arrival\n\nhow do I top up?,top_up\n'
        )
    )
    assert [(m.text, m.intent) for m in messages] == [
        ("my card,\nit never came", "card_arrival"),
        ("how do I top up?", "top_up"),
    ]
    # Lines count from the file's first line; a quoted field may span lines.
    assert [m.source.rsplit(":", 1)[1] for m in messages] == ["2", "5"]


def test_nlu_yml_examples_keep_their_intents_and_lines(tmp_path: Path) -> None:
    messages = load_labelled_messages(
        write(
            tmp_path / "nlu.yml",
            (
                'version: "3.1"\nnlu:\n- intent: faq/card_arrival\n  examples: |\n    - where is my card\n'
                "    - my card [visa](card_type) has not come\n"
            ),
        )
    )
    assert [(m.text, m.intent) for m in messages] == [
        ("where is my card", "faq/card_arrival"),
        ("my card visa has not come", "faq/card_arrival"),
    ]
    assert messages[1].source.endswith("nlu.yml:6")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "message,label\nhi,greet\n",
            ":1: expected columns text and intent (or category); the header has: message, label",
        ),
        ("text,intent\nhi,greet\nhello\n", ":3: expected 2 fields like the header, got 1"),
        ("text,intent\nhi,greet\nhello, \n", ":3: intent: empty value"),
    ],
)
def test_bad_csv_rows_are_reported_with_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = write(tmp_path / "bad.csv", content)
    with pytest.raises(ProjectFileError) as error:
        load_labelled_messages(path)
    assert str(error.value) == f"{path}{message}"


def test_bad_nlu_yml_and_unknown_formats_are_reported(tmp_path: Path) -> None:
    path = write(tmp_path / "nlu.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n    no dash here\n")
    with pytest.raises(ProjectFileError, match=r"nlu\.yml:5: .*expected a line like `- example`"):
        load_labelled_messages(path)
    with pytest.raises(ProjectFileError, match=r"unsupported file type '\.json'"):
        load_labelled_messages(write(tmp_path / "data.json", "[]"))


def test_cli_prints_the_location_of_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    test_file = write(tmp_path / "test.csv", "text,intent\nhi,greet\n,greet\n")
    code = main(
        [
            "evaluate",
            "nlu",
            "--project",
            str(tmp_path),
            "--train",
            str(test_file),
            "--test",
            str(test_file),
            "--out",
            str(tmp_path / "out"),
        ]
    )
    assert code == 1
    assert f"error: {test_file}:3: text: empty value" in capsys.readouterr().err


def test_kb_queries_from_csv_or_yaml(tmp_path: Path) -> None:
    from_csv = load_kb_queries(write(tmp_path / "q.csv", "query,entry_id\nwhere is my card?,faq/card_arrival\n"))
    from_yaml = load_kb_queries(write(tmp_path / "q.yml", "- query: where is my card?\n  entry_id: faq/card_arrival\n"))
    assert [(q.query, q.entry_id) for q in from_csv] == [(q.query, q.entry_id) for q in from_yaml]
    with pytest.raises(ProjectFileError, match=r"q2\.yml:2: \[0\]\.entry: unknown key"):
        load_kb_queries(write(tmp_path / "q2.yml", "- query: where is my card?\n  entry: faq/card_arrival\n"))


def test_test_stories_from_a_file_or_every_story_file_of_a_folder(tmp_path: Path) -> None:
    folder = tmp_path / "tests"
    folder.mkdir()
    write(
        folder / "test_greet.yaml",
        'version: "3.1"\nstories:\n- story: greet\n  steps:\n  - or:\n    - intent: greet\n'
        "    - user: hello\n  - action: utter_greet\n",
    )
    write(folder / "test_bye.yml", "stories:\n- story: bye\n  steps:\n  - intent: goodbye\n    entities:\n    - name\n")
    write(folder / "nlu_cases.yml", "nlu:\n- intent: greet\n  examples: |\n    - hi\n")
    tests = load_conversation_tests(folder, root=tmp_path)
    assert tests.files == [folder / "test_bye.yml", folder / "test_greet.yaml"]
    # `or:` gives one story per alternative.
    assert [story.name for story in tests.stories] == ["bye", "greet", "greet"]
    assert tests.stories[0].steps == (UserStep("goodbye", None, (StepEntity("name"),)),)
    assert [story.steps[0] for story in tests.stories[1:]] == [UserStep("greet"), UserStep(None, "hello")]
    assert tests.stories[1].steps[1] == ActionStep("utter_greet")
    assert tests.stories[1].steps[1].source == "tests/test_greet.yaml:8"
    assert load_conversation_tests(folder / "test_bye.yml", root=tmp_path).files == [folder / "test_bye.yml"]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("test_stories.yml", "stories: []\n", "test_stories.yml: stories: expected at least one story"),
        ("test_stories.json", "{}", "test_stories.json: unsupported file type '.json'"),
        (
            "test_stories.yml",
            "stories:\n- story: s\n  steps:\n  - intent: greet\n    action: utter_greet\n",
            "test_stories.yml:4: stories[0].steps[0]: unsupported step with keys intent, action",
        ),
    ],
)
def test_bad_test_stories_name_file_line_and_key(tmp_path: Path, name: str, content: str, message: str) -> None:
    with pytest.raises(ProjectFileError) as error:
        load_conversation_tests(write(tmp_path / name, content), root=tmp_path)
    assert str(error.value).startswith(message)


def test_a_folder_without_story_files_is_reported(tmp_path: Path) -> None:
    write(tmp_path / "nlu.yml", "nlu: []\n")
    with pytest.raises(ProjectFileError, match="no test story files"):
        load_conversation_tests(tmp_path, root=tmp_path)
