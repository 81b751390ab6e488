"""The scorecard a support lead reads every week: volume, what the bot answered on its own, how
fast people replied, the SLA, CSAT and the entries customers found unhelpful, each metric defined
once and computed by the database; and the `/analytics` dashboard that shows it with charts, next
to the content team's gap report.

May import `bot/project/`, `bot/conversations/`, `bot/desk/`, `bot/dialogue/`, `bot/curation/`
(the gap report), `bot/web/` and the layers below `bot/`.
"""
