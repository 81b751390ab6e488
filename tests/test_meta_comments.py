"""Comments on a Facebook Page and on Instagram, against the fake Graph API on 127.0.0.1: read
from the webhook, answered under the comment or moved to a private conversation, and the demo
bot doing it through `crowddesk run`'s server."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from typing import Any

import pytest

from crowddesk.connectors.base import DeliveryError
from crowddesk.connectors.meta.messaging import MetaMessagingChannel
from crowddesk.connectors.types import Button, InboundMessage, OutboundMessage
from tests.channel_bots import RecordingSink
from tests.demo_bot import API_AUTH, agent_headers
from tests.fakes.meta_send_api import (
    APP_SECRET,
    PAGE_IDS,
    FakeMetaSendAPI,
    instagram_comment,
    page_comment,
    signed,
    text_message,
    webhook_body,
)
from tests.meta_bot import MetaBot
from tests.test_messenger_instagram import call_webhook, channel_for, send, wait_until

ACKNOWLEDGEMENT = "Thanks, we've sent you a private message."
CARD_NUMBER = "4111 1111 1111 1111"
_ids = itertools.count(1_000_001)


def new_id() -> str:
    return str(next(_ids))


@pytest.fixture()
def graph_api() -> Iterator[FakeMetaSendAPI]:
    with FakeMetaSendAPI() as api:
        yield api


def post_changes(
    channel: MetaMessagingChannel, sink: RecordingSink, *changes: dict[str, Any], secret: str = APP_SECRET
) -> int:
    body, headers = signed(webhook_body(channel.name, changes=changes), secret)
    return call_webhook(channel, sink, "POST", body, headers=headers).status_code


def post(platform: str, comment_id: str, visibility: str) -> dict[str, Any]:
    """A reply's `public_post`, as the bot stamps it."""
    stamped = {"platform": platform, "post_id": comment_id, "author": "jo", "followers": None, "visibility": visibility}
    return stamped | ({"acknowledgement": ACKNOWLEDGEMENT} if visibility == "private" else {})


# --- reading comments ----------------------------------------------------------------------------


def test_a_facebook_comment_reaches_the_bot_from_the_commenters_conversation(graph_api: FakeMetaSendAPI) -> None:
    sink = RecordingSink()
    comment = page_comment("900001_7001", "5550001", "how do I order a new card?", post_id="104000000000001_900001")
    assert post_changes(channel_for("messenger", graph_api), sink, comment) == 200
    assert sink.messages == [
        InboundMessage(
            "messenger",
            "messenger:commenter:5550001",
            "how do I order a new card?",
            message_id="900001_7001",
            metadata={
                "public_post": {
                    "platform": "facebook",
                    "post_id": "900001_7001",
                    "author": "Jo Rivera",
                    "followers": None,
                    "replies_last_hour": 1,
                    "url": "https://www.facebook.com/104000000000001_900001",
                }
            },
        )
    ]


def test_an_instagram_comment_comes_from_the_igsid_its_dms_come_from(graph_api: FakeMetaSendAPI) -> None:
    sink = RecordingSink()
    comment = instagram_comment("17950000000000001", "6000000000000042", "do you ship cards abroad?")
    dm = text_message("instagram", "6000000000000042", "hello", "m_ig_1")
    body, headers = signed(webhook_body("instagram", dm, changes=[comment]))
    assert call_webhook(channel_for("instagram", graph_api), sink, "POST", body, headers=headers).status_code == 200
    private, public = sink.messages
    assert private.sender_id == public.sender_id == "instagram:6000000000000042"
    assert (public.text, public.message_id) == ("do you ship cards abroad?", "17950000000000001")
    assert public.metadata["public_post"] == {
        "platform": "instagram",
        "post_id": "17950000000000001",
        "author": "jo.rivera",
        "followers": None,
        "replies_last_hour": 1,
        "url": None,
    }


