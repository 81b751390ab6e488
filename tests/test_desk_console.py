"""The agent desk console in a real headless Chromium: sign in, live queue, work a ticket."""

from __future__ import annotations

import re
import struct
import uuid
import zlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Page, expect

from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.project.config import SlaSettings
from crowddesk.knowledge_base.suggestions import Suggestions
from tests.browser import LiveServer
from tests.demo_bot import API_AUTH

PASSWORD = "correct horse battery staple"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def agent_id(live_server: LiveServer) -> str:
    agent = f"agent-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(agent, "Ana Agent", password=PASSWORD)
    return agent


def customer_says(live_server: LiveServer, sender: str, text: str) -> list[dict[str, Any]]:
    response = httpx.post(
        f"{live_server.url}/webhooks/rest/webhook", json={"sender": sender, "message": text}, timeout=60
    )
    response.raise_for_status()
    return list(response.json())


def tracker(live_server: LiveServer, sender: str) -> dict[str, Any]:
    response = httpx.get(f"{live_server.url}/conversations/{sender}/tracker", headers=API_AUTH, timeout=30)
    response.raise_for_status()
    return dict(response.json())


def sign_in(page: Page, live_server: LiveServer, agent_id: str, password: str) -> None:
    page.goto(f"{live_server.url}/desk")
    page.get_by_label("Agent ID").fill(agent_id)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def png_size(data: bytes) -> tuple[int, int]:
    """Width and height from the IHDR chunk, after checking the chunk's CRC."""
    if data[:8] != PNG_SIGNATURE or data[12:16] != b"IHDR":
        raise ValueError("not a PNG")
    (length,) = struct.unpack(">I", data[8:12])
    chunk = data[12 : 16 + length]
    (crc,) = struct.unpack(">I", data[16 + length : 20 + length])
    if zlib.crc32(chunk) != crc:
        raise ValueError("corrupt PNG header")
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_agent_works_a_live_handoff_from_queue_to_resolution(
    page: Page, live_server: LiveServer, agent_id: str, sender: str, tmp_path: Path
) -> None:
    sign_in(page, live_server, agent_id, PASSWORD)
    expect(page.get_by_text(f"Ana Agent ({agent_id})")).to_be_visible()
    queue = page.get_by_role("list", name="Open tickets")

    # A hand-off arrives while the console is open: it shows up without a reload.
    customer_says(live_server, sender, "my new card still hasn't arrived, can I talk to someone?")
    ticket_id = tracker(live_server, sender)["handoff"]["id"]
    item = queue.get_by_role("listitem").filter(has_text=sender)
    expect(item).to_be_visible()
    expect(item).to_contain_text("customer request")
    expect(item.locator(".countdown")).to_have_text(re.compile(r"^\d{2}:\d{2}$"))

    item.get_by_role("button").click()
    expect(page.get_by_role("heading", name=f"Ticket {ticket_id}")).to_be_visible()
    transcript = page.get_by_role("list", name="Transcript")
    expect(transcript).to_contain_text("my new card still hasn't arrived, can I talk to someone?")
    page.get_by_role("button", name="Claim").click()
    expect(item).to_contain_text(f"assigned · {agent_id}")

    # Customer text is shown as text, never as markup, and arrives live while the bot is silent.
    customer_says(live_server, sender, "<img src=x onerror=alert(1)> are you there?")
    expect(transcript.get_by_role("listitem").last).to_contain_text("<img src=x onerror=alert(1)>")
    expect(transcript.locator("img")).to_have_count(0)

    suggestions = page.get_by_role("list", name="Suggested answers")
    first = suggestions.get_by_role("listitem").first
    answer = first.locator(".answer").inner_text()
    assert answer
    first.get_by_role("button", name=re.compile("Insert answer")).click()
    reply_box = page.get_by_label("Reply to the customer")
    expect(reply_box).to_have_value(answer)
    reply_box.press("End")
    reply_box.type(" — Ana")
    page.get_by_role("button", name="Send reply").click()
    expect(transcript.locator(".bubble.agent")).to_contain_text(f"{answer} — Ana")
    agent_lines = [
        e["text"]
        for e in tracker(live_server, sender)["events"]
        if e["event"] == "bot" and e.get("metadata", {}).get("agent_id") == agent_id
    ]
    assert agent_lines == [f"{answer} — Ana"]

    page.get_by_label("Add an internal note").fill("Customer sounds worried; check the card order.")
    page.get_by_role("button", name="Add note").click()
    expect(page.get_by_role("list", name="Internal notes")).to_contain_text("check the card order")

    page.get_by_label("Question for a KB entry").fill("I want to speak to someone about my card")
    page.get_by_role("button", name="Propose this reply as a KB entry").click()
    expect(page.get_by_text(re.compile(r"Suggestion \d+ sent to the knowledge-base editors"))).to_be_visible()
    [proposed] = [s for s in Suggestions(live_server.bot.database).list() if s.ticket_id == ticket_id]
    assert proposed.questions == ["I want to speak to someone about my card"]
    assert proposed.answer == f"{answer} — Ana" and proposed.agent == agent_id

    shot = tmp_path / "desk.png"
    page.screenshot(path=shot, full_page=True)
    data = shot.read_bytes()
    assert len(data) > 30_000 and png_size(data)[0] >= 1400

    page.get_by_role("button", name="Resolve").click()
    expect(item).to_have_count(0)
    state = tracker(live_server, sender)
    assert state["handoff"] is None and state["owner"] == "bot"


