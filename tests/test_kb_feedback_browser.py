"""The Helpful / Not helpful buttons of a knowledge-base answer in the real web chat widget."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.test_webchat_browser import CARD_QUESTION, open_chat, say, shop  # noqa: F401 (fixture)


def test_feedback_buttons_render_and_only_the_newest_message_keeps_live_buttons(
    page: Page,
    shop: str,  # noqa: F811 - the imported fixture, requested by name
) -> None:
    log = open_chat(page, shop)
    say(page, CARD_QUESTION)

    messages = log.get_by_role("listitem")
    answer = messages.nth(1)
    expect(answer).to_contain_text("Did that answer your question?")
    expect(answer.get_by_role("link", name="Source")).to_be_visible()
    answer.get_by_role("button", name="Not helpful").click()

    expect(messages).to_have_count(4)
    expect(messages.nth(2)).to_have_text("You: Not helpful")
    expect(answer.get_by_role("button", name="Helpful", exact=True)).to_be_disabled()
    expect(answer.get_by_role("button", name="Not helpful")).to_be_disabled()
    expect(messages.nth(3).get_by_role("button", name="Talk to a person")).to_be_enabled()
    page.reload()
    expect(messages).to_have_count(4)
    expect(messages.nth(2)).to_have_text("You: Not helpful")
    expect(log.get_by_role("button", name="Not helpful")).to_be_disabled()
