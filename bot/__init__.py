"""The bot: Rasa project files, conversations, the dialogue turn, the hand-off desk, curation,
training, evaluation, the server and the CLI, one subpackage (room) each.

Rooms import one way, from the bottom up: `web`, `project` → `conversations` → `desk` →
`dialogue` → `privacy`, `curation`, `training`, `simulation` → `reporting` → `server` →
`evaluation` → `cli` (tests/test_architecture.py checks it).
"""
