"""The scorecard a support lead reads every week: volume, what the bot answered on its own, how
fast people replied, the SLA, CSAT and the entries customers found unhelpful, each metric defined
once and computed by the database.

May import `bot/project/`, `bot/conversations/`, `bot/desk/`, `bot/dialogue/`, `bot/web/` and
the layers below `bot/`.
"""
