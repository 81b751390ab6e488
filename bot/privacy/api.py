"""Admin API for a person's data: export it, erase it, and read the privacy audit log.

Every route needs an admin's bearer token (see `crowddesk desk agent token`); the audit log
names the admin as the actor.
No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query

from crowddesk.bot.conversations.audit import AuditLog
from crowddesk.bot.desk.agents import Agent
from crowddesk.bot.desk.auth import holder_of
from crowddesk.bot.privacy.customer_data import Privacy
from crowddesk.bot.web.services import provided
from crowddesk.errors import NotFound
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.nlu.cached_encoder import CachedEncoder

router = APIRouter(prefix="/privacy/api", tags=["privacy"])

Admin = Annotated[Agent, Depends(holder_of("admin", "only admins export, erase or audit personal data"))]
PrivacyDep = Annotated[Privacy, Depends(provided(Privacy))]


@router.get("/people/{sender_id}/export", summary="Everything held about a person, as JSON")
async def export(sender_id: str, agent: Admin, privacy: PrivacyDep) -> dict[str, Any]:
    document = await asyncio.to_thread(privacy.export, sender_id, agent.id)
    if document is None:
        raise NotFound(f"nothing is held about {sender_id!r}")
    return document


@router.delete(
    "/people/{sender_id}",
    summary="Erase everything held about a person "
    "(and the text of KB entries approved from their tickets); counts by table",
)
async def erase(
    sender_id: str,
    agent: Admin,
    privacy: PrivacyDep,
    # The server's index and the vectors of recent messages must let go of erased text too.
    live: Annotated[LiveIndex, Depends(provided(LiveIndex))],
    encoder_cache: Annotated[CachedEncoder, Depends(provided(CachedEncoder))],
) -> dict[str, Any]:
    erased = await asyncio.to_thread(privacy.erase, sender_id, agent.id)
    if not erased.anything:
        raise NotFound(f"nothing is held about {sender_id!r}")
    encoder_cache.forget(erased.texts)
    if erased.removed.get("kb_entries"):
        # Applying the change hides the entries at once; rebuilding the base drops their
        # vectors and text from the index in memory and on disk too.
        await asyncio.to_thread(live.refresh_if_changed)
        await asyncio.to_thread(live.knowledge_base.compact)
    return {"sender_id": sender_id, "removed": erased.removed}


@router.get("/audit", summary="Who read, exported or erased whose data, newest first")
async def audit_log(
    agent: Admin,
    audit: Annotated[AuditLog, Depends(provided(AuditLog))],
    sender: str | None = Query(None, max_length=128, description="only this person's rows"),
    limit: int = Query(100, ge=1, le=1000),
) -> list[dict[str, Any]]:
    entries = await asyncio.to_thread(audit.entries, sender, limit=limit)
    return [entry.as_dict() for entry in entries]
