"""The server's Prometheus metrics: turn counters the engine feeds, queue figures read at scrape time.

Each app owns its registry (not the process-wide default), so two apps in one process keep
their counts apart. The database figures are counted when Prometheus scrapes, so they are right
whichever server process changed the rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import sessionmaker

from crowddesk.bot.conversations.states import OPEN_TICKET_STATUSES, OutboxState
from crowddesk.bot.conversations.store import HandoffRow, OutboxRow
from crowddesk.bot.dialogue.engine import TurnSummary
from crowddesk.connectors.base import ChannelConnector
from crowddesk.nlu.cached_encoder import CachedEncoder

# `CROWDDESK_METRICS_PUBLIC=1` serves /metrics without the API token: scrapers usually sit on a
# private network, where handing them a secret is more trouble than the volumes are worth hiding.
PUBLIC_ENV = "CROWDDESK_METRICS_PUBLIC"
# A turn takes tens of milliseconds to seconds (NLU, the knowledge base, an action server call).
TURN_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class StoreCollector:
    """Figures counted from the database and the encoder cache each time Prometheus scrapes."""

    def __init__(self, database: Engine, encoder_cache: CachedEncoder) -> None:
        self._sessions = sessionmaker(database)
        self._encoder_cache = encoder_cache

    def collect(self) -> Iterator[Metric]:
        with self._sessions() as session:
            outbox = dict(session.execute(select(OutboxRow.status, func.count()).group_by(OutboxRow.status)).all())
            tickets = dict(session.execute(select(HandoffRow.status, func.count()).group_by(HandoffRow.status)).all())
            breached = session.scalar(select(func.count()).where(HandoffRow.sla_breached_at.is_not(None)))
        pending, failed = outbox.get(OutboxState.PENDING, 0), outbox.get(OutboxState.FAILED, 0)
        yield GaugeMetricFamily("crowddesk_outbox_pending", "Outbound messages waiting for delivery", value=pending)
        yield GaugeMetricFamily("crowddesk_outbox_failed", "Outbound messages given up on after retries", value=failed)
        open_tickets = GaugeMetricFamily(
            "crowddesk_open_tickets", "Hand-off tickets queued for or assigned to an agent", labels=["status"]
        )
        for status in OPEN_TICKET_STATUSES:
            open_tickets.add_metric([status.value], tickets.get(status, 0))
        yield open_tickets
        # A gauge, not a counter: retention purges old tickets, and a counter must never go down.
        yield GaugeMetricFamily(
            "crowddesk_sla_breaches", "Stored tickets whose first-reply deadline passed", value=breached or 0
        )
        yield CounterMetricFamily(
            "crowddesk_encoder_cache_hits", "Texts whose vector the encoder cache had", self._encoder_cache.hits
        )
        yield CounterMetricFamily(
            "crowddesk_encoder_cache_misses", "Texts the sentence encoder had to encode", self._encoder_cache.misses
        )


class SessionsCollector:
    """Customers' open connections per channel (web chat tabs), read at scrape time."""

    def __init__(self, channels: Mapping[str, ChannelConnector]) -> None:
        self._channels = channels

    def collect(self) -> Iterator[Metric]:
        sessions = GaugeMetricFamily(
            "crowddesk_open_sessions", "Connections customers hold open to this server", labels=["channel"]
        )
        for name, channel in self._channels.items():
            sessions.add_metric([name], channel.open_sessions())
        yield sessions


class ServerMetrics:
    """One app's registry; `observe_turn` is the engine's `on_turn` hook."""

    def __init__(
        self,
        database: Engine,
        encoder_cache: CachedEncoder,
        channels: Mapping[str, ChannelConnector],
        *,
        public: bool = False,
    ) -> None:
        self.public = public  # served without the API token
        self.registry = CollectorRegistry()
        self.messages = Counter("crowddesk_messages", "Customer messages handled", ["channel"], registry=self.registry)
        self.decisions = Counter(
            "crowddesk_decisions", "The support policy's decisions, one per turn", ["kind"], registry=self.registry
        )
        self.handoffs = Counter("crowddesk_handoffs", "Tickets opened by the bot", ["reason"], registry=self.registry)
        self.turn_seconds = Histogram(
            "crowddesk_turn_seconds", "Time to handle one message", buckets=TURN_BUCKETS, registry=self.registry
        )
        self.registry.register(StoreCollector(database, encoder_cache))
        self.registry.register(SessionsCollector(channels))

    @classmethod
    def configured(
        cls,
        database: Engine,
        encoder_cache: CachedEncoder,
        channels: Mapping[str, ChannelConnector],
        environ: Mapping[str, str] = os.environ,
    ) -> ServerMetrics:
        """Metrics whose exposure `CROWDDESK_METRICS_PUBLIC` sets."""
        return cls(database, encoder_cache, channels, public=environ.get(PUBLIC_ENV) == "1")

    def observe_turn(self, turn: TurnSummary) -> None:
        self.messages.labels(turn.channel).inc()
        self.turn_seconds.observe(turn.seconds)
        if turn.decision is not None:
            self.decisions.labels(turn.decision.value).inc()
        if turn.handoff_reason is not None:
            self.handoffs.labels(turn.handoff_reason).inc()

    def exposition(self) -> bytes:
        """The text exposition format (blocking: it counts rows in the database)."""
        return generate_latest(self.registry)
