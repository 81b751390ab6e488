"""Keeps a running server's index in step with the knowledge base, whoever changed it.

Every change to an entry writes a version row (see store.py), so the count of versions is a
change counter any process can read cheaply. The server checks it every few seconds and after
its own edits; on a change it rebuilds the index off to the side and swaps it in
(`KnowledgeBase.refresh`), so queries keep using the old index until the new one is ready.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator

from crowddesk.knowledge_base.index import KnowledgeBase

logger = logging.getLogger(__name__)

DEFAULT_CHECK_SECONDS = 2.0


class LiveIndex:
    """Rebuilds `knowledge_base`'s index when the store's change count moves."""

    def __init__(self, knowledge_base: KnowledgeBase, *, check_seconds: float = DEFAULT_CHECK_SECONDS) -> None:
        self.knowledge_base = knowledge_base
        self.check_seconds = check_seconds
        # One rebuild at a time, so an older build can never be swapped in after a newer one.
        self._lock = threading.Lock()
        # Unknown until the first check: a change made between building the index and
        # starting the watcher must not be missed, at the price of one rebuild at start.
        self._seen: int | None = None

    def refresh_if_changed(self) -> bool:
        """Rebuild and swap the index if the knowledge base changed since the last rebuild."""
        with self._lock:
            current = self.knowledge_base.store.change_count()
            if current == self._seen:
                return False
            # Read before building: a change made during the build is picked up next time.
            self.knowledge_base.refresh()
            self._seen = current
            return True

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """Watch for changes (e.g. from `crowddesk kb` in another process) while the block runs."""
        stop = asyncio.Event()
        task = asyncio.create_task(self._watch(stop), name="kb-live-index")
        try:
            yield
        finally:
            # Not cancelled: a rebuild in its worker thread would outlive the task and could
            # still be reading the database the server is about to close.
            stop.set()
            await task

    async def _watch(self, stop: asyncio.Event) -> None:
        while True:
            try:
                await asyncio.to_thread(self.refresh_if_changed)
            except Exception:  # a failed rebuild keeps serving the current index; retried next time
                logger.exception("rebuilding the knowledge-base index failed; serving the previous one")
            try:
                await asyncio.wait_for(stop.wait(), self.check_seconds)
                return
            except TimeoutError:
                continue
