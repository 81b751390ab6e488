"""Everything held about one customer, exported or erased (CLI and HTTP), and the retention
policy that deletes old conversations and delivery bookkeeping.

May import `bot/project/`, `bot/conversations/`, `bot/desk/`, `bot/dialogue/` and the layers
below `bot/`.
"""
