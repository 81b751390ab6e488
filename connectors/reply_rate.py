"""How fast a public post gains replies: one of the signs it could go viral (X mentions, Facebook
and Instagram comments)."""

from __future__ import annotations

from collections import OrderedDict

REPLY_RATE_WINDOW_SECONDS = 3600.0
MAX_WATCHED_THREADS = 10_000


class ReplyRate:
    """Replies the webhook delivered in the last hour per post, counted by this process: a thread
    gaining replies fast (bystanders joining a complaint) is one that could go viral."""

    def __init__(self) -> None:
        self._seen: OrderedDict[str, dict[str, float]] = OrderedDict()

    def add(self, parent_id: str, reply_id: str, now: float) -> int:
        """Count reply `reply_id` to `parent_id` (once, however often it is delivered); how many
        replies to it arrived in the last hour, this one included."""
        replies = self._seen.setdefault(parent_id, {})
        self._seen.move_to_end(parent_id)
        replies.setdefault(reply_id, now)
        for old in [reply for reply, seen in replies.items() if seen < now - REPLY_RATE_WINDOW_SECONDS]:
            del replies[old]
        while len(self._seen) > MAX_WATCHED_THREADS:
            self._seen.popitem(last=False)
        return len(replies)