def test_an_rtl_override_and_a_combining_mark_flood_cannot_disturb_the_desk(
    page: Page, live_server: LiveServer, agent_id: str, sender: str
) -> None:
    flood = "e" + "\u0301" * 3000
    customer_says(live_server, sender, f"I want to speak to a human about my card \u202eevil {flood}")
    sign_in(page, live_server, agent_id, PASSWORD)
    item = page.get_by_role("list", name="Open tickets").get_by_role("listitem").filter(has_text=sender)
    expect(item).to_be_visible()

    summary = item.locator(".summary").inner_text()
    assert "\u202e" not in summary and summary.count("\u0301") <= 4
    item.get_by_role("button").click()
    customer = page.get_by_role("list", name="Transcript").locator(".bubble.customer").first
    expect(customer.locator(".text")).to_contain_text("about my card evil")
    as_sent = customer.locator(".as-sent").inner_text()
    assert as_sent.startswith("as sent: I want to speak to a human about my card \\u202eevil")
    assert as_sent.endswith("e\u0301\u0301\u0301\u0301[+2996 combining marks]") and "\u202e" not in as_sent
    # Whatever text gets through is laid out apart from its neighbours and clipped to its box.
    # (expect retries: the stream's first `ticket` event may render the transcript again.)
    expect(customer.locator(".text")).to_have_css("unicode-bidi", "plaintext")
    expect(customer.locator(".text")).to_have_css("overflow", "hidden")
    # The list refreshes itself; evaluate waits for the current item rather than a detached one.
    assert item.evaluate("el => el.getBoundingClientRect().height") < 200


def flag_sla(live_server: LiveServer, ticket_id: str, now: datetime) -> None:
    """One pass of the real SLA monitor, its clock set to `now`. Other tickets of the session
    that are due by then are flagged too, as they would be on a server running that late."""
    monitor = SlaMonitor(live_server.bot.database, SlaSettings(warning_minutes=5), clock=lambda: now)
    assert ticket_id in {flagged.ticket_id for flagged in monitor.check()}


def test_an_unrelated_question_shows_no_suggested_answers_and_says_why(
    page: Page, live_server: LiveServer, agent_id: str, sender: str
) -> None:
    customer_says(live_server, sender, "what's the weather in Lisbon tomorrow")
    sign_in(page, live_server, agent_id, PASSWORD)
    page.get_by_role("list", name="Open tickets").get_by_role("listitem").filter(has_text=sender).get_by_role(
        "button"
    ).click()
    suggestions = page.get_by_role("list", name="Suggested answers")
    expect(suggestions).to_have_text("No knowledge-base answer has enough evidence for this question.")
    expect(suggestions.locator(".suggestion")).to_have_count(0)


def test_sla_warning_then_breach_show_live_on_the_queue_and_the_open_ticket(
    page: Page, live_server: LiveServer, agent_id: str, sender: str
) -> None:
    customer_says(live_server, sender, "I want to speak to a human about my mortgage")
    ticket = live_server.bot.conversations.get_handoff(tracker(live_server, sender)["handoff"]["id"])
    assert ticket is not None
    sign_in(page, live_server, agent_id, PASSWORD)
    item = page.get_by_role("list", name="Open tickets").get_by_role("listitem").filter(has_text=sender)
    item.get_by_role("button").click()
    head_status = page.locator(".ticket-head").get_by_role("status")
    expect(page.get_by_role("heading", name=f"Ticket {ticket.id}")).to_be_visible()
    expect(item).not_to_contain_text("SLA")
    expect(head_status).to_be_hidden()

    # Flags reach the open console without a reload: the stream re-sends the queue.
    flag_sla(live_server, ticket.id, ticket.due_at - timedelta(minutes=4))
    expect(item.locator(".sla")).to_have_text("SLA at risk")
    expect(item.locator(".sla")).to_have_css("color", "rgb(138, 75, 0)")
    expect(head_status).to_have_text("SLA at risk")

    flag_sla(live_server, ticket.id, ticket.due_at + timedelta(seconds=1))
    expect(item.locator(".sla")).to_have_text("SLA breached")
    expect(item.locator(".sla")).to_have_css("background-color", "rgb(179, 38, 30)")
    expect(head_status).to_have_text("SLA breached")
    expect(head_status).to_have_css("background-color", "rgb(179, 38, 30)")

    # A breach stays on the ticket after the late first reply.
    page.get_by_role("button", name="Claim").click()
    page.get_by_label("Reply to the customer").fill("Sorry for the wait, I'm on it.")
    page.get_by_role("button", name="Send reply").click()
    transcript = page.get_by_role("list", name="Transcript")
    expect(transcript.locator(".bubble.agent")).to_contain_text("Sorry for the wait")
    expect(item.locator(".sla")).to_have_text("SLA breached")
    expect(head_status).to_have_text("SLA breached")


