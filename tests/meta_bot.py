"""The demo bot served with Messenger and Instagram in its credentials.yml, talking to the fake
Graph API (a fixture for the Messenger, Instagram and comment tests)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crowddesk.bot.training.trainer import TrainResult
from tests.channel_bots import ChannelBot, serving_demo_bot
from tests.fakes.meta_send_api import ACCESS_TOKENS, APP_SECRET, VERIFY_TOKEN, FakeMetaSendAPI

MetaBot = ChannelBot[FakeMetaSendAPI]
"""The demo bot's server (`client`) and the fake Send API both its channels talk to."""

CREDENTIALS = """\
rest:
messenger:
  page_access_token: "${MESSENGER_PAGE_ACCESS_TOKEN}"
  app_secret: "${META_APP_SECRET}"
  verify_token: "%(verify_token)s"
  api_url: "%(api_url)s"
instagram:
  page_access_token: "${INSTAGRAM_PAGE_ACCESS_TOKEN}"
  app_secret: "${META_APP_SECRET}"
  verify_token: "%(verify_token)s"
  api_url: "%(api_url)s"
"""


@pytest.fixture(scope="module")
def meta_bot(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[MetaBot]:
    """The demo bot with Messenger and Instagram in its credentials.yml, talking to the fake API."""
    secrets = {
        "MESSENGER_PAGE_ACCESS_TOKEN": ACCESS_TOKENS["messenger"],
        "INSTAGRAM_PAGE_ACCESS_TOKEN": ACCESS_TOKENS["instagram"],
        "META_APP_SECRET": APP_SECRET,
    }
    with (
        FakeMetaSendAPI() as api,
        serving_demo_bot(
            api,
            CREDENTIALS % {"verify_token": VERIFY_TOKEN, "api_url": api.base_url},
            secrets,
            demo_project=demo_project,
            demo_training=demo_training,
            action_server_url=action_server_url,
            directory=tmp_path_factory.mktemp("meta"),
        ) as served,
    ):
        yield served
