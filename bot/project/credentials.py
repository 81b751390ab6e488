"""credentials.yml (Rasa 3.x format): the channels the bot listens on and their settings.

Top-level keys are channel names from `crowddesk.connectors.registry` (`version` is ignored);
Rasa's other channels (`rasa`, `socketio`, `facebook`, custom ones) are skipped with a warning.
Each block goes, with `${VAR}`s replaced from the environment, to that connector's
`from_credentials`. Loading a project only checks the names: the variables are read when the
server builds the connectors, so training or validating needs no platform secrets.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from crowddesk.bot.project.endpoints import expand_env
from crowddesk.bot.project.yaml_files import (
    FileWarning,
    ProjectFileError,
    YamlFile,
    key_line,
    read_yaml,
    require_mapping,
    value_line,
)
from crowddesk.connectors.base import ChannelConnector, CredentialsError
from crowddesk.connectors.registry import check_known, connector_class

CREDENTIALS_FILE = "credentials.yml"
IGNORED_KEYS = ("version",)
DEFAULT_CHANNEL = "rest"


@dataclass(frozen=True)
class ChannelCredentials:
    """credentials.yml as parsed: each channel's block (None for `rest:`), variables unexpanded.
    Without a file (or with no channel in it) the bot listens on the REST channel only."""

    file: YamlFile | None = None
    blocks: dict[str, Any] = field(default_factory=lambda: {DEFAULT_CHANNEL: None})
    # Channels the file lists that CrowdDesk doesn't have.
    warnings: tuple[FileWarning, ...] = field(default=(), compare=False)


def load_credentials(path: Path, *, root: Path | None = None, required: bool = False) -> ChannelCredentials:
    """Parse `path`, skipping channels CrowdDesk doesn't have with a warning; a missing file
    means REST only unless `required`."""
    if not path.exists() and not required:
        return ChannelCredentials()
    file = read_yaml(path, root)
    if file.content is None:
        return ChannelCredentials(file)
    top = require_mapping(file, file.content, "credentials", 1)
    blocks: dict[str, Any] = {}
    warnings: list[FileWarning] = []
    for name, block in top.items():
        if name in IGNORED_KEYS:
            continue
        try:
            check_known(str(name))
        except CredentialsError as error:
            warnings.append(file.warning(key_line(top, name), str(name), f"{error}; this channel is ignored"))
            continue
        if block is not None:
            require_mapping(file, block, str(name), key_line(top, name))
        blocks[str(name)] = block
    if not blocks:
        return ChannelCredentials(file, warnings=tuple(warnings))
    return ChannelCredentials(file, blocks, tuple(warnings))


def build_channels(
    credentials: ChannelCredentials, environ: Mapping[str, str] | None = None
) -> dict[str, ChannelConnector]:
    """One connector per configured channel, keyed by channel name."""
    env = os.environ if environ is None else environ
    file = credentials.file
    channels: dict[str, ChannelConnector] = {}
    for name, block in credentials.blocks.items():
        settings = {} if block is None or file is None else _expanded(file, block, name, None, env)
        try:
            channels[name] = connector_class(name).from_credentials(settings)
        except CredentialsError as error:
            if file is None:
                raise
            raise _located(file, name, block, str(error)) from None
    return channels


def _located(file: YamlFile, name: str, block: Any, message: str) -> ProjectFileError:
    """A connector's complaint pointing at its line; connectors may already start the message
    with the key (`telegram.access_token: missing`), which is then not repeated."""
    setting, _, _ = message.partition(":")
    channel, dot, key = setting.partition(".")
    if channel == name and dot and isinstance(block, Mapping) and key in block:
        return file.error(key_line(block, key), None, message)
    if channel == name:
        return file.error(key_line(file.content, name), None, message)
    return file.error(key_line(file.content, name), name, message)


def _expanded(file: YamlFile, node: Any, key: str, line: int | None, env: Mapping[str, str]) -> Any:
    """`node` as plain dicts, lists and scalars, with `${VAR}` replaced in every string."""
    if isinstance(node, str):
        return expand_env(file, line, key, node, env)
    if isinstance(node, Mapping):
        return {
            str(name): _expanded(file, value, f"{key}.{name}", value_line(node, name), env)
            for name, value in node.items()
        }
    if isinstance(node, list):
        return [_expanded(file, item, f"{key}[{index}]", line, env) for index, item in enumerate(node)]
    return node