def test_comments_on_one_post_are_counted_per_hour(graph_api: FakeMetaSendAPI) -> None:
    sink, channel = RecordingSink(), channel_for("instagram", graph_api)
    comments = [instagram_comment(f"1796000000000000{n}", f"70{n}", "same problem here") for n in range(3)]
    post_changes(channel, sink, *comments)
    post_changes(channel, sink, comments[-1])  # redelivered: not a new comment
    post_changes(channel, sink, instagram_comment("17960000000000009", "709", "hi", media_id="17900000000000002"))
    assert [m.metadata["public_post"]["replies_last_hour"] for m in sink.messages] == [1, 2, 3, 3, 1]


def test_the_pages_own_comments_edits_removals_and_empty_comments_are_ignored(graph_api: FakeMetaSendAPI) -> None:
    sink = RecordingSink()
    changes = [
        page_comment("900001_7002", PAGE_IDS["messenger"], "We're looking into it."),
        page_comment("900001_7003", "5550002", "edited words", verb="edited"),
        page_comment("900001_7004", "5550002", None, verb="remove"),
        page_comment("900001_7005", "5550002", None),  # a sticker
        {"field": "feed", "value": {"item": "reaction", "verb": "add", "from": {"id": "5550002"}, "post_id": "1_2"}},
    ]
    assert post_changes(channel_for("messenger", graph_api), sink, *changes) == 200
    own = instagram_comment("17950000000000002", PAGE_IDS["instagram"], "Thanks for asking!")
    assert post_changes(channel_for("instagram", graph_api), sink, own) == 200
    assert sink.messages == []


def test_a_forged_comment_delivery_is_a_403(graph_api: FakeMetaSendAPI) -> None:
    sink = RecordingSink()
    comment = page_comment("900001_7006", "5550003", "hello")
    assert post_changes(channel_for("messenger", graph_api), sink, comment, secret="someone-elses-secret") == 403
    assert sink.messages == []


# --- answering comments --------------------------------------------------------------------------


@pytest.mark.parametrize(("platform", "posted_on"), [("messenger", "facebook"), ("instagram", "instagram")])
def test_a_public_answer_goes_under_the_comment_with_numbered_buttons(
    graph_api: FakeMetaSendAPI, platform: str, posted_on: str
) -> None:
    buttons = (Button("Yes", "/affirm"), Button("No", "/deny"))
    where = post(posted_on, "c1", "public")
    send(
        channel_for(platform, graph_api),
        OutboundMessage(f"{platform}:42", "Is it a debit card?", buttons, public_post=where),
    )
    # The fake takes only the platform's own edge: /comments on Facebook, /replies on Instagram.
    assert graph_api.calls("comment_replies") == [
        {
            "platform": platform,
            "comment_id": "c1",
            "message": "Is it a debit card?\n\nReply 1 for Yes\nReply 2 for No",
            "id": graph_api.calls("comment_replies")[0]["id"],
        }
    ]
    assert graph_api.calls("messages") == []


def test_a_private_answer_acknowledges_in_public_then_links_the_psid(graph_api: FakeMetaSendAPI) -> None:
    graph_api.add_comment("900001_7007", "6100000000000001")
    channel = channel_for("messenger", graph_api)
    commenter = "messenger:commenter:5550004"
    message = OutboundMessage(
        commenter,
        "Let's look at your payment.",
        (Button("Start", "/start"),),
        public_post=post("facebook", "900001_7007", "private"),
    )
    later = OutboundMessage(commenter, "Ana here: it is refunded.", sent_by_agent=True)
    assert channel.refusal(later, 0) is not None  # no PSID before the private reply

    send(channel, message)
    assert [(c["comment_id"], c["message"]) for c in graph_api.calls("comment_replies")] == [
        ("900001_7007", ACKNOWLEDGEMENT)
    ]
    [private] = graph_api.calls("messages")
    assert private["recipient"] == {"comment_id": "900001_7007"}
    assert private["message"]["text"] == "Let's look at your payment."
    assert [reply["payload"] for reply in private["message"]["quick_replies"]] == ["/start"]

    # The customer answers in Messenger: the same conversation; an agent's reply goes to the PSID.
    # (Another server process, reading the same memory.)
    restarted = channel_for("messenger", graph_api)
    restarted.attach_memory(channel.memory)
    sink = RecordingSink()
    body, headers = signed(webhook_body("messenger", text_message("messenger", "6100000000000001", "hi", "m_7")))
    call_webhook(restarted, sink, "POST", body, headers=headers)
    assert [m.sender_id for m in sink.messages] == [commenter]
    assert restarted.refusal(later, 0) is None
    send(restarted, later)
    assert graph_api.calls("messages")[-1]["recipient"] == {"id": "6100000000000001"}


