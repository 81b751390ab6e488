"""The content team's side: the KB editor's HTTP API and console, and the gap report mined
from conversations (questions the bot could not answer).

May import `bot/project/`, `bot/conversations/`, `bot/desk/`, `bot/dialogue/`, `bot/web/` and
the layers below `bot/`.
"""