def test_wrong_password_shows_an_error_and_sign_out_forgets_the_session(
    page: Page, live_server: LiveServer, agent_id: str
) -> None:
    sign_in(page, live_server, agent_id, "not the password")
    expect(page.get_by_role("alert")).to_have_text("wrong agent id or password")
    expect(page.get_by_role("heading", name="Queue")).to_be_hidden()

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    page.reload()  # the token survives a reload of the tab (sessionStorage)
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    token = page.evaluate("JSON.parse(sessionStorage.getItem('crowddesk.desk.session')).token")
    with page.expect_response(lambda response: response.url.endswith("/desk/api/logout")) as logout:
        page.get_by_role("button", name="Sign out").click()
    assert logout.value.status == 204
    expect(page.get_by_label("Agent ID")).to_be_visible()
    assert page.evaluate("sessionStorage.length") == 0
    # Signing out revoked the token on the server, not just in this tab.
    after = httpx.get(f"{live_server.url}/desk/api/tickets", headers={"Authorization": f"Bearer {token}"})
    assert after.status_code == 401


def test_agent_transfers_a_ticket_to_a_colleague_picked_by_name(
    page: Page, live_server: LiveServer, agent_id: str, sender: str
) -> None:
    colleague = f"agent-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(colleague, "Bo Colleague")
    customer_says(live_server, sender, "I want to speak to a human about my loan")
    ticket_id = tracker(live_server, sender)["handoff"]["id"]

    sign_in(page, live_server, agent_id, PASSWORD)
    item = page.get_by_role("list", name="Open tickets").get_by_role("listitem").filter(has_text=sender)
    item.get_by_role("button").click()
    page.get_by_role("button", name="Claim").click()
    expect(item).to_contain_text(f"assigned · {agent_id}")

    picker = page.get_by_label("Transfer to")
    expect(picker).to_be_enabled()
    expect(picker.locator("option", has_text=f"Bo Colleague ({colleague})")).to_have_count(1)
    expect(picker.locator("option", has_text=agent_id)).to_have_count(0)  # not to oneself
    picker.select_option(label=f"Bo Colleague ({colleague})")
    page.get_by_role("button", name="Transfer", exact=True).click()

    expect(item).to_contain_text(f"assigned · {colleague}")
    expect(page.get_by_label("Reply to the customer")).to_be_disabled()  # no longer hers to answer
    assert live_server.bot.conversations.get_handoff(ticket_id).assigned_to == colleague


def test_login_issues_a_token_and_the_stream_needs_a_ticket_for_it(live_server: LiveServer, agent_id: str) -> None:
    api = f"{live_server.url}/desk/api"
    bad = httpx.post(f"{api}/login", json={"agent_id": agent_id, "password": "nope"})
    assert bad.status_code == 401 and bad.json()["error"] == "wrong agent id or password"
    good = httpx.post(f"{api}/login", json={"agent_id": agent_id, "password": PASSWORD})
    assert good.status_code == 200
    assert good.json()["agent"] == {"id": agent_id, "name": "Ana Agent", "role": "agent"}
    token = good.json()["token"]
    listing = httpx.get(f"{api}/tickets", headers={"Authorization": f"Bearer {token}"})
    assert listing.status_code == 200

    assert httpx.get(f"{api}/stream").status_code == 401
    assert httpx.get(f"{api}/stream", params={"stream_ticket": "cdk_not-a-ticket"}).status_code == 401
    ticket = httpx.post(f"{api}/stream-ticket", headers={"Authorization": f"Bearer {token}"}).json()
    with httpx.stream("GET", f"{api}/stream", params={"stream_ticket": ticket["stream_ticket"]}, timeout=30) as stream:
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        first = next(stream.iter_lines())
        assert first == "event: queue"


def test_console_page_forbids_inline_scripts_and_serves_only_its_files(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/desk")
    assert page.status_code == 200 and "<title>CrowdDesk" in page.text
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert httpx.get(f"{live_server.url}/desk/static/desk.js").status_code == 200
    assert httpx.get(f"{live_server.url}/desk/static/..%2Fdesk_api.py").status_code == 404
