"""The content team's web console (`/kb`): one page for editors, talking only to `/kb/api`.

It signs in through the desk API's `/login` and loads the desk's shared scripts and base styles.
"""

from fastapi import APIRouter

from crowddesk.bot.web.consoles import console_router

ASSETS = {"kb.js": "text/javascript", "kb.css": "text/css"}


def kb_console_router() -> APIRouter:
    return console_router("/kb", "kb.html", ASSETS)
