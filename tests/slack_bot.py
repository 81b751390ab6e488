"""The demo bot with the Slack channel and the Slack desk, talking to the fake Slack.

One fake Slack Web API and one in-process server for the session; tests keep apart by using
their own Slack conversation ids (`new_dm`). The server is started through its lifespan, so the
outbox worker and the Slack desk run as they do under `crowddesk run`.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import Bot, assemble
from crowddesk.bot.training.trainer import TrainResult
from crowddesk.connectors.slack import EVENTS_PATH, INTERACTIVE_PATH
from tests.demo_bot import API_ACCESS, API_AUTH
from tests.fakes.slack_api import (
    BOT_TOKEN,
    SIGNING_SECRET,
    FakeSlackAPI,
    block_actions,
    event_callback,
    signed_headers,
)

DESK_CHANNEL = "C0DESK"

CREDENTIALS = """\
rest:
slack:
  slack_token: "${SLACK_BOT_TOKEN}"
  slack_signing_secret: "${SLACK_SIGNING_SECRET}"
  desk_channel: "%(desk)s"
  base_url: "%(base_url)s"
"""


@dataclass(frozen=True)
class SlackBot:
    client: TestClient
    bot: Bot
    api: FakeSlackAPI

    def event(self, event: dict[str, Any], event_id: str | None = None, **headers: str) -> httpx.Response:
        """Deliver an Events API event, signed as Slack signs it."""
        body = event_callback(event, event_id)
        return self.client.post(EVENTS_PATH, content=body, headers={**signed_headers(body), **headers})

    def press(
        self, channel: str, user: str, action_id: str, value: str, *, message_ts: str = "1.0", user_name: str = "ada"
    ) -> httpx.Response:
        """Deliver a button press (interactivity), signed as Slack signs it."""
        body = block_actions(channel, user, action_id, value, message_ts=message_ts, user_name=user_name)
        return self.client.post(
            INTERACTIVE_PATH,
            content=body,
            headers=signed_headers(body, content_type="application/x-www-form-urlencoded"),
        )

    def posts_to(self, channel: str, count: int = 1) -> list[dict[str, Any]]:
        """Wait for `count` accepted chat.postMessage calls into `channel`; all of them so far."""
        return self.api.wait_for("chat.postMessage", count, where=lambda call: call["channel"] == channel)

    def tracker(self, sender_id: str) -> dict[str, Any]:
        response = self.client.get(f"/conversations/{sender_id}/tracker", headers=API_AUTH)
        assert response.status_code == 200
        return dict(response.json())


def new_id(prefix: str) -> str:
    """A Slack-style id no other test uses (D… for a DM, U… for a user)."""
    return f"{prefix}0{uuid.uuid4().hex[:10].upper()}"


@pytest.fixture(scope="session")
def slack_api() -> Iterator[FakeSlackAPI]:
    with FakeSlackAPI() as api:
        yield api


@pytest.fixture(scope="session")
def slack_bot(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    slack_api: FakeSlackAPI,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[SlackBot]:
    folder = tmp_path_factory.mktemp("slack-bot")
    credentials = folder / "credentials.yml"
    credentials.write_text(CREDENTIALS % {"desk": DESK_CHANNEL, "base_url": slack_api.base_url}, encoding="utf-8")
    with pytest.MonkeyPatch.context() as env:
        # As in production: the secrets come from the environment, not the file.
        env.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
        env.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
        bot = assemble(
            demo_project,
            model_dir=demo_training.model_dir,
            database_url=f"sqlite:///{folder / 'crowddesk.db'}",
            action_endpoint=action_server_url,
            credentials=credentials,
        )
    with TestClient(create_app(bot, API_ACCESS)) as client:
        yield SlackBot(client, bot, slack_api)