def test_a_retry_after_the_acknowledgement_sends_only_the_private_reply(graph_api: FakeMetaSendAPI) -> None:
    graph_api.add_comment("17950000000000003", "6000000000000043")
    channel = channel_for("instagram", graph_api)
    message = OutboundMessage(
        "instagram:6000000000000043", "Which card?", public_post=post("instagram", "17950000000000003", "private")
    )
    graph_api.refuse_next(503, 2, "Service temporarily unavailable", to="17950000000000003")

    async def twice() -> None:
        with pytest.raises(DeliveryError) as error:
            await channel.send(message.recipient_id, message)
        assert not error.value.permanent
        await channel.send(message.recipient_id, message)
        # Meta takes one private reply per comment: a second one is refused for good.
        with pytest.raises(DeliveryError, match="error 10900") as again:
            await channel.send(message.recipient_id, message)
        assert again.value.permanent
        await channel.stop()

    asyncio.run(twice())
    assert [c["message"] for c in graph_api.calls("comment_replies")] == [ACKNOWLEDGEMENT]
    assert [c["message"]["text"] for c in graph_api.calls("messages")] == ["Which card?"]


def test_a_private_reply_is_one_message_shortened_to_the_limit(graph_api: FakeMetaSendAPI) -> None:
    graph_api.add_comment("17950000000000004", "6000000000000044")
    words = " ".join(f"word{n}" for n in range(300))
    image = "https://bank.example.com/card.png"
    where = post("instagram", "17950000000000004", "private")
    send(
        channel_for("instagram", graph_api),
        OutboundMessage("instagram:6000000000000044", words, image=image, public_post=where),
    )
    [private] = graph_api.calls("messages")
    text = private["message"]["text"]
    assert len(text) <= 1000 and text.endswith("…") and words.startswith(text[:-1])


def test_a_message_to_a_commenter_never_reached_privately_is_refused(graph_api: FakeMetaSendAPI) -> None:
    channel = channel_for("messenger", graph_api)
    message = OutboundMessage("messenger:commenter:5550005", "Ana here.", sent_by_agent=True)
    reason = channel.refusal(message, 0)
    assert reason and "private reply to their comment" in reason
    with pytest.raises(DeliveryError, match="private reply to their comment") as error:
        send(channel, message)
    assert error.value.permanent
    assert graph_api.calls("messages") == []


# --- end to end through `crowddesk run`'s server -------------------------------------------------


def deliver(bot: MetaBot, platform: str, *events: dict[str, Any], changes: Any = (), secret: str = APP_SECRET) -> int:
    body, headers = signed(webhook_body(platform, *events, changes=changes), secret)
    return bot.client.post(f"/webhooks/{platform}/webhook", content=body, headers=headers).status_code


def facebook_comment(bot: MetaBot, text: str) -> tuple[str, str, str]:
    """A new customer comments on the Page's post; their user id, the comment id and their PSID."""
    user, comment_id, psid = new_id(), f"900001_{new_id()}", f"61{new_id()}"
    bot.api.add_comment(comment_id, psid)
    assert deliver(bot, "messenger", changes=[page_comment(comment_id, user, text)]) == 200
    return user, comment_id, psid


