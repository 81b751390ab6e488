"""What several server processes share besides the database: the Redis connection, the turn locks
that run one conversation's turns one at a time across processes, and the live pushes that reach a
web chat widget whichever process holds its socket.

A leaf of `bot/`: imports nothing of CrowdDesk but `crowddesk.errors`, and Redis's client.
"""
