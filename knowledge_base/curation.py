"""Keeps a running server's index in step with the knowledge base, whoever changed it.

Every change to an entry is a row of the store's change log (changelog.py). The server asks for
the rows after the last one applied every few seconds and after its own edits, and applies them
to the index's small delta segment (`KnowledgeBase.apply_changes`, milliseconds); when the delta
has grown past `compact_after` entries it rebuilds the base off to the side
(`KnowledgeBase.compact`). Queries keep using the current index until each new one is swapped in.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from crowddesk.knowledge_base.index import KnowledgeBase

logger = logging.getLogger(__name__)

DEFAULT_CHECK_SECONDS = 2.0


class LiveIndex:
    """Applies the knowledge base's changes to its index, and compacts it in the background."""

    def __init__(self, knowledge_base: KnowledgeBase, *, check_seconds: float = DEFAULT_CHECK_SECONDS) -> None:
        self.knowledge_base = knowledge_base
        self.check_seconds = check_seconds

    def refresh_if_changed(self) -> bool:
        """Apply the changes made since the last check, by any process; True if there were any."""
        return self.knowledge_base.apply_changes()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Watch for changes (e.g. from `crowddesk kb` in another process) while the block runs."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._watch(stop), name="kb-live-index")
        try:
            yield
        finally:
            # Not cancelled: work in its worker threads would outlive the task and could still
            # be reading the database the server is about to close.
            stop.set()
            await task

    async def _watch(self, stop: asyncio.Event) -> None:
        compaction: asyncio.Task[None] | None = None
        while True:
            try:
                await asyncio.to_thread(self.refresh_if_changed)
            except Exception:  # the current index keeps serving; retried next time
                logger.exception("applying knowledge-base changes to the index failed; serving the previous one")
            # In its own task: changes keep being applied while a large base is rebuilt.
            if (compaction is None or compaction.done()) and self.knowledge_base.needs_compaction():
                compaction = asyncio.create_task(self._compact(), name="kb-index-compaction")
            try:
                await asyncio.wait_for(stop.wait(), self.check_seconds)
                break
            except TimeoutError:
                continue
        if compaction is not None:
            await compaction

    async def _compact(self) -> None:
        try:
            await asyncio.to_thread(self.knowledge_base.compact)
        except Exception:  # the segments keep serving; compaction is tried again next check
            logger.exception("rebuilding the knowledge-base index failed; serving the previous one")
