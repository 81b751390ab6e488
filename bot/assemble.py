"""The one wiring function: a project folder (and its trained model) in, a running bot out."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine as SqlEngine

from crowddesk.bot.action_client import ActionClient
from crowddesk.bot.agents import AgentDirectory
from crowddesk.bot.database import create_engine_for, init_schema
from crowddesk.bot.engine import Engine
from crowddesk.bot.model import ModelError, TrainedModel, latest_model_dir
from crowddesk.bot.policy import SupportPolicy
from crowddesk.bot.project import Project, load_project
from crowddesk.bot.store import ConversationStore
from crowddesk.bot.tickets import TicketDesk
from crowddesk.bot.wiring import faq_entries, rules_by_intent
from crowddesk.knowledge_base.index import KnowledgeBase
from crowddesk.knowledge_base.store import KnowledgeBaseStore
from crowddesk.knowledge_base.types import EntryStatus
from crowddesk.nlu.encoders import load_encoder
from crowddesk.nlu.pipeline import NLUPipeline

logger = logging.getLogger(__name__)


def models_dir(project_root: Path) -> Path:
    return project_root / "models"


def database_url_for(project: Project, override: str | None = None) -> str:
    """Explicit URL, then endpoints.yml / CROWDDESK_DATABASE_URL, then the embedded SQLite file."""
    if override:
        return override
    if project.endpoints.database_url:
        return project.endpoints.database_url
    return f"sqlite:///{(project.root / '.crowddesk' / 'crowddesk.db').resolve()}"


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

    async def aclose(self) -> None:
        if self.engine.actions is not None:
            await self.engine.actions.aclose()
        self.database.dispose()


def open_database(project: Project, database_url: str | None = None) -> SqlEngine:
    database = create_engine_for(database_url_for(project, database_url))
    init_schema(database)
    return database


def sync_project_faq(project: Project, store: KnowledgeBaseStore) -> tuple[int, int]:
    """Mirror the project's retrieval intents into the KB; retire ones the project dropped.
    Returns (created or updated, retired)."""
    entries = faq_entries(project)
    changed = sum(1 for entry in entries if store.upsert(entry))
    current = {entry.id for entry in entries}
    retired = 0
    for entry in store.published():
        # Entries mirrored from a retrieval intent carry that intent as their id.
        if entry.intent and entry.id == entry.intent and entry.id not in current:
            store.set_status(entry.id, EntryStatus.RETIRED)
            retired += 1
    return changed, retired


def assemble(
    project_root: Path,
    *,
    model_dir: Path | None = None,
    database_url: str | None = None,
    action_endpoint: str | None = None,
) -> Bot:
    project = load_project(project_root)
    chosen = model_dir or latest_model_dir(models_dir(project.root))
    if chosen is None:
        raise ModelError(f"no trained model in {models_dir(project.root)}; run `crowddesk train` first")
    model = TrainedModel.load(chosen)
    database = open_database(project, database_url)
    kb_store = KnowledgeBaseStore(database)
    sync_project_faq(project, kb_store)
    encoder = load_encoder(model.metadata.encoder)
    knowledge_base = KnowledgeBase(
        kb_store, encoder,
        lexical_weight=project.config.retriever.lexical_weight, top_k=project.config.retriever.top_k,
    )
    published = kb_store.published()
    rules = rules_by_intent(project)
    policy = SupportPolicy(
        project.config.policy,
        model.metadata.thresholds,
        model.metadata.retriever_calibration,
        rule_intents=list(rules),
        entry_intents={e.id: e.intent for e in published if e.intent},
        entry_titles={e.id: e.title for e in published},
    )
    url = action_endpoint or project.endpoints.action_endpoint_url
    nlu = NLUPipeline(encoder, model.classifier, model.entities)
    conversations = ConversationStore(database)
    engine = Engine(
        domain=project.domain, nlu=nlu, knowledge_base=knowledge_base, policy=policy,
        store=conversations, rules=rules, actions=ActionClient(url) if url else None,
    )
    logger.info("bot ready: model %s, %d KB entries", chosen.name, len(published))
    return Bot(project, model, engine, nlu, knowledge_base, conversations, database,
               AgentDirectory(database), TicketDesk(database))
