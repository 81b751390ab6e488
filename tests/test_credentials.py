"""credentials.yml: channel blocks, `${VAR}` secrets, and errors that point at file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from crowddesk.bot.cli import main as cli
from crowddesk.bot.cli.output import EXIT_REFUSED
from crowddesk.bot.project.credentials import ChannelCredentials, build_channels, load_credentials
from crowddesk.bot.project.loading import load_project
from crowddesk.bot.project.validation import validate_project
from crowddesk.bot.project.yaml_files import ProjectFileError
from crowddesk.connectors.callback import CallbackChannel
from crowddesk.connectors.registry import CHANNELS
from crowddesk.connectors.rest import RestChannel
from tests.demo_bot import copy_demo_project

SECRET = "s3cr3t-token-value"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "credentials.yml"
    path.write_text(text, encoding="utf-8")
    return path


def channels_from(path: Path, **environ: str) -> dict[str, object]:
    return build_channels(load_credentials(path, root=path.parent), environ)


def test_rasa_credentials_build_one_connector_per_channel(tmp_path: Path) -> None:
    path = write(tmp_path, 'version: "3.1"\nrest:\ncallback:\n  url: "http://127.0.0.1:5034/${HOOK_PATH}"\n')
    channels = channels_from(path, HOOK_PATH="bot")
    assert list(channels) == ["rest", "callback"]
    assert isinstance(channels["rest"], RestChannel)
    callback = channels["callback"]
    assert isinstance(callback, CallbackChannel) and callback.url == "http://127.0.0.1:5034/bot"


def test_without_a_file_or_channels_the_rest_channel_listens(tmp_path: Path) -> None:
    assert list(channels_from(tmp_path / "credentials.yml")) == ["rest"]
    assert list(channels_from(write(tmp_path, "# nothing configured yet\n"))) == ["rest"]
    assert load_credentials(tmp_path / "missing.yml") == ChannelCredentials()
    with pytest.raises(ProjectFileError, match="cannot read file"):
        load_credentials(tmp_path / "missing.yml", required=True)


def test_missing_environment_variable_names_file_line_key_and_variable(tmp_path: Path) -> None:
    path = write(tmp_path, 'rest:\ncallback:\n  url: "https://${HOOK_HOST}/replies"\n')
    with pytest.raises(ProjectFileError) as caught:
        channels_from(path)
    assert str(caught.value) == ("credentials.yml:3: callback.url: environment variable 'HOOK_HOST' is not set")


def test_unknown_channel_is_ignored_with_a_warning_listing_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "rest:\nsocketio:\n  user_message_evt: user_uttered\n")
    credentials = load_credentials(path, root=tmp_path)
    assert list(credentials.blocks) == ["rest"]
    [warning] = credentials.warnings
    message = str(warning)
    assert message.startswith("credentials.yml:2: socketio: unknown channel 'socketio'; known channels: ")
    assert message.endswith("; this channel is ignored")
    assert all(name in message for name in CHANNELS)


def test_a_connector_refusing_its_settings_points_at_the_key_without_the_secret(tmp_path: Path) -> None:
    path = write(tmp_path, 'callback:\n  url: "ftp://${HOOK_TOKEN}@example.com"\n')
    with pytest.raises(ProjectFileError) as caught:
        channels_from(path, HOOK_TOKEN=SECRET)
    assert str(caught.value).startswith("credentials.yml:2: callback.url: ")
    assert SECRET not in str(caught.value)

    unknown = write(tmp_path, "callback:\n  url: http://127.0.0.1/x\n  token: abc\n")
    with pytest.raises(ProjectFileError, match=r"credentials.yml:3: callback.token: unknown key"):
        channels_from(unknown)
    with pytest.raises(
        ProjectFileError, match=r"credentials\.yml:2: rest\.port: unknown key; expected one of: allowed_origins"
    ):
        channels_from(write(tmp_path, "rest:\n  port: 5005\n"))


def test_a_channel_block_must_be_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(ProjectFileError, match=r"credentials.yml:1: callback: expected a mapping"):
        load_credentials(write(tmp_path, "callback: http://127.0.0.1/x\n"), root=tmp_path)


def test_project_loading_checks_channel_names_but_needs_no_secrets(tmp_path: Path) -> None:
    project_dir = copy_demo_project(tmp_path)
    (project_dir / "credentials.yml").write_text('rest:\ncallback:\n  url: "${UNSET_CALLBACK_URL}"\n', encoding="utf-8")
    assert list(load_project(project_dir, environ={}).credentials.blocks) == ["rest", "callback"]
    (project_dir / "credentials.yml").write_text("rest:\nfacebook:\n  verify: x\n", encoding="utf-8")
    project = load_project(project_dir, environ={})
    assert list(project.credentials.blocks) == ["rest"]
    assert [warning.key for warning in project.warnings()] == ["facebook"]


def test_run_with_a_credentials_file_reports_its_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    project_dir = copy_demo_project(tmp_path)
    (tmp_path / "deploy").mkdir()
    bad = write(tmp_path / "deploy", 'callback:\n  url: "${UNSET_CALLBACK_URL}"\n')
    assert cli.main(["run", "--project", str(project_dir), "--credentials", str(bad)]) == EXIT_REFUSED
    error = capsys.readouterr().err
    assert "callback.url: environment variable 'UNSET_CALLBACK_URL' is not set" in error
    assert str(bad) in error


def test_data_validate_checks_every_channel_as_run_builds_it(tmp_path: Path) -> None:
    project_dir = copy_demo_project(tmp_path)
    (project_dir / "credentials.yml").write_text(
        'rest:\n  port: 5005\ncallback:\n  url: "${UNSET_CALLBACK_URL}"\n', encoding="utf-8"
    )
    found = [str(p) for p in validate_project(project_dir) if p.path == "credentials.yml"]
    assert found == [
        "credentials.yml:2: error: rest.port: unknown key; expected one of: allowed_origins",
        "credentials.yml:4: warning: callback.url: environment variable 'UNSET_CALLBACK_URL' is not set",
    ]
