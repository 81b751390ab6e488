"""Choosing the bot's next action from the conversation so far, as Rasa's dialogue policies do:
rules (RulePolicy), remembered story turns (MemoizationPolicy), and the training events both
are built from. States come from `bot/dialogue/tracker.py`.

May import `bot/project/`, `bot/dialogue/tracker.py` and the layers below `bot/`.
"""
