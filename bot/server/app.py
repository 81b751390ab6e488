"""The HTTP server: channels, Rasa-compatible model and tracker endpoints, health."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from functools import partial
from typing import Any

from fastapi import Depends, FastAPI
from pydantic import BaseModel, Field

from crowddesk.bot.conversations.audit import READ_TRACKER, AuditLog
from crowddesk.bot.conversations.outbox import OutboxWorker
from crowddesk.bot.conversations.states import ConversationOwner
from crowddesk.bot.conversations.store import HandoffRecord
from crowddesk.bot.curation.api import kb_router
from crowddesk.bot.curation.console import kb_console_router
from crowddesk.bot.desk.api import desk_router
from crowddesk.bot.desk.console import desk_console_router
from crowddesk.bot.desk.login_limits import LoginLimiter
from crowddesk.bot.desk.rating import rating_request
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.stream_tickets import StreamTickets
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.privacy.api import privacy_router
from crowddesk.bot.privacy.retention import Retention
from crowddesk.bot.server.api_access import ApiAccess, Caller
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.server.channels import running_channels, running_slack_desk
from crowddesk.bot.server.gateway import Gateway, SeenMessages
from crowddesk.bot.server.log_redaction import redacted_logs
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.limits import BodyLimits
from crowddesk.connectors.text import normalise_text
from crowddesk.knowledge_base.curation import LiveIndex


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


def create_app(bot: Bot, access: ApiAccess = ApiAccess()) -> FastAPI:
    """The server for `bot`; `access` says who may call the tracker and parse routes (by
    default nobody: they answer 401 saying how to configure a token)."""
    gateway = Gateway(bot.engine, SeenMessages(bot.database), bot.outbox, bot.channels)
    retention = Retention(
        bot.database,
        timedelta(days=bot.project.endpoints.retention_days),
        conversations=bot.project.endpoints.conversations_retention,
    )
    outbox_worker = OutboxWorker(bot.outbox, bot.channels, retention=retention)
    live_index = LiveIndex(bot.knowledge_base)  # picks up KB changes made by any process
    audit = AuditLog(bot.database)  # who read whose conversation (privacy.py)
    redactor = bot.project.config.retriever.ingestion.redactor()  # PII in text the desk writes

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sla_monitor = SlaMonitor(bot.database, bot.project.config.policy.handoff.sla)
        with redacted_logs(redactor, enabled=bot.project.config.policy.privacy.redact_logs):
            async with (
                running_channels(bot.channels, gateway, outbox_worker),
                sla_monitor.running(),
                running_slack_desk(bot),
                live_index.running(),
            ):
                yield
        await bot.aclose()

    app = FastAPI(
        title="CrowdDesk",
        version="0.1.0",
        description="Support bot API: REST channel, NLU parse, conversation trackers.",
        lifespan=lifespan,
    )

    app.state.bot = bot
    app.state.conversations = bot.conversations  # the web chat widget's history
    app.state.outbox_worker = outbox_worker

    app.add_middleware(BodyLimits)  # body size while streaming, JSON nesting depth

    install_error_handlers(app)

    for connector in bot.channels.values():
        router = connector.router(gateway)
        if router is not None:
            app.include_router(router)
    app.include_router(
        desk_router(
            bot.agents,
            bot.tickets,
            bot.conversations,
            partial(rating_request, bot.engine.renderer),
            TicketSuggestions(bot.database, redactor),
            audit,
            LoginLimiter(bot.database),
            StreamTickets(bot.database),
        )
    )
    app.include_router(desk_console_router())
    app.include_router(kb_router(bot.agents, bot.database, live_index, redactor))
    app.include_router(kb_console_router())
    app.include_router(privacy_router(bot.agents, bot.database, live_index, bot.engine.encoder_cache))

    @app.get("/health", tags=["operations"])
    async def health() -> dict[str, Any]:
        cache = bot.engine.encoder_cache
        return {
            "status": "ok",
            "model": bot.model.path.name if bot.model.path else None,
            "kb_entries": len(bot.knowledge_base.retriever),
            "encoder_cache": {
                "texts": len(cache),
                "hits": cache.hits,
                "misses": cache.misses,
            },
        }

    @app.post(
        "/model/parse",
        tags=["nlu"],
        summary="Understand a text (Rasa shape + KB candidates)",
        dependencies=[Depends(access.admin)],
    )
    async def parse(body: ParseRequest) -> dict[str, Any]:
        understanding, candidates = await bot.engine.understand(normalise_text(body.text))
        calibrate = bot.engine.policy.retriever_calibration
        return {
            **understanding.parse.as_rasa(),
            "kb_candidates": [{**c.as_dict(), "confidence": round(calibrate(c.score), 4)} for c in candidates],
        }

    @app.get("/conversations/{sender_id}/tracker", tags=["conversations"])
    async def tracker(sender_id: str, caller: Caller = Depends(access.reader_of)) -> dict[str, Any]:
        if caller.is_admin:  # staff reading someone's conversation; a customer's own reads are not
            actor = "api-token" if caller.username is None else f"jwt:{caller.username}"
            await asyncio.to_thread(audit.record, actor, READ_TRACKER, sender_id)
        record = await asyncio.to_thread(bot.conversations.get, sender_id)
        events = await asyncio.to_thread(bot.conversations.events, sender_id)
        active = await asyncio.to_thread(bot.conversations.active_handoff, sender_id)
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

    return app
