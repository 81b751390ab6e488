"""The server's own routes: health, Prometheus metrics, and the Rasa-compatible model parse and
conversation tracker.

No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
"""

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel, Field

from crowddesk.bot.conversations.audit import READ_TRACKER, AuditLog
from crowddesk.bot.conversations.states import ConversationOwner
from crowddesk.bot.conversations.store import ConversationStore, HandoffRecord
from crowddesk.bot.server.api_access import Access, Caller, Credential, api_admin, conversation_reader
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.server.metrics import ServerMetrics
from crowddesk.bot.web.services import provided
from crowddesk.connectors.text import normalise_text
from crowddesk.storage.engines import check_reachable

router = APIRouter()

BotDep = Annotated[Bot, Depends(provided(Bot))]
MetricsDep = Annotated[ServerMetrics, Depends(provided(ServerMetrics))]


class ParseRequest(BaseModel):
    text: str = Field(min_length=1, max_length=4000)


def handoff_view(record: HandoffRecord | None) -> dict[str, Any] | None:
    if record is None:
        return None
    return {
        "id": record.id,
        "status": record.status,
        "reason": record.reason,
        "priority": record.priority,
        "created_at": record.created_at.isoformat(),
        "due_at": record.due_at.isoformat(),
        "assigned_to": record.assigned_to,
        "packet": record.packet,
    }


@router.get(
    "/health",
    tags=["operations"],
    responses={503: {"description": "the database or the lock store is unreachable; the body says which"}},
)
async def health(bot: BotDep) -> dict[str, Any]:
    """Whether this process can serve: its model, its index, its database and its lock store
    (a load balancer's readiness check; a dependency it cannot reach answers 503 until it can
    again). `lock_store` is "in_memory" for one process without Redis."""
    await asyncio.to_thread(check_reachable, bot.database)
    if bot.redis is not None:
        await bot.redis.ping()  # Redis errors answer 503 (bot/web/errors.py)
    cache = bot.engine.encoder_cache
    return {
        "status": "ok",
        "database": "ok",
        "lock_store": "in_memory" if bot.redis is None else "ok",
        "model": bot.model.path.name if bot.model.path else None,
        "kb_entries": len(bot.knowledge_base.retriever),
        "encoder_cache": {
            "texts": len(cache),
            "hits": cache.hits,
            "misses": cache.misses,
        },
    }


def metrics_reader(metrics: MetricsDep, access: Access, credential: Credential) -> None:
    """Dependency: the API admin token (metrics reveal volumes), unless CROWDDESK_METRICS_PUBLIC=1."""
    if not metrics.public:
        api_admin(access, credential)


@router.get(
    "/metrics",
    tags=["operations"],
    summary="Prometheus metrics (text exposition format)",
    response_class=PlainTextResponse,
    dependencies=[Depends(metrics_reader)],
)
async def metrics(server_metrics: MetricsDep) -> Response:
    exposition = await asyncio.to_thread(server_metrics.exposition)  # counts database rows
    return Response(exposition, media_type=CONTENT_TYPE_LATEST)


@router.post(
    "/model/parse",
    tags=["nlu"],
    summary="Understand a text (Rasa shape + KB candidates)",
    dependencies=[Depends(api_admin)],
)
async def parse(body: ParseRequest, bot: BotDep) -> dict[str, Any]:
    understanding, candidates = await bot.engine.understand(normalise_text(body.text))
    calibrate = bot.engine.policy.retriever_calibration
    return {
        **understanding.parse.as_rasa(),
        "kb_candidates": [{**c.as_dict(), "confidence": round(calibrate(c.score), 4)} for c in candidates],
    }


@router.get("/conversations/{sender_id}/tracker", tags=["conversations"])
async def tracker(
    sender_id: str,
    caller: Annotated[Caller, Depends(conversation_reader)],
    conversations: Annotated[ConversationStore, Depends(provided(ConversationStore))],
    audit: Annotated[AuditLog, Depends(provided(AuditLog))],
) -> dict[str, Any]:
    if caller.is_admin:  # staff reading someone's conversation; a customer's own reads are not
        actor = "api-token" if caller.username is None else f"jwt:{caller.username}"
        await asyncio.to_thread(audit.record, actor, READ_TRACKER, sender_id)
    record = await asyncio.to_thread(conversations.get, sender_id)
    events = await asyncio.to_thread(conversations.events, sender_id)
    active = await asyncio.to_thread(conversations.active_handoff, sender_id)
    latest_action = next((e.get("name") for e in reversed(events) if e["event"] == "action"), None)
    return {
        "sender_id": sender_id,
        "slots": record.slots if record else {},
        "latest_message": (record.latest_message if record else None) or {},
        "latest_event_time": events[-1]["timestamp"] if events else None,
        "latest_action_name": latest_action,
        "latest_input_channel": record.channel if record else None,
        "paused": bool(record and record.owner != ConversationOwner.BOT),
        "owner": record.owner if record else ConversationOwner.BOT,
        "active_loop": {},
        "events": events,
        "handoff": handoff_view(active),
    }
