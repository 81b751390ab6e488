"""The `crowddesk` command line, run in-process on scaffolded projects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from crowddesk.bot.cli.main import main
from crowddesk.bot.cli.output import EXIT_NOT_FOUND
from crowddesk.bot.training.model import model_dirs


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    project = tmp_path_factory.mktemp("cli") / "bot"
    assert main(["init", str(project)]) == 0
    assert main(["train", "--project", str(project)]) == 0
    return project


def test_init_scaffolds_a_project_that_validates_and_trains(
    trained_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["data", "validate", "--project", str(trained_project)]) == 0
    assert "valid" in capsys.readouterr().out
    assert len(model_dirs(trained_project / "models")) == 1


def test_train_skips_when_nothing_changed_and_retrains_on_change(
    trained_project: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    assert main(["train", "--project", str(trained_project)]) == 0
    out = capsys.readouterr().out
    assert "unchanged" in out and "expected automation rate" in out and "unseen topics handed off" in out
    assert len(model_dirs(trained_project / "models")) == 1

    nlu = trained_project / "data" / "nlu.yml"
    nlu.write_text(
        nlu.read_text(encoding="utf-8").replace("examples: |\n", "examples: |\n      - hiya friend\n", 1),
        encoding="utf-8",
    )
    assert main(["train", "--project", str(trained_project)]) == 0
    assert "Model saved" in capsys.readouterr().out
    assert len(model_dirs(trained_project / "models")) == 2


def test_init_refuses_a_non_empty_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("mine", encoding="utf-8")
    assert main(["init", str(tmp_path)]) == 1
    assert "error:" in capsys.readouterr().err
    assert (tmp_path / "keep.txt").read_text(encoding="utf-8") == "mine"


def test_validate_reports_file_line_and_key_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project = tmp_path / "bot"
    main(["init", str(project)])
    rules = project / "data" / "rules.yml"
    rules.write_text(
        rules.read_text(encoding="utf-8")
        + "\n  - rule: broken\n    steps:\n      - intent: no_such_intent\n      - action: utter_greet\n",
        encoding="utf-8",
    )
    broken_line = rules.read_text(encoding="utf-8").splitlines().index("      - intent: no_such_intent") + 1
    capsys.readouterr()
    assert main(["data", "validate", "--project", str(project)]) == 1
    out = capsys.readouterr().out
    assert f"rules.yml:{broken_line}:" in out and "no_such_intent" in out
    # Training refuses an invalid project rather than learning from it.
    assert main(["train", "--project", str(project)]) == 1


def test_kb_commands_manage_entries(trained_project: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'kb.db'}"
    common = ["--project", str(trained_project), "--database-url", db]
    csv = tmp_path / "faq.csv"
    csv.write_text(
        "id,question,answer,source_url\n"
        "pin-reset,How do I reset my PIN?,Open Cards > PIN in the app.,https://community.example/t/1\n",
        encoding="utf-8",
    )
    assert main(["kb", "import", str(csv), *common]) == 0
    assert "1 added" in capsys.readouterr().out
    assert main(["kb", "import", str(csv), *common]) == 0
    again = capsys.readouterr().out
    assert "0 added" in again and "1 unchanged" in again
    added = main(["kb", "add", "-q", "Can I change my address?", "-a", "Yes, in Settings.", "--id", "addr", *common])
    assert added == 0
    capsys.readouterr()
    assert main(["kb", "add", "-q", "Hi?", "-a", "Hi.", "--id", "../../etc/passwd", *common]) == 1
    assert "KB entry id '../../etc/passwd' must start with a letter" in capsys.readouterr().err
    assert main(["kb", "add", "-q", "Hi?", "-a", "Hi.", "--source-url", "javascript:alert(1)", *common]) == 1
    assert "must be an http:// or https:// link" in capsys.readouterr().err
    assert main(["kb", "show", "addr", *common]) == 0
    capsys.readouterr()
    assert main(["kb", "list", "--json", *common]) == 0
    ids = {e["id"] for e in json.loads(capsys.readouterr().out)}
    assert {"pin-reset", "addr"} <= ids
    assert main(["kb", "retire", "addr", *common]) == 0
    capsys.readouterr()
    assert main(["kb", "list", "--status", "published", "--json", *common]) == 0
    published = {e["id"] for e in json.loads(capsys.readouterr().out)}
    assert "addr" not in published and "pin-reset" in published
    assert main(["kb", "show", "nope", *common]) == EXIT_NOT_FOUND
    assert main(["kb", "import", str(tmp_path / "missing.csv"), *common]) == 1


def test_shell_chats_with_the_trained_bot_and_buttons_are_numbers(
    trained_project: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    typed = iter(["hello", "1", "", "/stop"])
    monkeypatch.setattr("builtins.input", lambda _prompt: next(typed))
    db = f"sqlite:///{tmp_path / 'shell.db'}"
    assert main(["shell", "--project", str(trained_project), "--database-url", db]) == 0
    out = capsys.readouterr().out
    assert "  1. I forgot my password" in out
    # Typing "1" pressed the first button: the password answer, without going through NLU.
    assert "Forgot password" in out.split("  1. I forgot my password", 1)[1]
    assert "not sent: message is empty" in out
