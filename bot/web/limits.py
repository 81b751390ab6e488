"""Limits every HTTP request body is held to before any route sees it: its size, counted as it
arrives (a chunked upload has no Content-Length to trust), and how deeply JSON in it nests
(the json module recurses, so 100,000 nested brackets raise RecursionError in any route);
and the bounds routes put on the numbers they take.

Plain ASGI: `@app.middleware("http")` would run every request through extra tasks and
streams, which costs more than the checks themselves on the message hot path.
"""

from __future__ import annotations

import re

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from crowddesk.errors import TooLarge

MAX_BODY_BYTES = 256 * 1024
MAX_JSON_DEPTH = 32
# Bounds for the numbers routes take (ids, offsets, versions): the largest a database INTEGER
# column holds everywhere (PostgreSQL's is 32 bits), so a bigger one is a 422, not a crash.
MAX_INT = 2**31 - 1
MAX_DAYS = 36_500  # day counts (`since_days`): a century; more overflows a datetime

# A JSON string, escapes included: brackets inside strings don't nest anything.
_JSON_STRING = re.compile(rb'"(?:[^"\\]+|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def json_depth_exceeds(body: bytes, max_depth: int) -> bool:
    """Whether `body`, read as JSON, nests arrays and objects deeper than `max_depth`."""
    depth = 0
    for byte in _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKETS):
        depth += _DEPTH_STEP[byte]
        if depth > max_depth:
            return True
    return False


class RequestTooLarge(TooLarge):
    """The body passed the size limit while it was being read."""


class BodyLimits:
    """Reads each HTTP request's body up front and answers, with `{"error": reason}`:

    - 413 once the body passes `max_bytes` (stopping there: the rest is never read);
    - 400 when the body is JSON (it starts with `{` or `[`; REST clients send JSON under any
      content type) nested deeper than `max_json_depth`.

    The route then receives the body as sent. Bodies are small (the size limit), so holding one
    in memory costs no more than the route's own `await request.body()`.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int = MAX_BODY_BYTES, max_json_depth: int = MAX_JSON_DEPTH) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._read(scope, receive)
        except RequestTooLarge as too_large:
            # Connection: close, or the server would read (and discard) the rest to keep the
            # connection for another request.
            await JSONResponse({"error": str(too_large)}, status_code=413, headers={"Connection": "close"})(
                scope, receive, send
            )
            return
        if body is None:  # the client went away mid-body: there is no one to answer
            return
        if body.lstrip()[:1] in (b"{", b"[") and json_depth_exceeds(body, self.max_json_depth):
            reason = f"request body nests JSON deeper than {self.max_json_depth} levels"
            await JSONResponse({"error": reason}, status_code=400)(scope, receive, send)
            return
        await self.app(scope, _replaying(body, receive), send)

    async def _read(self, scope: Scope, receive: Receive) -> bytes | None:
        """The whole body (None if the client disconnected first), or RequestTooLarge as soon
        as it is known to be over the limit."""
        length = dict(scope["headers"]).get(b"content-length", b"").decode("latin-1")
        if length.isdigit() and int(length) > self.max_bytes:
            raise RequestTooLarge(f"request body is {length} bytes; the limit is {self.max_bytes}")
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise RequestTooLarge(f"request body is over the limit of {self.max_bytes} bytes")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        return b"".join(chunks)


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the route `body` in one message, then waits as the server's does
    (for the client to disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
