"""What the channel tests share: a sink standing in for the gateway, and the demo bot served
with a channel in its credentials.yml, talking to that platform's fake API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Generic, TypeVar

import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from tests.demo_bot import API_ACCESS

FakeAPI = TypeVar("FakeAPI")


class RecordingSink:
    """Stands in for the gateway: records what the connector hands to the bot."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []

    async def __call__(self, message: InboundMessage) -> list[OutboundMessage]:
        self.messages.append(message)
        return []


@dataclass(frozen=True)
class ChannelBot(Generic[FakeAPI]):
    """The demo bot's server (`client`) and the fake platform API its channel talks to."""

    api: FakeAPI
    client: TestClient
    bot: Bot


@contextmanager
def serving_demo_bot(
    api: FakeAPI,
    credentials: str,
    secrets: Mapping[str, str],
    *,
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    directory: Path,
) -> Iterator[ChannelBot[FakeAPI]]:
    """The demo bot as `crowddesk run` serves it with `credentials` as its credentials.yml, the
    `${VAR}`s in it set from `secrets`, on its own SQLite database in `directory`."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in secrets.items():
            env.setenv(name, value)
        path = directory / "credentials.yml"
        path.write_text(credentials, encoding="utf-8")
        bot = assemble(
            demo_project,
            model_dir=demo_training.model_dir,
            credentials=path,
            database_url=f"sqlite:///{directory / 'crowddesk.db'}",
            action_endpoint=action_server_url,
        )
        with TestClient(create_app(bot, API_ACCESS)) as client:
            yield ChannelBot(api, client, bot)
