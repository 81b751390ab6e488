"""The one wiring function: a project folder (and its trained model) in, a running bot out."""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, replace
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import Engine as SqlEngine

from crowddesk.bot.cluster.peer_pushes import RedisPeerPushes
from crowddesk.bot.cluster.redis_link import connect
from crowddesk.bot.cluster.turn_locks import RedisTurnLocks
from crowddesk.bot.conversations.channel_memory import DatabaseChannelMemory
from crowddesk.bot.conversations.outbox import Outbox
from crowddesk.bot.conversations.store import ConversationStore
from crowddesk.bot.desk.agents import AgentDirectory
from crowddesk.bot.desk.tickets import TicketDesk
from crowddesk.bot.desk.wait_estimate import WaitEstimator
from crowddesk.bot.dialogue.action_client import ActionClient
from crowddesk.bot.dialogue.engine import Engine
from crowddesk.bot.dialogue.policies.ensemble import DialoguePolicies
from crowddesk.bot.dialogue.policy import SupportPolicy
from crowddesk.bot.project.credentials import build_channels, load_credentials
from crowddesk.bot.project.loading import Project, load_project
from crowddesk.bot.project.wiring import dialogue_intents, faq_entries, intent_titles
from crowddesk.bot.server.database import open_database
from crowddesk.bot.training.model import ModelError, TrainedModel, latest_model_dir
from crowddesk.connectors.base import ChannelConnector
from crowddesk.connectors.webchat import WebchatChannel
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus
from crowddesk.nlu.encoders import Encoder
from crowddesk.nlu.onnx_encoder import load_served_encoder
from crowddesk.nlu.pipeline import NLUPipeline

logger = logging.getLogger(__name__)


def models_dir(project_root: Path) -> Path:
    return project_root / "models"


@dataclass
class Bot:
    project: Project
    model: TrainedModel
    engine: Engine
    nlu: NLUPipeline
    knowledge_base: KnowledgeBase
    conversations: ConversationStore
    database: SqlEngine
    agents: AgentDirectory
    tickets: TicketDesk
    channels: dict[str, ChannelConnector]
    """The channels of credentials.yml by name; `crowddesk run` serves and starts them."""
    outbox: Outbox
    redis: Redis | None = None
    """The lock store (endpoints.yml `lock_store`) shared with the other server processes."""
    peer_pushes: RedisPeerPushes | None = None

    async def aclose(self) -> None:
        if self.engine.actions is not None:
            await self.engine.actions.aclose()
        if self.redis is not None:
            await self.redis.aclose()
        self.database.dispose()


# What CrowdDesk keeps beside a project's files: the served index, the action server's log.
STATE_DIR = ".crowddesk"
PROJECT_SYNC_ACTOR = "project-sync"  # the audit log's name for data/nlu.yml changes


def index_dir_for(state_dir: Path, database: SqlEngine) -> Path:
    """Where the served index of `database` is kept between starts: one folder per database, so a
    bot never serves the index another database's entries built."""
    url = database.url.render_as_string(hide_password=True)
    return state_dir / "index" / hashlib.sha256(url.encode()).hexdigest()[:16]


def knowledge_base_for(
    project: Project, store: KnowledgeBaseStore, encoder: Encoder, index_dir: Path | None
) -> KnowledgeBase:
    """The knowledge base over `store` with the project's retriever settings; `index_dir` keeps
    its index across restarts (None: rebuilt on every start)."""
    settings = project.config.retriever
    return KnowledgeBase(
        store,
        encoder,
        lexical_weight=settings.lexical_weight,
        top_k=settings.top_k,
        context_weight=settings.context_weight,
        index=settings.index_settings(),
        index_dir=index_dir,
    )


