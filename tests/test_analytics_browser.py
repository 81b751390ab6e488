"""The analytics dashboard in a real headless Chromium, on the demo bot's own traffic: the cards show
the API's numbers, every chart draws, an empty past period and a single day read right, and the
page logs no error (a blocked script or style would: the policy allows nothing inline)."""

from __future__ import annotations

import base64
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, expect

from tests.browser import INKED_SHARE, LiveServer
from tests.test_desk_console import customer_says, png_size, tracker
from tests.test_kb_console import GAP_QUESTION, account, desk_call, sign_in

CHARTS = ("automation", "first_reply", "sla", "queue", "csat")
# Every <img> on the page has loaded and has a size of its own (a broken SVG has none).
IMAGES_DRAWN = "() => [...document.images].every((image) => image.complete && image.naturalWidth > 0)"
SESSION_TOKEN = "() => JSON.parse(sessionStorage.getItem('crowddesk.desk.session')).token"


@pytest.fixture(autouse=True)
def console_errors(page: Page) -> Iterator[None]:
    """Fails the test on any script error or console error, CSP violations included."""
    errors: list[str] = []

    def logged(message: ConsoleMessage) -> None:
        if message.type == "error":
            errors.append(f"{message.text} ({message.location['url']})")

    page.on("console", logged)
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield
    assert errors == [], "\n".join(errors)


def handed_off_replied_and_rated(live_server: LiveServer, agent: str) -> None:
    """A customer asks for a person; `agent` claims, replies and resolves; the customer rates 5."""
    sender = f"analytics-{uuid.uuid4().hex[:8]}"
    customer_says(live_server, sender, "my new card still hasn't arrived, can I talk to someone?")
    ticket_id = tracker(live_server, sender)["handoff"]["id"]
    token = live_server.bot.agents.issue_token(agent)
    desk_call(live_server, token, f"/tickets/{ticket_id}/claim")
    desk_call(live_server, token, f"/tickets/{ticket_id}/reply", {"text": "Hi, I'm on it."})
    desk_call(live_server, token, f"/tickets/{ticket_id}/resolve")
    customer_says(live_server, sender, "5")
    rated = live_server.bot.conversations.get_handoff(ticket_id)
    assert rated is not None and rated.rating == 5


