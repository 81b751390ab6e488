"""The dashboard's API (`/analytics/api`): a period's scorecard with its charts, and the content
team's top gaps of the same period.

Every call needs `Authorization: Bearer <token>`. Any account reads the scorecard: agents see the
team's figures and their own ticket count, never a colleague's; editors and admins see every
agent's. The gaps quote customers' questions from conversations agents never handled, so, as on
`/kb/api/gaps`, they are for editors and admins.
No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
"""

import asyncio
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy import Engine

from crowddesk.bot.curation.gaps import clustered_gaps, unanswered_questions
from crowddesk.bot.desk.agents import Agent
from crowddesk.bot.desk.auth import SignedIn, holder_of
from crowddesk.bot.reporting.charts import scorecard_charts, top_gaps
from crowddesk.bot.reporting.period import Period, period_from
from crowddesk.bot.reporting.scorecard import Figures, Scorecard, channels, scorecard
from crowddesk.bot.web.services import provided
from crowddesk.errors import Rejected
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.redaction import Redactor

# One bar a day: a longer period would be unreadable, and slow to compute.
MAX_LENGTH = timedelta(days=366)
# Event times are Unix timestamps: nothing happened before, and the comparison period must exist.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
# The gap report encodes every question it clusters; beyond this many, only the most recent.
MAX_GAP_QUESTIONS = 2000

router = APIRouter(prefix="/analytics/api", tags=["analytics"])

Database = Annotated[Engine, Depends(provided(Engine))]
GapReader = Annotated[Agent, Depends(holder_of("editor", "role {role!r} can't read the gap report"))]
Live = Annotated[LiveIndex, Depends(provided(LiveIndex))]
RedactorDep = Annotated[Redactor, Depends(provided(Redactor))]
Since = Annotated[
    str | None,
    Query(
        max_length=64, description="start, ISO date or date and time, UTC unless it says (default: 7 days before until)"
    ),
]
Until = Annotated[str | None, Query(max_length=64, description="end, not included (default: now)")]


@router.get("/scorecard", summary="A period's scorecard against the one before, by day, with its charts as SVG")
async def scorecard_view(
    agent: SignedIn,
    database: Database,
    since: Since = None,
    until: Until = None,
    channel: str | None = Query(None, max_length=64, description="only this channel's conversations"),
) -> dict[str, Any]:
    period = dashboard_period(since, until, channel)
    return await asyncio.to_thread(_scorecard_view, database, period, agent)


@router.get("/gaps", summary="The largest groups of unanswered questions of a period, as on /kb/api/gaps, with a chart")
async def gaps_view(
    _: GapReader,
    database: Database,
    live: Live,
    redactor: RedactorDep,
    since: Since = None,
    until: Until = None,
    limit: int = Query(10, ge=1, le=50, description="how many groups"),
) -> dict[str, Any]:
    period = dashboard_period(since, until, None)
    questions = await asyncio.to_thread(unanswered_questions, database, period.since, period.until)
    recent = sorted(questions, key=lambda question: question.timestamp)[-MAX_GAP_QUESTIONS:]
    clusters = await asyncio.to_thread(clustered_gaps, database, live.knowledge_base.encoder, recent, redactor=redactor)
    largest = clusters[:limit]
    return {
        "period": period.as_dict(),
        "questions": len(questions),
        "clustered": len(recent),
        "note": f"only the {MAX_GAP_QUESTIONS} most recent questions of a period are grouped",
        "clusters": [cluster.as_dict() for cluster in largest],
        "chart": top_gaps([(cluster.examples[0], cluster.size) for cluster in largest]),
    }


def dashboard_period(since: str | None, until: str | None, channel: str | None) -> Period:
    """The period the query asks for (the last 7 days by default); Rejected when it cannot be shown."""
    try:
        period = period_from(since, until, channel, datetime.now(UTC))
    except OverflowError:  # a date at the very end of the calendar, moved to UTC or back 7 days
        raise Rejected("the period reaches past the dates a calendar holds (years 1 to 9999)") from None
    if period.length > MAX_LENGTH:
        raise Rejected(f"the dashboard shows at most {MAX_LENGTH.days} days; this period has {period.length.days}")
    if period.since < EARLIEST:
        raise Rejected(f"the period starts before {EARLIEST:%Y-%m-%d}, when no conversation can have happened")
    return period


def seen_by(agent: Agent, card: Scorecard) -> Scorecard:
    """`card` as `agent` may see it: editors and admins all of it; an agent the team's figures with
    only their own ticket count (no colleague's id appears anywhere else in a scorecard by day)."""
    if agent.can("editor"):
        return card
    return replace(card, current=_own_tickets(card.current, agent.id), previous=_own_tickets(card.previous, agent.id))


def _scorecard_view(database: Engine, period: Period, agent: Agent) -> dict[str, Any]:
    known_channels = channels(database)
    if period.channel is not None and period.channel not in known_channels:
        known = ", ".join(known_channels) or "none yet"
        raise Rejected(f"no conversation came through channel {period.channel!r}; channels: {known}")
    card = seen_by(agent, scorecard(database, period, "day"))
    return {
        "scorecard": card.as_dict(),
        "headline": [{**h.as_dict(), "label": h.label, "unit": h.unit} for h in card.headline()],
        "channels": known_channels,
        "charts": scorecard_charts(card),
    }


def _own_tickets(figures: Figures, agent_id: str) -> Figures:
    return replace(figures, tickets_per_agent={agent_id: figures.tickets_per_agent.get(agent_id, 0)})
