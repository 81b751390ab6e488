"""Comments on a Facebook Page's posts and on an Instagram account's media: Meta's `feed` and
`comments` webhook changes in, replies under the comment and Meta's private replies out.

A new comment becomes an `InboundMessage` with `metadata["public_post"]`
(`crowddesk.bot.dialogue.public_posts` decides what may be said in public) and the comment id as
`message_id`, so a redelivered comment is answered once. Instagram comments come from
`instagram:<IGSID>`, the id the commenter's Direct messages come from. A Facebook comment's
author id is an app-scoped user id, which the Send API does not take and Messenger messages do
not come from (those carry a Page-scoped PSID), so a Facebook comment's conversation is
`messenger:commenter:<user id>`; the private reply's response names the commenter's PSID, and
from then on the customer's Messenger messages continue that conversation and its replies go to
the PSID.

A public reply goes under the comment; a private one posts only the acknowledgement there, then
sends the message as Meta's private reply (the Send API with `recipient.comment_id`), which
Meta allows once per comment, within 7 days of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Protocol

from crowddesk.connectors.base import DeliveryError
from crowddesk.connectors.memory import ChannelMemory
from crowddesk.connectors.numbered_buttons import chosen_payload, numbered_text
from crowddesk.connectors.reply_rate import ReplyRate
from crowddesk.connectors.segments import split_text
from crowddesk.connectors.types import InboundMessage, OutboundMessage

# Channel memory keys: a commenter's PSID (under the conversation's sender id), the conversation
# a PSID's messages continue (under `messenger:<PSID>`), a part already posted under a comment.
PSID_KEY = "commenter_psid"
CONVERSATION_KEY = "commenter_conversation"
# Under the conversation's sender id while its private reply waits for the customer's answer:
# Meta takes no other message to them until they write.
UNANSWERED_KEY = "private_reply_unanswered"
_POSTED_KEY = "posted_comment:"
_UNREACHED = (
    "the customer has only commented on the Facebook Page, and Messenger reaches a commenter only "
    "once the private reply to their comment has gone out, which it has not; answer under their "
    "comment on Facebook"
)
_UNANSWERED = (
    "the customer has not answered the private reply to their comment yet, and Meta takes no other "
    "message to them until they do: send it once they write"
)


@dataclass(frozen=True)
class Comment:
    """A new comment someone other than the account wrote."""

    comment_id: str
    post_id: str
    """The post or media commented on."""
    author_id: str
    author: str
    text: str
    url: str | None = None


def facebook_comment(page_id: str, value: Mapping[str, Any]) -> Comment | None:
    """The comment a Page `feed` change adds; None for other changes (posts, reactions, edits,
    removals), the Page's own comments and comments without text (a sticker, a photo)."""
    if value.get("item") != "comment" or value.get("verb") != "add":
        return None
    author, post = _object(value, "from"), _object(value, "post")
    permalink = post.get("permalink_url")
    return _comment(
        page_id,
        value.get("comment_id"),
        value.get("post_id"),
        author.get("id"),
        author.get("name"),
        value.get("message"),
        permalink if isinstance(permalink, str) else None,
    )


def instagram_comment(account_id: str, value: Mapping[str, Any]) -> Comment | None:
    """The comment of an Instagram `comments` change; None for the account's own comments and
    comments without text."""
    author, media = _object(value, "from"), _object(value, "media")
    return _comment(
        account_id, value.get("id"), media.get("id"), author.get("id"), author.get("username"), value.get("text")
    )


def _object(value: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    found = value.get(key)
    return found if isinstance(found, dict) else {}


def _comment(
    account_id: str, comment_id: Any, post_id: Any, author_id: Any, author: Any, text: Any, url: str | None = None
) -> Comment | None:
    if not all(isinstance(field, str) and field for field in (comment_id, post_id, author_id)):
        return None  # nothing to reply under or nobody to answer
    if author_id == account_id or not isinstance(text, str) or not text.strip():
        return None
    return Comment(comment_id, post_id, author_id, author if isinstance(author, str) else "", text, url)


@dataclass(frozen=True)
class CommentPlatform:
    """Where one platform's comments arrive and how they are answered."""

    name: str
    """`public_post["platform"]`."""
    change_field: str
    """The webhook field of new comments."""
    reply_edge: str
    """The Graph edge that replies under a comment."""
    max_reply_characters: int
    parse: Callable[[str, Mapping[str, Any]], Comment | None]
    commenter_namespace: str | None = None
    """Set where a commenter's id is not the id they message from: their conversation is
    `<channel>:<namespace><author id>` until a private reply names their messaging id."""


FACEBOOK = CommentPlatform("facebook", "feed", "comments", 8000, facebook_comment, "commenter:")
INSTAGRAM = CommentPlatform("instagram", "comments", "replies", 2200, instagram_comment)


class GraphChannel(Protocol):
    """What comments need of their Messenger or Instagram channel."""

    @property
    def max_text_characters(self) -> int: ...

    @property
    def memory(self) -> ChannelMemory: ...

    @property
    def sender_prefix(self) -> str: ...

    async def graph_post(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        """POST `body` to the Graph API's `path`; its JSON answer, or a `DeliveryError`."""
        ...

    async def message_contents(self, recipient_id: str, message: OutboundMessage) -> list[dict[str, Any]]:
        """The Send API `message` objects `message` takes."""
        ...


class Comments:
    """One channel's comments: the webhook's changes in, public and private replies out."""

    def __init__(self, platform: CommentPlatform, channel_name: str, channel: GraphChannel) -> None:
        self.platform = platform
        self._channel_name = channel_name
        self._channel = channel
        self._reply_rate = ReplyRate()

    @property
    def _commenters(self) -> str | None:
        """The sender id prefix of commenters' conversations (`messenger:commenter:`), where the
        platform has them."""
        namespace = self.platform.commenter_namespace
        return None if namespace is None else self._channel.sender_prefix + namespace

    async def inbound(self, entry: Mapping[str, Any]) -> list[InboundMessage]:
        """The new comments among one webhook entry's `changes`, as messages from public posts."""
        account = str(entry.get("id") or "")
        messages = []
        for change in entry.get("changes") or ():
            if not isinstance(change, dict) or change.get("field") != self.platform.change_field:
                continue
            value = change.get("value")
            if not isinstance(value, dict):
                continue
            comment = self.platform.parse(account, value)
            if comment is not None:
                messages.append(await self._message(comment))
        return messages

    async def _message(self, comment: Comment) -> InboundMessage:
        sender_id = (self._commenters or self._channel.sender_prefix) + comment.author_id
        post = {
            "platform": self.platform.name,
            "post_id": comment.comment_id,
            "author": comment.author,
            "followers": None,  # the webhook does not say, and asking the Graph API per comment costs a call
            "replies_last_hour": self._reply_rate.add(comment.post_id, comment.comment_id, time.time()),
            "url": comment.url,
        }
        # A number answers a numbered list offered in an earlier public reply.
        text = await chosen_payload(self._channel.memory, sender_id, comment.text)
        return InboundMessage(
            self._channel_name, sender_id, text, message_id=comment.comment_id, metadata={"public_post": post}
        )

    async def customer_wrote(self, sender_id: str) -> str:
        """The conversation a private message from `sender_id` continues (the comment's it
        answers, when a private reply linked them, or its own); the private reply is answered
        now, so messages may follow it."""
        conversation = sender_id
        if self._commenters is not None:
            linked = await asyncio.to_thread(self._channel.memory.recall, sender_id, CONVERSATION_KEY)
            conversation = linked if isinstance(linked, str) else sender_id
        await asyncio.to_thread(self._channel.memory.remember, conversation, UNANSWERED_KEY, None)
        return conversation

    def refusal(self, message: OutboundMessage) -> str | None:
        """Why a private message cannot reach a commenter yet: no private reply has named the id
        Messenger reaches them by, or they have not answered it. None for everyone else."""
        if message.public_post is not None:
            return None
        memory = self._channel.memory
        if self._is_commenter(message.recipient_id) and memory.recall(message.recipient_id, PSID_KEY) is None:
            return _UNREACHED
        return _UNANSWERED if memory.recall(message.recipient_id, UNANSWERED_KEY) is not None else None

    async def messaging_id(self, message: OutboundMessage) -> str:
        """The id the Send API knows the message's recipient by; a permanent `DeliveryError`
        with the reason when the message cannot reach them yet (`refusal`)."""
        reason = await asyncio.to_thread(self.refusal, message)
        if reason is not None:
            raise DeliveryError(reason, permanent=True)
        if not self._is_commenter(message.recipient_id):
            return message.recipient_id.removeprefix(self._channel.sender_prefix)
        return str(await asyncio.to_thread(self._channel.memory.recall, message.recipient_id, PSID_KEY))

    def _is_commenter(self, sender_id: str) -> bool:
        """`sender_id` is a commenter's conversation, not a messaging id."""
        commenters = self._commenters
        return commenters is not None and sender_id.startswith(commenters)

    async def reply(self, recipient_id: str, message: OutboundMessage) -> None:
        """Answer the comment `message.public_post` names: under it, or with the acknowledgement
        under it and the message as the comment's private reply."""
        post = message.public_post or {}
        comment_id = str(post["post_id"])
        if post.get("visibility") == "public":
            text = await numbered_text(self._channel.memory, recipient_id, message)
            await self._reply_in_public(recipient_id, comment_id, _with_image_link(text, message.image))
            return
        if post.get("acknowledgement"):
            await self._reply_in_public(recipient_id, comment_id, str(post["acknowledgement"]))
        await self._reply_in_private(recipient_id, comment_id, message)

    async def _reply_in_public(self, recipient_id: str, comment_id: str, text: str) -> None:
        """Post `text` under the comment, in parts when longer than a comment. The parts posted
        are remembered (the channel's memory, any server process), so a retried message does not
        post its acknowledgement or earlier parts twice."""
        memory = self._channel.memory
        for part in split_text(text, self.platform.max_reply_characters):
            key = _POSTED_KEY + hashlib.sha256(f"{comment_id}\n{part}".encode()).hexdigest()[:32]
            if await asyncio.to_thread(memory.recall, recipient_id, key) is not None:
                continue
            posted = await self._channel.graph_post(f"{comment_id}/{self.platform.reply_edge}", {"message": part})
            await asyncio.to_thread(memory.remember, recipient_id, key, str(posted.get("id") or comment_id))

    async def _reply_in_private(self, recipient_id: str, comment_id: str, message: OutboundMessage) -> None:
        """Send `message` as the comment's one private reply: its image goes as a link and a
        text longer than one message is shortened ("…"), since a second message could reach the
        customer only after they answer. On Facebook, link the PSID Meta answers with to the
        comment's conversation, both ways."""
        limit = self._channel.max_text_characters
        text = _with_image_link(message.text, message.image)
        if len(text) > limit:
            text = next(split_text(text, limit - 1)) + "…"
        contents = await self._channel.message_contents(recipient_id, replace(message, text=text, image=None))
        body = {"recipient": {"comment_id": comment_id}, "messaging_type": "RESPONSE", "message": contents[0]}
        answer = await self._channel.graph_post("me/messages", body)
        await asyncio.to_thread(self._channel.memory.remember, recipient_id, UNANSWERED_KEY, comment_id)
        psid = answer.get("recipient_id")
        if self._commenters is not None and isinstance(psid, str) and psid:
            memory = self._channel.memory
            await asyncio.to_thread(memory.remember, recipient_id, PSID_KEY, psid)
            await asyncio.to_thread(memory.remember, self._channel.sender_prefix + psid, CONVERSATION_KEY, recipient_id)


def _with_image_link(text: str, image: str | None) -> str:
    if not image:
        return text
    return f"{text}\n{image}" if text else image