def scorecard(page: Page, live_server: LiveServer, **params: str) -> dict[str, Any]:
    """What the API gives the page's signed-in account for `params`."""
    token = page.evaluate(SESSION_TOKEN)
    response = httpx.get(
        f"{live_server.url}/analytics/api/scorecard",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=60,
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def card_value(page: Page, metric: str) -> str:
    return page.locator(f'.metric[data-metric="{metric}"] .value').inner_text()


def loaded(page: Page, period_shown: str) -> None:
    """Waits until the page shows the period that starts with `period_shown`, with every chart."""
    expect(page.locator("#period-shown")).to_contain_text(period_shown)
    expect(page.locator("#charts img")).to_have_count(len(CHARTS))
    page.wait_for_function(IMAGES_DRAWN)


def choose_days(page: Page, first: str, last: str) -> None:
    page.get_by_label("Period", exact=True).select_option("custom")
    page.get_by_label("From (UTC day)").fill(first)
    page.get_by_label("To (UTC day, included)").fill(last)
    page.get_by_role("button", name="Show").click()


def test_a_lead_reads_the_last_seven_days_with_every_chart(page: Page, live_server: LiveServer, tmp_path: Path) -> None:
    agent = account(live_server, "agent")
    customer_says(live_server, f"analytics-{uuid.uuid4().hex[:8]}", "How do I reset my PIN?")
    customer_says(live_server, f"analytics-{uuid.uuid4().hex[:8]}", GAP_QUESTION)
    handed_off_replied_and_rated(live_server, agent)

    sign_in(page, live_server, account(live_server, "admin"), console="analytics")
    expect(page.get_by_role("heading", name="Headline")).to_be_visible()
    expect(page.locator("#dashboard-status")).to_have_text("")
    expected = scorecard(page, live_server)
    loaded(page, expected["scorecard"]["period"]["since"][:10])

    headline = {h["name"]: h for h in expected["headline"]}
    assert card_value(page, "conversations") == str(headline["conversations"]["current"])
    assert card_value(page, "customer_messages") == str(headline["customer_messages"]["current"])
    assert card_value(page, "handoff_rate") == f"{headline['handoff_rate']['current'] * 100:.1f}%"
    assert card_value(page, "csat_mean") == f"{headline['csat_mean']['current']:.2f}"
    alts = page.locator("#charts img").evaluate_all("(images) => images.map((image) => image.alt)")
    assert any(alt.startswith("First human reply: ") and "within 30 min" in alt for alt in alts)
    agents = page.get_by_role("table", name="Tickets per agent")
    expect(agents.get_by_role("row").filter(has_text=agent)).to_contain_text("1")
    expect(page.get_by_role("list", name="Top gaps")).to_contain_text(GAP_QUESTION)
    expect(page.locator("#gaps-chart img")).to_have_attribute("alt", re.compile(r"^Top \d+ gaps"))
    page.wait_for_function(IMAGES_DRAWN)

    shot = tmp_path / "analytics.png"
    page.screenshot(path=shot, full_page=True)
    data = shot.read_bytes()
    assert png_size(data)[0] == 1400  # the viewport's width: nothing overflows sideways
    assert page.evaluate(INKED_SHARE, base64.b64encode(data).decode()) > 0.04


def test_an_empty_past_period_says_so_and_an_agent_sees_only_their_own_tickets(
    page: Page, live_server: LiveServer, tmp_path: Path
) -> None:
    agent = account(live_server, "agent")
    sign_in(page, live_server, agent, console="analytics")
    expect(page.get_by_role("heading", name="Headline")).to_be_visible()

    choose_days(page, "2020-01-06", "2020-01-12")

    loaded(page, "2020-01-06 00:00 to 2020-01-13 00:00 UTC, all channels")
    expect(page.locator("#dashboard-status")).to_have_text("No conversations in this period.")
    assert card_value(page, "conversations") == "0"
    assert card_value(page, "automated_resolution_rate") == "–"
    own = page.get_by_role("table", name="Tickets per agent").get_by_role("row").filter(has_text=agent)
    expect(own.get_by_role("cell").last).to_have_text("0")
    expect(page.get_by_role("table", name="Tickets per agent").get_by_role("row")).to_have_count(2)  # header, own
    expect(page.locator("#gaps-status")).to_contain_text("editors and admins read it")
    page.screenshot(path=tmp_path / "analytics-empty.png", full_page=True)


def test_a_single_day_shows_that_days_numbers(page: Page, live_server: LiveServer) -> None:
    customer_says(live_server, f"analytics-{uuid.uuid4().hex[:8]}", "What are the fees for a transfer abroad?")
    today = datetime.now(UTC).date()
    sign_in(page, live_server, account(live_server, "editor"), console="analytics")
    expect(page.get_by_role("heading", name="Headline")).to_be_visible()

    choose_days(page, today.isoformat(), today.isoformat())

    loaded(page, f"{today} 00:00 to {today + timedelta(days=1)} 00:00 UTC")
    expected = scorecard(page, live_server, since=today.isoformat(), until=(today + timedelta(days=1)).isoformat())
    conversations = expected["scorecard"]["current"]["volume"]["conversations"]
    assert conversations >= 1
    assert card_value(page, "conversations") == str(conversations)
    assert card_value(page, "kb_answers") == str(expected["scorecard"]["current"]["bot"]["kb_answers"])


def test_the_page_loads_only_its_own_and_the_shared_files(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/analytics")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    linked = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert {"/desk/static/session.js", "/analytics/static/analytics.js", "/analytics/static/analytics.css"} <= set(
        linked
    )
    assert all(httpx.get(f"{live_server.url}{path}").status_code == 200 for path in linked)
    for outside in ("/analytics/static/desk.js", "/analytics/static/..%2Fapi.py"):
        assert httpx.get(f"{live_server.url}{outside}").status_code == 404


def test_the_consoles_link_to_each_other_under_one_sign_in(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, account(live_server, "admin"), console="desk")
    consoles = page.get_by_role("navigation", name="Consoles")
    consoles.get_by_role("link", name="Analytics").click()
    expect(page.get_by_role("heading", name="Headline")).to_be_visible()  # still signed in
    page.get_by_role("navigation", name="Consoles").get_by_role("link", name="Knowledge base").click()
    # The console names its open view in the fragment (#entries) once it has loaded.
    expect(page).to_have_url(re.compile(rf"{re.escape(live_server.url)}/kb(#\w+)?$"))
    expect(page.get_by_role("navigation", name="Consoles").get_by_role("link", name="Desk")).to_be_visible()
