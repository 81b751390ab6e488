"""The hand-off desk: tickets (one owner, an SLA clock, a clean way back), agent accounts and
sign-in, the agents' HTTP API and console, the SLA monitor, wait estimates, the satisfaction
question after a resolution, suggestions filed from resolved tickets, and the Slack desk. The
accounts', sign-in limits' and stream tickets' tables have their migrations in `migrations/`.

May import `bot/project/`, `bot/conversations/` and the layers below `bot/`.
"""
