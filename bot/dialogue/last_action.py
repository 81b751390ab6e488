"""Whether the bot's previous reply was a knowledge-base answer the customer could now reject,
remembered per conversation so most turns need not read the history for it."""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime

from crowddesk.bot.conversations.store import ConversationRecord
from crowddesk.bot.dialogue.turn import History, Turn, last_bot_action

ANSWER_ACTION = "action_answer_from_kb"
# Conversations whose last bot action is remembered; the oldest are forgotten first.
REMEMBERED_CONVERSATIONS = 10_000


class LastActionMemory:
    def __init__(self) -> None:
        # sender -> (updated_at this engine wrote, was the bot's last action an automated answer).
        self._last_action: OrderedDict[str, tuple[datetime, bool]] = OrderedDict()

    async def answered_automatically(self, turn: Turn) -> bool:
        """Remembered from the turn this engine last saved, while the stored conversation is still
        the one it saved (same `updated_at`); otherwise read from the turn's history."""
        record = turn.record
        if record is None:
            return False
        remembered = self._last_action.get(record.sender_id)
        if remembered is not None and remembered[0] == record.updated_at:
            return remembered[1]
        return last_bot_action(await turn.history()) == ANSWER_ACTION

    def remember(self, saved: ConversationRecord, turn_events: History, previous: bool) -> None:
        """After a turn is saved: its last bot action, or `previous` when it had none."""
        action = last_bot_action(turn_events)
        automated = previous if action is None else action == ANSWER_ACTION
        self._last_action[saved.sender_id] = (saved.updated_at, automated)
        self._last_action.move_to_end(saved.sender_id)
        if len(self._last_action) > REMEMBERED_CONVERSATIONS:
            self._last_action.popitem(last=False)

    def forget(self, sender_id: str) -> None:
        """Someone else (an agent) writes to the conversation: what is remembered is stale."""
        self._last_action.pop(sender_id, None)
