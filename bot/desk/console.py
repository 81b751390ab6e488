"""The agent desk web console (`/desk`): one page plus its scripts and stylesheet, from `bot/static/`.

The page talks only to the agent API (`/desk/api`); this router serves files and nothing else.
"""

from fastapi import APIRouter

from crowddesk.bot.web.consoles import console_router

# dom.js and session.js (element helpers, the shared sign-in) and the base stylesheet are
# loaded from here by every console.
ASSETS = {
    "desk.js": "text/javascript",
    "desk.css": "text/css",
    "dom.js": "text/javascript",
    "session.js": "text/javascript",
}


def desk_console_router() -> APIRouter:
    return console_router("/desk", "desk.html", ASSETS)
