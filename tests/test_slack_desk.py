"""The Slack desk through crowddesk's server: handoffs posted to the desk channel, worked there
with Claim / Resolve and thread replies, against the fake Slack with signed requests."""

from __future__ import annotations

import json
from typing import Any

import pytest

from crowddesk.bot.desk.slack import slack_agent
from crowddesk.bot.desk.slack_blocks import CLAIM_ACTION, RESOLVE_ACTION
from crowddesk.connectors.slack import INTERACTIVE_PATH
from crowddesk.errors import Forbidden, Rejected
from tests.fakes.slack_api import block_actions, channel_message, direct_message, signed_headers
from tests.slack_bot import DESK_CHANNEL, SlackBot, new_id


def desk_message(slack_bot: SlackBot, ticket_id: str) -> dict[str, Any]:
    """Wait for the ticket's message in the desk channel."""
    [posted] = slack_bot.api.wait_for(
        "chat.postMessage",
        where=lambda call: (
            call["channel"] == DESK_CHANNEL and not call.get("thread_ts") and ticket_id in json.dumps(call["blocks"])
        ),
    )
    return posted


def redrawn(slack_bot: SlackBot, ts: str, showing: str) -> dict[str, Any]:
    """Wait for an update of the desk message `ts` that shows `showing`; the latest such."""
    return slack_bot.api.wait_for(
        "chat.update", where=lambda call: call["ts"] == ts and showing in json.dumps(call["blocks"])
    )[-1]


def in_thread(slack_bot: SlackBot, ts: str, text: str) -> dict[str, Any]:
    [said] = slack_bot.api.wait_for(
        "chat.postMessage", where=lambda call: call.get("thread_ts") == ts and text in call["text"]
    )
    return said


def told(slack_bot: SlackBot, user: str, text: str) -> dict[str, Any]:
    """Wait for the ephemeral message only `user` sees."""
    [notice] = slack_bot.api.wait_for(
        "chat.postEphemeral", where=lambda call: call["user"] == user and text in call["text"]
    )
    return notice


def buttons(message: dict[str, Any]) -> dict[str, str]:
    return {
        element["action_id"]: element["value"]
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    }


def slack_handoff(slack_bot: SlackBot) -> tuple[str, str, dict[str, Any]]:
    """A Slack customer who asked for a person: their DM, their sender id, and the ticket."""
    dm, user = new_id("D"), new_id("U")
    slack_bot.event(direct_message(dm, user, "I want to talk to a real person please"))
    slack_bot.posts_to(dm)  # the bot says a person will take over
    ticket = slack_bot.tracker(f"slack:{dm}:{user}")["handoff"]
    assert ticket is not None
    return dm, user, ticket


def rest_handoff(
    slack_bot: SlackBot, text: str = "what will the weather be like in Lisbon this weekend?"
) -> tuple[str, dict[str, Any]]:
    sender = new_id("rest-customer-")
    assert slack_bot.client.post("/webhooks/rest/webhook", json={"sender": sender, "message": text}).status_code == 200
    ticket = slack_bot.tracker(sender)["handoff"]
    assert ticket is not None
    return sender, ticket


def test_a_slack_customer_is_helped_from_the_desk_channel_from_handoff_to_rating(slack_bot: SlackBot) -> None:
    dm, customer, ticket = slack_handoff(slack_bot)
    sender = f"slack:{dm}:{customer}"
    posted = desk_message(slack_bot, ticket["id"])
    ts = posted["ts"]
    shown = json.dumps(posted["blocks"])
    assert "customer request" in posted["blocks"][0]["text"]["text"]
    for part in (
        f"<@{customer}> on Slack",
        "Waiting for an agent",
        "<!date^",
        "*Summary*",
        "*Last customer messages*",
        "\\n> I want to talk to a real person please",
        "*Knowledge base candidates*",
    ):
        assert part in shown, part
    assert buttons(posted) == {CLAIM_ACTION: ticket["id"]}

    agent_user = new_id("U")
    assert (
        slack_bot.press(
            DESK_CHANNEL, agent_user, CLAIM_ACTION, ticket["id"], message_ts=ts, user_name="grace"
        ).status_code
        == 200
    )
    claimed = redrawn(slack_bot, ts, f"Claimed by <@{agent_user}>")
    assert buttons(claimed) == {RESOLVE_ACTION: ticket["id"]}
    assert slack_bot.tracker(sender)["handoff"]["assigned_to"] == f"slack-{agent_user}"

    # What the customer writes meanwhile appears in the ticket's thread.
    slack_bot.event(direct_message(dm, customer, "are you there?"))
    in_thread(slack_bot, ts, "*Customer:* are you there?")

    reply = channel_message(DESK_CHANNEL, agent_user, "Hi, I'm Grace &amp; I'll sort it out", thread_ts=ts)
    slack_bot.event(reply)
    [answer] = slack_bot.api.wait_for(
        "chat.postMessage", where=lambda call: call["channel"] == dm and "Grace" in call["text"]
    )
    assert answer["text"] == "Hi, I'm Grace &amp; I'll sort it out"  # decoded from Slack, escaped again
    [confirmed] = slack_bot.api.wait_for("reactions.add", where=lambda call: call["timestamp"] == reply["ts"])
    assert confirmed["name"] == "white_check_mark"

    slack_bot.press(DESK_CHANNEL, agent_user, RESOLVE_ACTION, ticket["id"], message_ts=ts)
    resolved = redrawn(slack_bot, ts, f"Resolved by <@{agent_user}>")
    assert buttons(resolved) == {}
    [rating] = slack_bot.api.wait_for(
        "chat.postMessage", where=lambda call: call["channel"] == dm and "rate this conversation" in call["text"]
    )
    assert [b["text"]["text"] for b in rating["blocks"][-1]["elements"]] == ["1", "2", "3", "4", "5"]
    assert slack_bot.tracker(sender)["owner"] == "bot"


