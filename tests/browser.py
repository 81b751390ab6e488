"""The demo bot on a real HTTP port, and a headless Chromium driving it through Playwright.

Playwright's own browser download is not used: the system Chromium at /usr/bin/chromium is.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from crowddesk.bot.server.app import create_app
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.training.trainer import TrainResult
from tests.demo_bot import API_ACCESS, demo_bot_on_fresh_database, serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

# Decodes a screenshot (base64 PNG) in the page itself and returns the share of pixels that aren't white.
INKED_SHARE = """async (png) => {
  const image = new Image();
  image.src = `data:image/png;base64,${png}`;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width;
  canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(0, 0, canvas.width, canvas.height).data;
  let inked = 0;
  for (let i = 0; i < pixels.length; i += 4) {
    if (pixels[i] < 200 || pixels[i + 1] < 200 || pixels[i + 2] < 200) inked += 1;
  }
  return inked / (canvas.width * canvas.height);
}"""


@dataclass(frozen=True)
class LiveServer:
    url: str
    bot: Bot


@pytest.fixture(scope="session")
def live_server(
    demo_project: Path,
    demo_training: TrainResult,
    action_server_url: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[LiveServer]:
    """The demo bot served by uvicorn on an ephemeral loopback port, in a background thread."""
    bot = demo_bot_on_fresh_database(demo_project, demo_training, action_server_url, tmp_path_factory)
    # Open event streams and the web chat's sockets would otherwise hold shutdown until the
    # browser lets go.
    with serving(
        create_app(bot, API_ACCESS), log_level="warning", ws="websockets-sansio", timeout_graceful_shutdown=2
    ) as url:
        yield LiveServer(url, bot)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Module scope, not session: Playwright's sync API keeps an event loop running on the main
    # thread while it is open, which would break later tests that call asyncio.run().
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture()
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (own sessionStorage) per test."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    yield context.new_page()
    context.close()
