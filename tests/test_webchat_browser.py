"""The web chat widget in a real headless Chromium, embedded in a page of another origin that
holds nothing but the script tag, talking to the demo bot served by `crowddesk run`'s app."""

from __future__ import annotations

import base64
import re
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser import INKED_SHARE, LiveServer
from tests.demo_bot import API_AUTH

TITLE = "Northwind help"
CARD_QUESTION = "It's been a week and my new card still hasn't arrived"
SOURCE = re.compile(r"^https://community\.northwind-bank\.example/t/")

# Records whether the typing indicator was ever shown, however briefly.
WATCH_TYPING = """() => {
  const indicator = document.querySelector("[data-crowddesk-webchat]").shadowRoot.querySelector(".typing");
  window.typingShown = false;
  new MutationObserver(() => { window.typingShown ||= !indicator.hidden; })
    .observe(indicator, { attributes: true, attributeFilter: ["hidden"] });
}"""


@pytest.fixture(scope="module")
def shop(live_server: LiveServer) -> Iterator[str]:
    """A third-party page holding only the script tag, on another origin than the bot: a
    server of its own, addressed as localhost (which the demo's credentials allow)."""
    page = (
        f'<!doctype html><html lang="en"><head><title>Shop</title></head><body>'
        f'<script src="{live_server.url}/webchat/widget.js" data-title="{TITLE}"></script>'
        f"</body></html>"
    ).encode()

    class ShopPage(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass  # keep test output quiet

    server = ThreadingHTTPServer(("127.0.0.1", 0), ShopPage)
    thread = threading.Thread(target=server.serve_forever, name="shop-page", daemon=True)
    thread.start()
    yield f"http://localhost:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join()


def launcher(page: Page) -> Locator:
    return page.get_by_role("button", name=f"Open chat: {TITLE}")


def conversation(page: Page) -> Locator:
    return page.get_by_role("log", name="Conversation")


def open_chat(page: Page, shop: str) -> Locator:
    page.goto(shop)
    launcher(page).click()
    expect(page.get_by_role("dialog", name=TITLE)).to_be_visible()
    return conversation(page)


def say(page: Page, text: str) -> None:
    page.get_by_label("Message").fill(text)
    page.get_by_label("Message").press("Enter")


def session_of(page: Page) -> str:
    return str(page.evaluate("localStorage.getItem('crowddesk-webchat-session')"))


def test_the_launcher_renders_and_works_from_the_keyboard(page: Page, shop: str) -> None:
    page.goto(shop)
    button = launcher(page)
    expect(button).to_be_visible()
    box = button.bounding_box()
    assert box is not None and box["x"] > 1200 and box["y"] > 750  # bottom right of 1400×900
    png = base64.b64encode(page.screenshot(clip=box)).decode()
    assert page.evaluate(INKED_SHARE, png) > 0.6  # a filled circle, not a blank square

    button.focus()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(page.get_by_label("Message")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog", name=TITLE)).to_be_hidden()
    expect(button).to_be_focused()
    expect(button).to_have_attribute("aria-expanded", "false")


def test_a_question_is_answered_with_a_link_to_its_source(page: Page, shop: str) -> None:
    log = open_chat(page, shop)
    page.evaluate(WATCH_TYPING)
    say(page, CARD_QUESTION)

    answer = log.get_by_role("listitem").nth(1)
    expect(answer).to_contain_text("Bot:")
    expect(answer.get_by_role("link", name="Source")).to_have_attribute("href", SOURCE)
    expect(answer).not_to_contain_text("Source: https://")  # a link, not a pasted URL
    assert page.evaluate("window.typingShown")
    expect(page.get_by_text("Typing…")).to_be_hidden()


def test_a_button_sends_its_payload_shows_its_title_and_a_reload_keeps_the_conversation(
    page: Page, shop: str, live_server: LiveServer
) -> None:
    log = open_chat(page, shop)
    say(page, "hello there")
    choices = log.get_by_role("group", name="Suggested replies")
    choices.get_by_role("button", name="Card not arrived").click()

    messages = log.get_by_role("listitem")
    expect(messages).to_have_count(4)
    expect(messages.nth(2)).to_have_text("You: Card not arrived")
    expect(messages.nth(3).get_by_role("link", name="Source")).to_have_attribute("href", SOURCE)
    expect(choices.get_by_role("button", name="Track my card order")).to_be_disabled()

    page.reload()
    # The panel stays open across the reload and the history comes back from the server.
    expect(messages).to_have_count(4)
    expect(messages.nth(0)).to_have_text("You: hello there")
    expect(messages.nth(2)).to_have_text("You: Card not arrived")
    expect(messages.nth(3).get_by_role("link", name="Source")).to_have_attribute("href", SOURCE)
    expect(log.get_by_role("button", name="Card not arrived")).to_be_disabled()
    events = httpx.get(
        f"{live_server.url}/conversations/webchat:{session_of(page)}/tracker", headers=API_AUTH, timeout=30
    ).json()["events"]
    assert [e["text"] for e in events if e["event"] == "user"] == ["hello there", "/faq/card_arrival"]


def test_an_agents_reply_after_a_handoff_appears_without_a_reload(
    page: Page, shop: str, live_server: LiveServer
) -> None:
    log = open_chat(page, shop)
    say(page, "I want to speak to a human about my card")
    expect(log.get_by_role("listitem")).not_to_have_count(1)

    sender = f"webchat:{session_of(page)}"
    tracker = httpx.get(f"{live_server.url}/conversations/{sender}/tracker", headers=API_AUTH, timeout=30).json()
    ticket = tracker["handoff"]["id"]
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(agent, "Ana Agent")
    desk = httpx.Client(
        base_url=f"{live_server.url}/desk/api",
        timeout=30,
        headers={"Authorization": f"Bearer {live_server.bot.agents.issue_token(agent)}"},
    )
    with desk:
        desk.post(f"/tickets/{ticket}/claim").raise_for_status()
        desk.post(
            f"/tickets/{ticket}/reply", json={"text": "Hi, Ana here. Let me look at your card."}
        ).raise_for_status()

    reply = log.get_by_role("listitem").last
    expect(reply).to_have_text("Ana Agent: Hi, Ana here. Let me look at your card.")


@pytest.fixture(autouse=True)
def no_script_errors(page: Page) -> Iterator[None]:
    """A script error in the widget fails the test that caused it."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == []
