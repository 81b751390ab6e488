"""What the bot may say under a public post (an X mention; Facebook and Instagram comments).

A connector marks a message written in public with `metadata["public_post"]`: the platform, the
post to reply under (`post_id`), the author's handle, `followers` and `replies_last_hour` (None
when the platform does not say) and the post's `url`. Its sender id is the customer's private
identity on that platform, so the public post and the private messages after it are one
conversation and one ticket.

The bot answers in public only when nothing personal is said: the turn did not hand off, the
customer's message holds no personal data and no first-person account cue ("my card", "my
order"), and no reply holds personal data. Otherwise the turn's replies become ONE private
message (Meta's private replies allow one per comment) and only the configured acknowledgement
is posted in public. A post that could go viral (frustration, a large audience, replies coming
fast) goes to a person with high priority, its reasons in the ticket's packet.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from crowddesk.bot.dialogue.policy import Decision, DecisionKind, HandoffReason
from crowddesk.bot.project.config import PublicPostSettings
from crowddesk.connectors.types import InboundMessage, OutboundMessage
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.nlu.frustration import FrustrationScore

PUBLIC_POST_KEY = "public_post"
"""The `InboundMessage.metadata` key connectors put a public post's details under."""
# "my card", "my last order", "our joint account": the customer talks about their own account,
# which is answered in private even when the words hold no personal data.
_ACCOUNT_CUE = re.compile(
    r"\b(?:my|our)\s+(?:\w+\s+)?(?:account|order|card|booking|bill|payment|refund|number)s?\b", re.IGNORECASE
)
PRIVATE_MESSAGE_SEPARATOR = "\n\n"


class Visibility(StrEnum):
    PUBLIC = "public"
    """Reply under the post, for everyone to read."""
    PRIVATE = "private"
    """Post only the acknowledgement under it; the replies go in a private message."""


def public_post(message: InboundMessage) -> dict[str, Any] | None:
    """The public post `message` was written in, or None for a private message."""
    post = message.metadata.get(PUBLIC_POST_KEY)
    return post if isinstance(post, dict) else None


@dataclass(frozen=True)
class PublicPostRule:
    """Applies config.yml's `public_posts:` block to the turns of public posts."""

    settings: PublicPostSettings
    redactor: Redactor
    """The project's PII rules (`redact_patterns` included): what counts as personal data."""

    def viral_risk(self, message: InboundMessage, frustration: FrustrationScore) -> tuple[str, ...]:
        """Why a public post could go viral ("frustrated", "12,400 followers", "25 replies in
        the last hour"); empty for a private message or a quiet post."""
        post = public_post(message)
        if post is None:
            return ()
        reasons = ["frustrated"] if frustration.signals else []
        followers, replies = post.get("followers"), post.get("replies_last_hour")
        if isinstance(followers, int) and followers >= self.settings.high_priority_followers:
            reasons.append(f"{followers:,} followers")
        if isinstance(replies, int) and replies >= self.settings.high_priority_replies_per_hour:
            reasons.append(f"{replies:,} replies in the last hour")
        return tuple(reasons)

    def escalate(self, message: InboundMessage, frustration: FrustrationScore, decision: Decision) -> Decision:
        """`decision`, or for a public post at risk a high-priority hand-off naming the risks (the
        policy's own hand-off reason is kept when it already handed off)."""
        reasons = self.viral_risk(message, frustration)
        if not reasons:
            return decision
        if decision.kind is not DecisionKind.HAND_OFF:
            decision = Decision(
                DecisionKind.HAND_OFF,
                decision.confidence,
                handoff_reason=HandoffReason.PUBLIC_POST,
                handoff_detail=", ".join(reasons),
            )
        return replace(decision, priority_reasons=reasons)

    def visibility(self, message: InboundMessage, replies: Sequence[OutboundMessage], handed_off: bool) -> Visibility:
        """Public only when neither the question, the answer nor a hand-off is about the customer."""
        if handed_off or self.account_specific(message.text):
            return Visibility.PRIVATE
        if any(self._personal(reply.text) for reply in replies):
            return Visibility.PRIVATE
        return Visibility.PUBLIC

    def account_specific(self, text: str) -> bool:
        """The customer's words hold personal data or talk about their own account."""
        return self._personal(text) or _ACCOUNT_CUE.search(text) is not None

    def deliver(
        self, message: InboundMessage, replies: list[OutboundMessage], *, handed_off: bool
    ) -> list[OutboundMessage]:
        """The turn's replies as the channel must send them: unchanged for a private message;
        for a public post stamped with their visibility, and merged into one private message
        (texts apart by a blank line, the last buttons) when they may not be read in public."""
        post = public_post(message)
        if post is None or not replies:
            return replies
        visibility = self.visibility(message, replies, handed_off)
        if visibility is Visibility.PUBLIC:
            return [replace(reply, public_post={**post, "visibility": visibility.value}) for reply in replies]
        private = {**post, "visibility": visibility.value, "acknowledgement": self.settings.acknowledgement}
        merged = OutboundMessage(
            recipient_id=replies[0].recipient_id,
            text=PRIVATE_MESSAGE_SEPARATOR.join(reply.text for reply in replies if reply.text),
            buttons=replies[-1].buttons,
            image=next((reply.image for reply in reversed(replies) if reply.image), None),
            custom={key: value for reply in replies for key, value in reply.custom.items()},
            public_post=private,
        )
        return [merged]

    def _personal(self, text: str) -> bool:
        return self.redactor.redact(text) != text
