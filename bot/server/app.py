"""The HTTP server: channels, the agent, editor and privacy APIs and consoles, Rasa-compatible
model and tracker endpoints, health and Prometheus metrics.

`create_app` is the composition root: it builds every service the routes work with once and
provides it on the app (bot/web/services.py); the routers themselves are module-level.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

from fastapi import FastAPI

from crowddesk.bot.conversations.audit import AuditLog
from crowddesk.bot.conversations.deliveries import SeenMessages
from crowddesk.bot.conversations.outbox import OutboxWorker
from crowddesk.bot.curation import api as kb_api
from crowddesk.bot.curation.console import kb_console_router
from crowddesk.bot.desk import api as desk_api
from crowddesk.bot.desk.console import desk_console_router
from crowddesk.bot.desk.login_limits import LoginLimiter
from crowddesk.bot.desk.sla_monitor import SlaMonitor
from crowddesk.bot.desk.stream_tickets import StreamTickets
from crowddesk.bot.desk.suggestions import TicketSuggestions
from crowddesk.bot.privacy import api as privacy_api
from crowddesk.bot.privacy.customer_data import Privacy
from crowddesk.bot.privacy.retention import Retention
from crowddesk.bot.reporting import api as analytics_api
from crowddesk.bot.reporting.console import analytics_console_router
from crowddesk.bot.server import routes
from crowddesk.bot.server.api_access import ApiAccess
from crowddesk.bot.server.assemble import Bot
from crowddesk.bot.server.channels import hearing_other_processes, running_channels, running_slack_desk
from crowddesk.bot.server.gateway import Gateway
from crowddesk.bot.server.log_redaction import redacted_logs
from crowddesk.bot.server.metrics import ServerMetrics
from crowddesk.bot.web.errors import install_error_handlers
from crowddesk.bot.web.limits import BodyLimits
from crowddesk.bot.web.services import provide
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.knowledge_base.usage import UsageReport


def create_app(bot: Bot, access: ApiAccess = ApiAccess()) -> FastAPI:
    """The server for `bot`; `access` says who may call the tracker and parse routes (by
    default nobody: they answer 401 saying how to configure a token)."""
    metrics = ServerMetrics.configured(bot.database, bot.engine.encoder_cache, bot.channels)
    gateway = Gateway(bot.engine, SeenMessages(bot.database), bot.outbox, bot.channels, on_turn=metrics.observe_turn)
    retention = Retention(
        bot.database,
        timedelta(days=bot.project.endpoints.retention_days),
        conversations=bot.project.endpoints.conversations_retention,
    )
    outbox_worker = OutboxWorker(bot.outbox, bot.channels, retention=retention)
    live_index = LiveIndex(bot.knowledge_base)  # picks up KB changes made by any process
    redactor = bot.project.config.retriever.ingestion.redactor()  # PII in text the desk writes

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        sla_monitor = SlaMonitor(bot.database, bot.project.config.policy.handoff.sla)
        with redacted_logs(redactor, enabled=bot.project.config.policy.privacy.redact_logs):
            async with (
                running_channels(bot.channels, gateway, outbox_worker),
                sla_monitor.running(),
                running_slack_desk(bot),
                hearing_other_processes(bot),
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
    provide(app, metrics, *_services(bot, access, live_index, redactor))

    app.add_middleware(BodyLimits)  # body size while streaming, JSON nesting depth

    install_error_handlers(app)

    for connector in bot.channels.values():
        router = connector.router(gateway)
        if router is not None:
            app.include_router(router)
    app.include_router(desk_api.router)
    app.include_router(desk_console_router())
    app.include_router(kb_api.router)
    app.include_router(kb_console_router())
    app.include_router(analytics_api.router)
    app.include_router(analytics_console_router())
    app.include_router(privacy_api.router)
    app.include_router(routes.router)
    return app


def _services(bot: Bot, access: ApiAccess, live_index: LiveIndex, redactor: Redactor) -> list[object]:
    """Every service a route asks for, each built once for the app."""
    database = bot.database
    return [
        bot,
        access,
        database,
        bot.agents,
        bot.tickets,
        bot.conversations,
        bot.engine.renderer,  # the rating question asked when a ticket is resolved
        bot.engine.encoder_cache,
        live_index,
        redactor,
        AuditLog(database),  # who read whose conversation (privacy.py)
        LoginLimiter(database),
        StreamTickets(database),
        TicketSuggestions(database, redactor),
        Suggestions(database, redactor),
        UsageReport(database),
        Privacy(database),
    ]
