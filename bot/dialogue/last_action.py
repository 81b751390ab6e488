"""Whether the bot's previous reply was a knowledge-base answer the customer could now reject."""

from __future__ import annotations

from crowddesk.bot.dialogue.turn import History, last_bot_action

ANSWER_ACTION = "action_answer_from_kb"


def answered_automatically(history: History) -> bool:
    """The bot's last action in `history` (the conversation before this turn) was a knowledge-base answer."""
    return last_bot_action(history) == ANSWER_ACTION
