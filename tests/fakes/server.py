"""What every fake platform API shares: an aiohttp app on an ephemeral 127.0.0.1 port, served
from its own event loop in a background thread (so asyncio tests and servers running in other
threads can both call it), with recorded calls to wait for and scripted failures."""

from __future__ import annotations

import asyncio
import threading
from collections import defaultdict, deque
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

STARTUP_SECONDS = 10.0

Params = dict[str, Any]
Where = Callable[[Params], bool]


class FakeAPIServer:
    """Subclasses add their routes in `routes` and call `record`/`scripted_failure` there."""

    thread_name = "fake-api"

    def __init__(self) -> None:
        self.port = 0
        self._calls: defaultdict[str, list[Params]] = defaultdict(list)
        self._refusals: defaultdict[str, int] = defaultdict(int)
        self._failures: defaultdict[str, deque[tuple[Where, web.Response]]] = defaultdict(deque)
        self._recorded = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._runner: web.AppRunner | None = None
        self._thread: threading.Thread | None = None

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    # -- what tests use -------------------------------------------------------------------

    def calls(self, method: str, where: Where | None = None) -> list[Params]:
        """The parameters of the accepted calls of `method` (those `where` accepts), oldest first."""
        with self._recorded:
            return [params for params in self._calls[method] if where is None or where(params)]

    def refusals(self, method: str) -> int:
        """How many calls of `method` were answered with a scripted failure."""
        with self._recorded:
            return self._refusals[method]

    def wait_for(self, method: str, count: int = 1, timeout: float = 20.0, where: Where | None = None) -> list[Params]:
        """Block until `count` calls of `method` (that `where` accepts) were accepted; their parameters."""
        with self._recorded:
            if not self._recorded.wait_for(lambda: len(self.calls(method, where)) >= count, timeout):
                raise AssertionError(
                    f"expected {count} {method} call(s) within {timeout}s, got {self.calls(method, where)}"
                )
            return self.calls(method, where)

    def fail_next(self, method: str, response: web.Response, where: Where | None = None) -> None:
        """Answer the next call of `method` (that `where` accepts) with `response` instead of handling it."""
        with self._recorded:
            self._failures[method].append((where or (lambda _: True), response))

    # -- what subclasses use --------------------------------------------------------------

    def record(self, method: str, params: Params) -> None:
        with self._recorded:
            self._calls[method].append(params)
            self._recorded.notify_all()

    def scripted_failure(self, method: str, params: Params) -> web.Response | None:
        """The failure `fail_next` queued for this call of `method`, if any (counted as a refusal)."""
        with self._recorded:
            for scripted in self._failures[method]:
                where, response = scripted
                if where(params):
                    self._failures[method].remove(scripted)
                    self._refusals[method] += 1
                    return response
            return None

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name=self.thread_name, daemon=True)
        self._thread.start()
        if not ready.wait(STARTUP_SECONDS) or not self.port:
            raise RuntimeError(f"{type(self).__name__} did not start")

    def stop(self) -> None:
        if self._runner is not None:
            asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(STARTUP_SECONDS)
        # Stopped from outside the coroutine: stopping inside it would end the loop before the
        # coroutine's result reached this thread.
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(STARTUP_SECONDS)
        self._loop.close()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._listen())
        ready.set()
        self._loop.run_forever()

    async def _listen(self) -> None:
        app = web.Application()
        self.routes(app)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = int(self._runner.addresses[0][1])
