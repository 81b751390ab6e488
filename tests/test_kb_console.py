"""The content team's console (/kb) in a real headless Chromium: find and edit entries with
their history, approve a suggestion from a real hand-off, usage, the gap report, roles."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import httpx
from playwright.sync_api import Page, expect

from tests.browser import LiveServer
from tests.test_desk_console import customer_says, png_size, tracker

PASSWORD = "correct horse battery staple"
# Not in the demo's FAQ: the bot offers its closest entries and "something else".
QUESTION = "Can my partner and I open a joint account together?"
PARAPHRASE = "can my partner and I have a joint account?"
AGENT_REPLY = "Yes, open Accounts > New > Joint account in the app."
EDITED_ANSWER = "Yes: open Accounts > New > Joint account in the app and invite your partner."
GAP_QUESTION = "Do you sponsor the local football club?"


def account(live_server: LiveServer, role: str) -> str:
    account_id = f"{role}-{uuid.uuid4().hex[:8]}"
    live_server.bot.agents.add(account_id, f"{role.title()} Tester", role=role, password=PASSWORD)
    return account_id


def sign_in(page: Page, live_server: LiveServer, account_id: str, console: str = "kb") -> None:
    page.goto(f"{live_server.url}/{console}")
    page.get_by_label(re.compile("^(Account|Agent) ID$")).fill(account_id)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def desk_call(live_server: LiveServer, token: str, path: str, body: dict[str, str] | None = None) -> None:
    response = httpx.post(
        f"{live_server.url}/desk/api{path}", json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
    )
    assert response.status_code == 200, response.text


def handed_off_and_answered(live_server: LiveServer, sender: str) -> str:
    """QUESTION (no entry covers it) handed off, answered and resolved by an agent: the ticket id
    (its resolution proposes the exchange as a suggestion)."""
    customer_says(live_server, sender, QUESTION)
    ticket_id = tracker(live_server, sender)["handoff"]["id"]
    agent = account(live_server, "agent")
    token = live_server.bot.agents.issue_token(agent)
    desk_call(live_server, token, f"/tickets/{ticket_id}/claim")
    desk_call(live_server, token, f"/tickets/{ticket_id}/reply", {"text": AGENT_REPLY})
    desk_call(live_server, token, f"/tickets/{ticket_id}/resolve")
    return str(ticket_id)


def test_editor_finds_an_entry_edits_it_and_restores_the_earlier_version(
    page: Page,
    live_server: LiveServer,
    tmp_path: Path,
) -> None:
    editor = account(live_server, "editor")
    store = live_server.bot.knowledge_base.store
    original = store.get("faq/card_arrival")
    assert original is not None

    sign_in(page, live_server, editor)
    expect(page.get_by_text(f"Editor Tester ({editor})")).to_be_visible()
    search = page.get_by_label("Search")
    search.fill("follow the delivery in the Northwind app")
    search.press("Enter")
    entries = page.get_by_role("list", name="Entries")
    found = entries.get_by_role("listitem").filter(has_text="faq/card_arrival")
    expect(found).to_have_count(1)
    expect(found).to_contain_text("published")

    found.get_by_role("button").click()
    expect(page.get_by_role("heading", name="faq/card_arrival")).to_be_visible()
    answer = page.get_by_label("Answer", exact=True)
    expect(answer).to_have_value(original.answer)
    edited = f"{original.answer} You can also see it under Inbox."
    answer.fill(edited)
    page.get_by_label("Comment for the history").fill("mention the Inbox")
    page.get_by_role("button", name="Save", exact=True).click()

    expect(page.get_by_role("status").filter(has_text="Saved as a new version.")).to_be_visible()
    history = page.get_by_role("list", name="History").get_by_role("listitem")
    expect(history.first).to_contain_text(f"edit · published · by {editor}")
    expect(history.first).to_contain_text("mention the Inbox")
    assert store.get("faq/card_arrival").answer == edited

    shot = tmp_path / "kb.png"
    page.screenshot(path=shot, full_page=True)
    data = shot.read_bytes()
    assert len(data) > 30_000 and png_size(data)[0] >= 1400

    history.nth(1).get_by_role("button", name=re.compile("Restore version")).click()
    expect(page.get_by_role("status").filter(has_text="restored as a new version")).to_be_visible()
    expect(answer).to_have_value(original.answer)
    expect(history.first).to_contain_text(f"restore · published · by {editor}")
    assert store.get("faq/card_arrival").answer == original.answer


def test_a_suggestion_from_a_real_handoff_is_approved_then_served_and_counted(
    page: Page,
    live_server: LiveServer,
    sender: str,
) -> None:
    ticket_id = handed_off_and_answered(live_server, sender)

    sign_in(page, live_server, account(live_server, "editor"))
    page.get_by_role("button", name=re.compile("^Suggestions")).click()
    card = page.get_by_role("listitem", name=re.compile(f"ticket {re.escape(ticket_id)}$"))
    expect(card.get_by_label("Questions (one per line)")).to_have_value(QUESTION)
    expect(card.get_by_label("Answer")).to_have_value(AGENT_REPLY)
    card.get_by_label("Answer").fill(EDITED_ANSWER)  # editors improve it before it goes out
    card.get_by_role("button", name="Approve and publish").click()
    expect(page.get_by_role("status").filter(has_text=f"published as entry handoff:{ticket_id}")).to_be_visible()
    expect(card).to_have_count(0)

    later = f"customer-{uuid.uuid4().hex[:12]}"
    replies = customer_says(live_server, later, PARAPHRASE)
    assert any(EDITED_ANSWER in (message.get("text") or "") for message in replies)
    assert tracker(live_server, later)["handoff"] is None
    [not_helpful] = [b for m in replies for b in m.get("buttons", []) if b["title"] == "Not helpful"]
    customer_says(live_server, later, not_helpful["payload"])

    page.get_by_role("button", name="Usage").click()
    row = page.get_by_role("row").filter(has_text=f"handoff:{ticket_id}")
    expect(row).to_be_visible()
    expect(row.locator("td").nth(3)).to_have_text("1")  # served once
    expect(row.locator("td").nth(5)).to_have_text("1")  # found not helpful once
    unhelpful = page.get_by_role("columnheader", name="Unhelpful")
    expect(unhelpful).to_have_attribute("aria-sort", "none")
    unhelpful.get_by_role("button").click()
    expect(unhelpful).to_have_attribute("aria-sort", "descending")
    expect(page.get_by_role("row").nth(1)).to_contain_text(f"handoff:{ticket_id}")
    row.get_by_role("button", name=f"handoff:{ticket_id}").click()
    expect(page.get_by_role("heading", name=f"handoff:{ticket_id}")).to_be_visible()
    expect(page.get_by_text(re.compile(r"^Served 1 time"))).to_be_visible()


def test_gap_report_shows_a_handed_off_question_and_starts_its_answer(
    page: Page,
    live_server: LiveServer,
    sender: str,
) -> None:
    customer_says(live_server, sender, GAP_QUESTION)
    assert tracker(live_server, sender)["handoff"] is not None

    sign_in(page, live_server, account(live_server, "editor"))
    page.get_by_role("button", name="Gaps").click()
    gap = page.get_by_role("list", name="Gaps").get_by_role("listitem").filter(has_text=GAP_QUESTION).first
    expect(gap).to_contain_text(re.compile(r"\d+ questions?"))
    gap.get_by_role("button", name=re.compile("Write an answer")).click()

    expect(page.get_by_role("heading", name="New entry")).to_be_visible()
    expect(page.get_by_label("Questions (one per line)")).to_have_value(re.compile(re.escape(GAP_QUESTION)))
    page.get_by_label("Answer", exact=True).fill("We don't sponsor clubs; see our community fund page.")
    page.get_by_label("Entry id").fill("faq/card_arrival")
    page.get_by_role("button", name="Create draft").click()
    # The API's reason, as it gave it.
    expect(page.get_by_role("alert").filter(has_text="entry 'faq/card_arrival' exists")).to_be_visible()

    entry_id = f"manual:sponsoring-{uuid.uuid4().hex[:6]}"
    page.get_by_label("Entry id").fill(entry_id)
    page.get_by_role("button", name="Create draft").click()
    expect(page.get_by_role("heading", name=entry_id)).to_be_visible()
    expect(page.locator("#entry-status")).to_have_text("draft")
    page.get_by_role("button", name="Publish", exact=True).click()
    expect(page.locator("#entry-status")).to_have_text("published")

    # A published entry now covers the question: it leaves the report.
    page.get_by_role("button", name="Gaps").click()
    expect(page.locator("#gaps-status")).not_to_have_text("Loading…")
    expect(page.get_by_role("list", name="Gaps")).not_to_contain_text(GAP_QUESTION)


def test_each_console_tells_a_role_it_does_not_serve_why(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, account(live_server, "agent"))
    expect(page.get_by_role("heading", name="Editors only")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("role 'agent' can't curate the knowledge base")
    expect(page.get_by_role("heading", name="Entries")).to_be_hidden()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_label("Account ID")).to_be_visible()

    sign_in(page, live_server, account(live_server, "editor"), console="desk")
    expect(page.get_by_role("heading", name="Agents only")).to_be_visible()
    expect(page.get_by_role("alert")).to_have_text("role 'editor' can't work tickets")
    expect(page.get_by_role("heading", name="Queue")).to_be_hidden()


def test_admin_uses_both_consoles_with_one_sign_in(page: Page, live_server: LiveServer) -> None:
    sign_in(page, live_server, account(live_server, "admin"), console="desk")
    expect(page.get_by_role("heading", name="Queue")).to_be_visible()
    page.goto(f"{live_server.url}/kb")  # the same tab keeps the session; no token in the URL
    expect(page.get_by_role("heading", name="Entries")).to_be_visible()
    assert "cdk_" not in page.url


def test_the_page_loads_only_its_own_and_the_shared_files(live_server: LiveServer) -> None:
    page = httpx.get(f"{live_server.url}/kb")
    assert page.status_code == 200 and "script-src 'self'" in page.headers["content-security-policy"]
    linked = re.findall(r'(?:src|href)="(/[^"]+)"', page.text)
    assert {"/desk/static/session.js", "/kb/static/kb.js"} <= set(linked)
    assert all(httpx.get(f"{live_server.url}{path}").status_code == 200 for path in linked)
    for outside in ("/kb/static/desk.js", "/kb/static/..%2Fkb_api.py"):
        assert httpx.get(f"{live_server.url}{outside}").status_code == 404