def test_a_second_agent_cannot_take_a_claimed_ticket_and_replies_need_a_claim(slack_bot: SlackBot) -> None:
    sender, ticket = rest_handoff(slack_bot)
    ts = desk_message(slack_bot, ticket["id"])["ts"]
    first, second = new_id("U"), new_id("U")

    slack_bot.event(channel_message(DESK_CHANNEL, second, "I'll take this one", thread_ts=ts))
    told(slack_bot, second, "Press Claim on the ticket first")

    slack_bot.press(DESK_CHANNEL, first, CLAIM_ACTION, ticket["id"], message_ts=ts)
    redrawn(slack_bot, ts, f"Claimed by <@{first}>")
    slack_bot.press(DESK_CHANNEL, second, CLAIM_ACTION, ticket["id"], message_ts=ts)
    told(slack_bot, second, f"is already assigned by slack-{first}")
    assert slack_bot.tracker(sender)["handoff"]["assigned_to"] == f"slack-{first}"

    # The claim was made, so the second agent's thread replies are still refused ...
    slack_bot.event(channel_message(DESK_CHANNEL, second, "Hello from me too", thread_ts=ts))
    told(slack_bot, second, f"is assigned to slack-{first}")
    # ... and the owner's reach the REST customer's conversation.
    owner_reply = channel_message(DESK_CHANNEL, first, "Sunny, 24 degrees. Anything about your account?", thread_ts=ts)
    slack_bot.event(owner_reply)
    slack_bot.api.wait_for("reactions.add", where=lambda call: call["timestamp"] == owner_reply["ts"])
    agent_lines = [
        e
        for e in slack_bot.tracker(sender)["events"]
        if e["event"] == "bot" and (e.get("metadata") or {}).get("agent_id")
    ]
    assert [(e["text"], e["metadata"]["agent_id"]) for e in agent_lines] == [
        ("Sunny, 24 degrees. Anything about your account?", f"slack-{first}")
    ]


def test_a_claim_in_the_web_desk_shows_in_slack_and_its_replies_in_the_thread(slack_bot: SlackBot) -> None:
    _, ticket = rest_handoff(slack_bot, "can you recommend a good pizza place near the branch?")
    ts = desk_message(slack_bot, ticket["id"])["ts"]
    agent = slack_bot.bot.agents.add(new_id("agent-"), "Lin")
    headers = {"Authorization": f"Bearer {slack_bot.bot.agents.issue_token(agent.id)}"}
    api = f"/desk/api/tickets/{ticket['id']}"
    assert slack_bot.client.post(f"{api}/claim", headers=headers).status_code == 200
    redrawn(slack_bot, ts, f"Claimed by `{agent.id}`")
    slack_bot.client.post(f"{api}/reply", headers=headers, json={"text": "Try Luigi's on Main St."})
    in_thread(slack_bot, ts, "*Lin* (web desk): Try Luigi's on Main St.")


def test_a_forged_button_press_is_refused_and_the_ticket_stays_queued(slack_bot: SlackBot) -> None:
    sender, ticket = rest_handoff(slack_bot, "who won the football last night?")
    body = block_actions(DESK_CHANNEL, new_id("U"), CLAIM_ACTION, ticket["id"])
    response = slack_bot.client.post(
        INTERACTIVE_PATH,
        content=body,
        headers=signed_headers(body, secret="guessed-secret", content_type="application/x-www-form-urlencoded"),
    )
    assert response.status_code == 401
    assert slack_bot.tracker(sender)["handoff"]["status"] == "queued"


def test_a_disabled_slack_agent_is_refused(slack_bot: SlackBot) -> None:
    agents = slack_bot.bot.agents
    user = new_id("U")
    assert slack_agent(agents, user, "mallory").id == f"slack-{user}"
    agents.disable(f"slack-{user}")
    with pytest.raises(Forbidden, match=f"slack-{user} is disabled"):
        slack_agent(agents, user, "mallory")


def test_a_slack_user_with_a_blank_display_name_is_named_by_their_user_id(slack_bot: SlackBot) -> None:
    user = new_id("U")
    agent = slack_agent(slack_bot.bot.agents, user, "   ")
    assert (agent.id, agent.name, agent.active) == (f"slack-{user}", user, True)


def test_a_slack_user_id_the_directory_refuses_gets_the_true_reason(slack_bot: SlackBot) -> None:
    with pytest.raises(Rejected, match="can't create your CrowdDesk agent account: agent id"):
        slack_agent(slack_bot.bot.agents, "U" * 64, "eve")
