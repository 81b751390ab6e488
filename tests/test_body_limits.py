"""Request bodies are held to their size while they stream in, and to a JSON nesting depth,
through a real uvicorn server on the loopback interface (no Content-Length to trust)."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from crowddesk.bot.web.limits import MAX_BODY_BYTES, BodyLimits, json_depth_exceeds
from tests.demo_bot import serving

CHUNK = 64 * 1024


async def body_length(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


@pytest.fixture(scope="module")
def limited_server() -> Iterator[str]:
    """A route that reads its whole body, behind `BodyLimits`, served by uvicorn."""
    app = BodyLimits(Starlette(routes=[Route("/echo", body_length, methods=["POST"])]))
    with serving(app, log_level="warning") as url:
        yield url


class Upload:
    """A chunked request body (a generator: httpx sends no Content-Length) that counts what
    the client managed to send."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.sent = 0

    def __iter__(self) -> Iterator[bytes]:
        while self.sent < self.total:
            self.sent += CHUNK
            yield b"x" * CHUNK


def test_a_chunked_body_over_the_limit_gets_413_before_it_is_all_sent(limited_server: str) -> None:
    upload = Upload(100 * 1024 * 1024)

    with httpx.Client(timeout=30) as client:
        response = client.post(f"{limited_server}/echo", content=upload)

    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert f"limit of {MAX_BODY_BYTES} bytes" in response.json()["error"]
    # The server stopped reading at the limit; only what the sockets' buffers took got out.
    assert upload.sent < 16 * 1024 * 1024


def test_a_chunked_body_under_the_limit_reaches_the_route_whole(limited_server: str) -> None:
    upload = Upload(3 * CHUNK)

    with httpx.Client(timeout=30) as client:
        response = client.post(f"{limited_server}/echo", content=upload)

    assert response.status_code == 200
    assert response.json() == {"bytes": 3 * CHUNK}


def test_a_declared_length_over_the_limit_is_refused_unread(limited_server: str) -> None:
    with httpx.Client(timeout=30) as client:
        response = client.post(f"{limited_server}/echo", content=b"x" * (MAX_BODY_BYTES + 1))

    assert response.status_code == 413
    assert f"{MAX_BODY_BYTES + 1} bytes; the limit is {MAX_BODY_BYTES}" in response.json()["error"]


def test_json_nested_100k_deep_gets_400_with_the_reason(limited_server: str) -> None:
    deep = b"[" * 100_000 + b"]" * 100_000

    with httpx.Client(timeout=30) as client:
        response = client.post(f"{limited_server}/echo", content=deep, headers={"content-type": "application/json"})

    assert response.status_code == 400
    assert response.json() == {"error": "request body nests JSON deeper than 32 levels"}


@pytest.mark.parametrize(
    ("body", "too_deep"),
    [
        (b'{"a": ' * 32 + b"1" + b"}" * 32, False),
        (b'{"a": ' * 33 + b"1" + b"}" * 33, True),
        (b'  [[{"text": "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\\"[[["}]]', False),  # brackets in strings
        (b'{"sender": "a", "message": "\\\\"}', False),
        (b"[" * 40, True),  # unterminated, and too deep before it ends
    ],
)
def test_json_depth_counts_only_brackets_outside_strings(body: bytes, too_deep: bool) -> None:
    assert json_depth_exceeds(body, 32) is too_deep
