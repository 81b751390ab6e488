"""Which web pages may call a channel from a browser: the `allowed_origins` setting.

A browser names the page that makes a cross-origin request in the `Origin` header (always on a
websocket handshake and on a POST); clients that are not browsers don't send it, and could
forge it anyway, so its absence is no reason to refuse.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from crowddesk.connectors.base import CredentialsError

SETTING = "allowed_origins"
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


def read_allowed_origins(channel: str, settings: Mapping[str, Any]) -> frozenset[str] | None:
    """The block's `allowed_origins` list, each checked to be an origin (or `*`); None if absent."""
    origins = settings.get(SETTING)
    if origins is None:
        return None
    if isinstance(origins, str) or not isinstance(origins, Iterable):
        raise CredentialsError(f"{channel}.{SETTING}: must be a list of origins")
    return frozenset(_checked_origin(channel, i, origin) for i, origin in enumerate(origins))


def origin_allowed(origin: str, host: str | None, allowed: frozenset[str] | None) -> bool:
    """Whether a page on `origin` may call a server reached as `host`.

    The server's own origin always may; `allowed` None means any localhost port (development),
    and `*` in it means any origin."""
    parts = urlsplit(origin)
    if parts.netloc == host:
        return True
    if allowed is None:
        return parts.hostname in LOCAL_HOSTS
    return "*" in allowed or origin in allowed


def _checked_origin(channel: str, position: int, origin: Any) -> str:
    if origin == "*":
        return origin
    parts = urlsplit(origin) if isinstance(origin, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.netloc
        or (parts.path or parts.query or parts.fragment)
    ):
        raise CredentialsError(
            f"{channel}.{SETTING}[{position}]: {origin!r} is not an origin such as "
            "https://shop.example.com (scheme, host and optional port, no path)"
        )
    return str(origin).lower()


def cors_headers(request: Request, allowed: frozenset[str] | None, channel: str) -> dict[str, str]:
    """The CORS headers that let an allowed page read the response ({} for a request without
    `Origin`); 403 naming the setting for any other page, so its request is not processed
    (a cross-origin `text/plain` POST reaches the server without a preflight)."""
    origin = request.headers.get("origin")
    if origin is None:
        return {}
    if not origin_allowed(origin, request.headers.get("host"), allowed):
        raise HTTPException(
            403, detail=f"origin {origin} may not call this webhook; add it to {channel}.{SETTING} in credentials.yml"
        )
    return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