def sync_project_faq(project: Project, store: KnowledgeBaseStore) -> tuple[int, int]:
    """Mirror the project's retrieval intents into the KB; retire ones the project dropped.
    Returns (created, retired).

    An entry whose project content is what the last sync wrote is left alone, so what editors
    changed since (an edited answer) survives restarts; a change to the project files
    overwrites the content, as a new version that can be restored. Publishing and retiring
    stay the editors' call, as with re-imports.
    """
    entries = faq_entries(project)
    created = 0
    for entry in entries:
        if store.last_written_by(entry, PROJECT_SYNC_ACTOR):
            continue
        stored = store.get(entry.id)
        if stored is not None:
            entry = replace(entry, status=stored.status)
        created += store.upsert(entry, actor=PROJECT_SYNC_ACTOR)
    current = {entry.id for entry in entries}
    retired = 0
    for entry in store.published():
        # Entries mirrored from a retrieval intent carry that intent as their id.
        if entry.intent and entry.id == entry.intent and entry.id not in current:
            store.set_status(
                entry.id,
                EntryStatus.RETIRED,
                actor=PROJECT_SYNC_ACTOR,
                comment="retrieval intent removed from the project",
            )
            retired += 1
    return created, retired


def assemble(
    project_root: Path,
    *,
    model_dir: Path | None = None,
    database_url: str | None = None,
    action_endpoint: str | None = None,
    credentials: Path | None = None,
    state_dir: Path | None = None,
) -> Bot:
    """`credentials` replaces the project's credentials.yml (`crowddesk run --credentials`);
    `state_dir` is where the served index is kept (default: the project's `.crowddesk/`)."""
    project = load_project(project_root)
    channel_settings = project.credentials if credentials is None else load_credentials(credentials, required=True)
    channels = build_channels(channel_settings)
    chosen = model_dir or latest_model_dir(models_dir(project.root))
    if chosen is None:
        raise ModelError(f"no trained model in {models_dir(project.root)}; run `crowddesk train` first")
    model = TrainedModel.load(chosen)
    database = open_database(project, database_url)
    for name, channel in channels.items():
        channel.attach_memory(DatabaseChannelMemory(database, name))
    kb_store = KnowledgeBaseStore(database)
    sync_project_faq(project, kb_store)
    encoder = load_served_encoder(model.metadata.encoder, model.encoder_export)
    # Training already encoded the project's questions: a new database need not do it again.
    kb_store.store_vectors(encoder.name, model.kb_vectors)
    index_dir = index_dir_for(state_dir or project.root / STATE_DIR, database)
    knowledge_base = knowledge_base_for(project, kb_store, encoder, index_dir)
    published = kb_store.published()
    policy = SupportPolicy(
        project.config.policy,
        model.metadata.thresholds,
        model.metadata.retriever_calibration,
        dialogue_intents=dialogue_intents(project),
        entry_intents={e.id: e.intent for e in published if e.intent},
        entry_titles={e.id: e.title for e in published},
        intent_titles=intent_titles(project),
    )
    url = action_endpoint or project.endpoints.action_endpoint_url
    nlu = NLUPipeline(encoder, model.classifier, model.entities)
    conversations = ConversationStore(database)
    outbox = Outbox(database)
    redactor = project.config.retriever.ingestion.redactor()  # the project's redact_patterns, wherever PII is kept
    tickets = TicketDesk(database, outbox, redactor, channels)
    # Several server processes share one Redis: turn locks across them, live pushes between them.
    lock_store = project.endpoints.lock_store
    redis, turn_locks, peer_pushes = None, None, None
    if lock_store is not None:
        redis = connect(lock_store.url)
        turn_locks = RedisTurnLocks(redis, lock_store.key_prefix, lock_store.lock_lifetime_seconds)
        peer_pushes = RedisPeerPushes(redis, lock_store.key_prefix)
        for channel in channels.values():
            if isinstance(channel, WebchatChannel):
                channel.attach_peers(peer_pushes)
    engine = Engine(
        domain=project.domain,
        nlu=nlu,
        knowledge_base=knowledge_base,
        policy=policy,
        store=conversations,
        dialogue=DialoguePolicies.train(
            project.domain,
            project.data.stories,
            project.data.rules,
            max_history=project.config.story_max_history,
            target_precision=project.config.policy.target_precision,
        ),
        actions=ActionClient(url) if url else None,
        tickets=tickets,
        wait_estimator=WaitEstimator(database, project.config.policy.handoff.expected_wait),
        redactor=redactor,
        turn_locks=turn_locks,
    )
    logger.info("bot ready: model %s, %d KB entries", chosen.name, len(published))
    return Bot(
        project,
        model,
        engine,
        nlu,
        knowledge_base,
        conversations,
        database,
        AgentDirectory(database),
        tickets,
        channels,
        outbox,
        redis,
        peer_pushes,
    )
