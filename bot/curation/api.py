"""The editor API behind the content pages: entries, their versions and usage, suggestions, gaps.

Every call needs `Authorization: Bearer <token>` of an editor or an admin. Changes are
versioned as made by that account and reach the running index before the response is sent.
No `from __future__ import annotations`: FastAPI reads the dependency annotations at run time.
"""

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import Engine

from crowddesk.bot.curation.gaps import gap_report
from crowddesk.bot.desk.agents import Agent
from crowddesk.bot.desk.auth import holder_of
from crowddesk.bot.web.limits import MAX_DAYS, MAX_INT
from crowddesk.bot.web.services import provided
from crowddesk.errors import Conflict
from crowddesk.knowledge_base.curation import LiveIndex
from crowddesk.knowledge_base.redaction import Redactor
from crowddesk.knowledge_base.store import MAX_ID_LENGTH, KnowledgeBaseStore, UnknownEntry
from crowddesk.knowledge_base.suggestions import Suggestions
from crowddesk.knowledge_base.types import EntryStatus, KBEntry
from crowddesk.knowledge_base.usage import UsageOrder, UsageReport

MAX_TEXT = 8000
_Result = TypeVar("_Result")
SuggestionId = Annotated[int, Path(ge=1, le=MAX_INT)]


class Comment(BaseModel):
    comment: str = Field("", max_length=1000, description="why, for the audit log")


class EntryBody(Comment):
    model_config = ConfigDict(str_strip_whitespace=True)

    questions: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] = Field(min_length=1)
    answer: str = Field(min_length=1, max_length=MAX_TEXT)
    source_url: str = Field("", max_length=2048)
    tags: list[str] = Field(default_factory=list)


class NewEntryBody(EntryBody):
    id: str = Field(min_length=1, max_length=MAX_ID_LENGTH, description="e.g. manual:card-limits")


class RestoreBody(Comment):
    version: int = Field(ge=1, le=MAX_INT)


class ApproveBody(BaseModel):
    model_config = ConfigDict(str_strip_whitespace=True)

    questions: list[Annotated[str, Field(min_length=1, max_length=MAX_TEXT)]] | None = Field(
        None, min_length=1, description="edited questions (default: the suggested ones)"
    )
    answer: str | None = Field(
        None, min_length=1, max_length=MAX_TEXT, description="edited answer (default: the agent's reply)"
    )


class RejectBody(BaseModel):
    reason: str = Field(min_length=1, max_length=1000)


router = APIRouter(prefix="/kb/api", tags=["knowledge-base curation"])

EditorDep = Annotated[Agent, Depends(holder_of("editor", "role {role!r} can't curate the knowledge base"))]
Live = Annotated[LiveIndex, Depends(provided(LiveIndex))]
# PII in what editors write or read is redacted: config.yml's redact_patterns on top of the
# built-in rules.
RedactorDep = Annotated[Redactor, Depends(provided(Redactor))]
SuggestionsDep = Annotated[Suggestions, Depends(provided(Suggestions))]
Usage = Annotated[UsageReport, Depends(provided(UsageReport))]


def entry_store(live: Live) -> KnowledgeBaseStore:
    """The store under the server's index, which the index reads its changes from."""
    return live.knowledge_base.store


Store = Annotated[KnowledgeBaseStore, Depends(entry_store)]


async def changed(live: LiveIndex, result: _Result) -> _Result:
    """`result`, once the running index serves the change that gave it."""
    await asyncio.to_thread(live.refresh_if_changed)
    return result


async def existing(store: KnowledgeBaseStore, entry_id: str) -> KBEntry:
    """The entry `entry_id`, whatever its status; UnknownEntry if there is none."""
    entry = await asyncio.to_thread(store.get, entry_id)
    if entry is None:
        raise UnknownEntry(f"no knowledge-base entry {entry_id!r}")
    return entry


@router.get("/entries", summary="Entries by id, filtered by status, tag and text")
async def search(
    _: EditorDep,
    store: Store,
    q: str | None = Query(None, description="text in the id, a question or the answer"),
    status: EntryStatus | None = None,
    tag: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_INT),
) -> list[dict[str, Any]]:
    found = await asyncio.to_thread(store.list, status=status, tag=tag, text=q, limit=limit, offset=offset)
    return [entry.as_dict() for entry in found]


@router.post("/entries", status_code=201, summary="A new entry, as a draft")
async def create(body: NewEntryBody, agent: EditorDep, store: Store, redactor: RedactorDep) -> dict[str, Any]:
    if await asyncio.to_thread(store.get, body.id) is not None:
        raise Conflict(f"entry {body.id!r} exists; PUT /kb/api/entries/{body.id} edits it")
    entry = redactor.redact_entry(
        KBEntry(
            id=body.id,
            questions=body.questions,
            answer=body.answer,
            source_url=body.source_url,
            tags=body.tags,
            status=EntryStatus.DRAFT,
        )
    )
    await asyncio.to_thread(store.upsert, entry, actor=agent.id, comment=body.comment)
    return (await existing(store, body.id)).as_dict()