def replies_under(bot: MetaBot, comment_id: str, count: int = 1) -> list[str]:
    calls = bot.api.wait_for("comment_replies", count, where=lambda call: call["comment_id"] == comment_id)
    return [call["message"] for call in calls]


def private_reply(bot: MetaBot, comment_id: str) -> dict[str, Any]:
    [call] = bot.api.wait_for("messages", where=lambda call: call["recipient"].get("comment_id") == comment_id)
    return call


def private_reply_delivered(bot: MetaBot, comment_id: str, sender_id: str) -> dict[str, Any]:
    """The private reply to `comment_id`, once the channel has also taken in Meta's answer to it
    (the outbox has nothing left for `sender_id`)."""
    call = private_reply(bot, comment_id)
    wait_until(lambda: not [r for r in bot.bot.outbox.records("pending") if r.message.recipient_id == sender_id])
    return call


def messages_to(bot: MetaBot, messaging_id: str, count: int = 1) -> list[dict[str, Any]]:
    return bot.api.wait_for("messages", count, where=lambda call: call["recipient"].get("id") == messaging_id)


def user_texts(bot: MetaBot, sender_id: str) -> list[str]:
    events = bot.client.get(f"/conversations/{sender_id}/tracker", headers=API_AUTH).json()["events"]
    return [event["text"] for event in events if event["event"] == "user"]


def tickets_of(bot: MetaBot, sender_id: str) -> list[Any]:
    return [ticket for ticket in bot.bot.conversations.list_handoffs() if ticket.sender_id == sender_id]


def test_an_instagram_question_is_answered_under_the_comment(meta_bot: MetaBot) -> None:
    user, comment_id = f"60{new_id()}", new_id()
    comment = instagram_comment(comment_id, user, "How long does it take for a new card to arrive?")
    assert deliver(meta_bot, "instagram", changes=[comment]) == 200
    [answer] = replies_under(meta_bot, comment_id)
    assert "Source: https://" in answer
    assert meta_bot.api.calls("messages", where=lambda call: comment_id in call["recipient"].values()) == []


def test_an_account_question_moves_to_messenger_as_one_conversation_and_one_ticket(meta_bot: MetaBot) -> None:
    user, comment_id, psid = facebook_comment(meta_bot, "my card was charged twice")
    conversation = f"messenger:commenter:{user}"
    assert replies_under(meta_bot, comment_id) == [ACKNOWLEDGEMENT]
    assert private_reply_delivered(meta_bot, comment_id, conversation)["message"]["text"]

    assert (
        deliver(meta_bot, "messenger", text_message("messenger", psid, "I want to talk to a person", f"m_{psid}"))
        == 200
    )
    messages_to(meta_bot, psid)
    assert user_texts(meta_bot, conversation) == ["my card was charged twice", "I want to talk to a person"]
    assert user_texts(meta_bot, f"messenger:{psid}") == []
    [ticket] = tickets_of(meta_bot, conversation)
    transcript = [line["text"] for line in ticket.packet["transcript"] if line["role"] == "customer"]
    assert transcript == ["my card was charged twice", "I want to talk to a person"]
    assert replies_under(meta_bot, comment_id) == [ACKNOWLEDGEMENT]  # nothing else was said in public


def test_a_card_number_in_a_comment_is_never_posted_in_public(meta_bot: MetaBot) -> None:
    _, comment_id, _ = facebook_comment(meta_bot, f"is my card {CARD_NUMBER} blocked?")
    replies_under(meta_bot, comment_id)
    private_reply(meta_bot, comment_id)
    digits = CARD_NUMBER.replace(" ", "")
    assert all(digits not in call["message"].replace(" ", "") for call in meta_bot.api.calls("comment_replies"))


def test_a_frustrated_comment_is_a_high_priority_ticket(meta_bot: MetaBot) -> None:
    user, comment_id, _ = facebook_comment(meta_bot, "your app is useless, nobody helps")
    assert replies_under(meta_bot, comment_id) == [ACKNOWLEDGEMENT]
    private_reply(meta_bot, comment_id)
    [ticket] = tickets_of(meta_bot, f"messenger:commenter:{user}")
    assert ticket.priority == "high"
    assert ticket.packet["priority_reasons"] == ["frustrated"]


