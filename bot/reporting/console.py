"""The dashboard's web console (`/analytics`): one page for every role, talking only to
`/analytics/api`.

It signs in through the desk API's `/login` and loads the desk's shared scripts and base styles.
"""

from fastapi import APIRouter

from crowddesk.bot.web.consoles import console_router

ASSETS = {"analytics.js": "text/javascript", "analytics.css": "text/css"}


def analytics_console_router() -> APIRouter:
    return console_router("/analytics", "analytics.html", ASSETS)
