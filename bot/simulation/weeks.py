"""The demo's first look: the weeks before now, played by the project's simulated traffic, so the
scorecard and `/analytics` show weeks of work on a fresh database, the last one compared with the
one before."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta

from sqlalchemy import Engine as SqlEngine
from sqlalchemy import exists, select
from sqlalchemy.orm import Session

from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.store import ConversationRow
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.project.loading import Project
from crowddesk.bot.simulation import MAX_WEEKS
from crowddesk.bot.simulation.operation import Operation, Played
from crowddesk.bot.simulation.team import Staffing
from crowddesk.bot.simulation.traffic_file import read_traffic
from crowddesk.connectors.types import OutboundMessage
from crowddesk.errors import Conflict, Rejected

SEED = 0


class Unsent(Outbox):
    """Simulated customers are on no platform: what agents write them stays in the conversation,
    never queued for a delivery that would fail (or reach a real account with the same id)."""

    def stage(self, session: Session, channel: str, messages: Iterable[OutboundMessage]) -> None:
        return None


def holds_conversations(database: SqlEngine) -> bool:
    with Session(database) as session:
        return bool(session.scalar(select(exists().where(ConversationRow.id.is_not(None)))))


async def simulate_weeks(
    project: Project,
    engine: Engine,
    agents: AgentDirectory,
    database: SqlEngine,
    now: datetime,
    weeks: int,
    progress: Callable[[datetime, Played], None] | None = None,
) -> Played:
    """Play the `weeks` up to `now` (from midnight UTC `weeks` weeks before) through the engine
    and the desk. Conflict when the database already holds conversations: the weeks would mix
    with them, and a second run would continue the first one's customers."""
    if not 1 <= weeks <= MAX_WEEKS:
        raise Rejected(f"simulate 1 to {MAX_WEEKS} weeks, not {weeks}")
    traffic, team_size = read_traffic(project)
    if holds_conversations(database):
        raise Conflict("the database already holds conversations; a simulation fills an empty one only")
    since = (now - timedelta(weeks=weeks)).replace(hour=0, minute=0, second=0, microsecond=0)
    operation = Operation(
        engine,
        agents,
        TicketDesk(database, Unsent(database)),
        SlaMonitor(database, project.config.policy.handoff.sla),
        project.config.policy.handoff_intents,
        Staffing(team_size),
        seed=SEED,
    )
    return await operation.play(traffic, since, now, progress)
