"""One customer message, one turn: the engine (understand, decide, act, store), the support
policy (respond, answer from the KB, clarify or hand off), the hand-off packet, answer feedback,
the rasa_sdk action client, and encoder batching across concurrent turns.

May import `bot/project/`, `bot/conversations/`, `bot/desk/` and the layers below `bot/`.
"""
