"""Conversations as stored: the event log per sender, hand-off rows, inbound keys, the
persisted outbox and its delivery, the privacy audit log, and transcript redaction before a turn
is written. Tables are declared here, with the named states their rows take (`states.py`), and
their migrations in `migrations/`; `bot/server/database.py` upgrades them.

May import `bot/project/` and the layers below `bot/` (`errors/`, `storage/`, `knowledge_base/`,
`nlu/`, `connectors/`).
"""
