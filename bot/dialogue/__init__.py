"""One customer message, one turn: the engine (the message flow), the turn being built, the
interceptors that read ratings and answer feedback before NLU, the support policy (respond,
answer from the KB, clarify or hand off), one executor per decision kind, slots, custom actions
and the rasa_sdk action client, the hand-off packet, and encoder batching across concurrent turns.

May import `bot/project/`, `bot/conversations/`, `bot/desk/` and the layers below `bot/`.
"""