def test_a_redelivered_comment_is_answered_once(meta_bot: MetaBot) -> None:
    user, comment_id = f"60{new_id()}", new_id()
    comment = instagram_comment(comment_id, user, "How long does it take for a new card to arrive?")
    assert deliver(meta_bot, "instagram", changes=[comment]) == 200
    assert deliver(meta_bot, "instagram", changes=[comment]) == 200
    deliver(meta_bot, "instagram", text_message("instagram", user, "/thanks", f"m_{user}"))
    messages_to(meta_bot, user)  # one customer's replies go out in order: a second answer would be out by now
    assert len(replies_under(meta_bot, comment_id)) == 1
    assert user_texts(meta_bot, f"instagram:{user}") == ["How long does it take for a new card to arrive?", "/thanks"]


def test_a_forged_comment_is_rejected_and_nothing_is_stored(meta_bot: MetaBot) -> None:
    user = new_id()
    comment = page_comment(f"900001_{new_id()}", user, "my card was charged twice")
    assert deliver(meta_bot, "messenger", changes=[comment], secret="forged") == 403
    assert user_texts(meta_bot, f"messenger:commenter:{user}") == []


def test_an_agents_reply_reaches_the_commenter_in_messenger_once_they_answer_never_in_public(
    meta_bot: MetaBot,
) -> None:
    user, comment_id, psid = facebook_comment(meta_bot, "I want to talk to a person about a refund")
    conversation = f"messenger:commenter:{user}"
    assert replies_under(meta_bot, comment_id) == [ACKNOWLEDGEMENT]
    private_reply_delivered(meta_bot, comment_id, conversation)
    [ticket] = tickets_of(meta_bot, conversation)
    client, auth = meta_bot.client, agent_headers(meta_bot.bot)
    assert client.post(f"/desk/api/tickets/{ticket.id}/claim", headers=auth).status_code == 200
    reply = "Hi, Ana here. I've refunded the duplicate payment."

    # Meta takes no message after a private reply until the customer answers it.
    early = client.post(f"/desk/api/tickets/{ticket.id}/reply", headers=auth, json={"text": reply})
    assert early.status_code == 409
    assert "not answered the private reply to their comment yet" in early.json()["error"]
    answer = text_message("messenger", psid, "thanks, it was on Monday", f"m_{psid}")
    assert deliver(meta_bot, "messenger", answer) == 200

    response = client.post(f"/desk/api/tickets/{ticket.id}/reply", headers=auth, json={"text": reply})
    assert response.status_code == 200, response.text
    [call] = messages_to(meta_bot, psid)
    assert call["message"]["text"] == reply
    assert all(reply not in call["message"] for call in meta_bot.api.calls("comment_replies"))


def test_an_agents_reply_to_a_commenter_the_private_reply_missed_is_refused(meta_bot: MetaBot) -> None:
    user, comment_id = new_id(), f"900001_{new_id()}"
    meta_bot.api.add_comment(comment_id, f"61{user}")
    meta_bot.api.refuse_next(400, 10, "This message is sent outside of allowed window.", 2018278, to=comment_id)
    assert deliver(meta_bot, "messenger", changes=[page_comment(comment_id, user, "I want to talk to a person")]) == 200
    assert replies_under(meta_bot, comment_id) == [ACKNOWLEDGEMENT]
    [ticket] = tickets_of(meta_bot, f"messenger:commenter:{user}")
    client, auth = meta_bot.client, agent_headers(meta_bot.bot)
    assert client.post(f"/desk/api/tickets/{ticket.id}/claim", headers=auth).status_code == 200
    response = client.post(f"/desk/api/tickets/{ticket.id}/reply", headers=auth, json={"text": "Still there?"})
    assert response.status_code == 409
    assert "private reply to their comment" in response.json()["error"]