@router.get("/entries/{entry_id:path}/history", summary="Every version: who, when, what")
async def history(entry_id: str, _: EditorDep, store: Store) -> list[dict[str, Any]]:
    await existing(store, entry_id)
    return [v.as_dict() for v in await asyncio.to_thread(store.history, entry_id)]


@router.post("/entries/{entry_id:path}/publish", summary="Serve a draft or retired entry")
async def publish(entry_id: str, body: Comment, agent: EditorDep, live: Live, store: Store) -> dict[str, Any]:
    entry = await asyncio.to_thread(
        store.set_status, entry_id, EntryStatus.PUBLISHED, actor=agent.id, comment=body.comment
    )
    return (await changed(live, entry)).as_dict()


@router.post("/entries/{entry_id:path}/retire", summary="Stop serving an entry (kept for audit)")
async def retire(entry_id: str, body: Comment, agent: EditorDep, live: Live, store: Store) -> dict[str, Any]:
    entry = await asyncio.to_thread(
        store.set_status, entry_id, EntryStatus.RETIRED, actor=agent.id, comment=body.comment
    )
    return (await changed(live, entry)).as_dict()


@router.post(
    "/entries/{entry_id:path}/restore",
    summary="Bring back an earlier version's content as a new version (status kept)",
)
async def restore(entry_id: str, body: RestoreBody, agent: EditorDep, live: Live, store: Store) -> dict[str, Any]:
    entry = await asyncio.to_thread(store.restore, entry_id, body.version, actor=agent.id, comment=body.comment)
    return (await changed(live, entry)).as_dict()


@router.get(
    "/entries/{entry_id:path}", summary="One entry, whatever its status, with its usage (times served, feedback)"
)
async def get(entry_id: str, _: EditorDep, store: Store, usage: Usage) -> dict[str, Any]:
    entry = await existing(store, entry_id)
    return {**entry.as_dict(), "usage": (await asyncio.to_thread(usage.of, entry_id)).counts()}


@router.put("/entries/{entry_id:path}", summary="Edit an entry: a new version, status kept")
async def edit(
    entry_id: str, body: EntryBody, agent: EditorDep, live: Live, store: Store, redactor: RedactorDep
) -> dict[str, Any]:
    current = await existing(store, entry_id)
    current.questions, current.answer = body.questions, body.answer
    current.source_url, current.tags = body.source_url, body.tags
    await asyncio.to_thread(store.upsert, redactor.redact_entry(current), actor=agent.id, comment=body.comment)
    return (await changed(live, await existing(store, entry_id))).as_dict()


@router.get("/usage", summary="Every entry's times served and Helpful / Not helpful presses")
async def usage_report(
    _: EditorDep,
    usage: Usage,
    order: UsageOrder = Query("served", description="most served, or most often not helpful, first"),
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_INT),
) -> list[dict[str, Any]]:
    lines = await asyncio.to_thread(usage.lines, order=order, limit=limit, offset=offset)
    return [line.as_dict() for line in lines]


@router.get("/suggestions", summary="Entries suggested from resolved handoffs")
async def list_suggestions(
    _: EditorDep,
    suggestions: SuggestionsDep,
    status: Literal["pending", "approved", "rejected", "all"] = "pending",
) -> list[dict[str, Any]]:
    found = await asyncio.to_thread(suggestions.list, None if status == "all" else status)
    return [s.as_dict() for s in found]


@router.post(
    "/suggestions/{suggestion_id}/approve",
    summary="Publish a suggestion (optionally edited) as entry handoff:<ticket>",
)
async def approve(
    suggestion_id: SuggestionId, body: ApproveBody, agent: EditorDep, live: Live, suggestions: SuggestionsDep
) -> dict[str, Any]:
    entry = await asyncio.to_thread(
        suggestions.approve, suggestion_id, agent.id, questions=body.questions, answer=body.answer
    )
    return (await changed(live, entry)).as_dict()


@router.post("/suggestions/{suggestion_id}/reject", summary="Turn a suggestion down, saying why")
async def reject(
    suggestion_id: SuggestionId, body: RejectBody, agent: EditorDep, suggestions: SuggestionsDep
) -> dict[str, Any]:
    return (await asyncio.to_thread(suggestions.reject, suggestion_id, agent.id, body.reason)).as_dict()


@router.get("/gaps", summary="Unanswered questions grouped by meaning, most asked first")
async def gaps(
    _: EditorDep,
    live: Live,
    redactor: RedactorDep,
    database: Annotated[Engine, Depends(provided(Engine))],
    since_days: float | None = Query(None, gt=0, le=MAX_DAYS, description="only the last this many days"),
    limit: int = Query(20, ge=1, le=200),
) -> list[dict[str, Any]]:
    since = datetime.now(UTC) - timedelta(days=since_days) if since_days else None
    clusters = await asyncio.to_thread(
        gap_report, database, live.knowledge_base.encoder, since=since, redactor=redactor
    )
    return [c.as_dict() for c in clusters[:limit]]
