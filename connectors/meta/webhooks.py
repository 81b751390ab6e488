"""What every Meta channel shares (WhatsApp Cloud API, Messenger, Instagram): the Graph API's
address, the webhook's subscription handshake and its `X-Hub-Signature-256` check.

Meta verifies a callback URL with a GET carrying `hub.mode=subscribe`, the verify token the
developer typed into the app dashboard and a `hub.challenge` to echo back. Every POST is signed
with the app secret: `sha256=` and the hex HMAC-SHA256 of the raw body.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

from fastapi import HTTPException
from fastapi.responses import PlainTextResponse

from crowddesk.connectors.base import CredentialsError

GRAPH_API_URL = "https://graph.facebook.com"
SIGNATURE_HEADER = "X-Hub-Signature-256"
_SIGNATURE_PREFIX = "sha256="


def subscription_challenge(query: Mapping[str, str], verify_token: str) -> PlainTextResponse:
    """The answer to Meta's verification GET: the challenge echoed when the token matches, 403
    otherwise (and 400 when the request is not a subscription at all)."""
    if query.get("hub.mode") != "subscribe" or "hub.challenge" not in query:
        raise HTTPException(400, "expected hub.mode=subscribe with a hub.challenge")
    if not hmac.compare_digest(query.get("hub.verify_token", "").encode(), verify_token.encode()):
        raise HTTPException(403, "hub.verify_token does not match the channel's verify_token")
    return PlainTextResponse(query["hub.challenge"])


def signature(body: bytes, app_secret: str) -> str:
    """The `X-Hub-Signature-256` value Meta sends with `body`."""
    return _SIGNATURE_PREFIX + hmac.new(app_secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(body: bytes, header: str | None, app_secret: str) -> None:
    """Raise 403 unless `header` is the app secret's signature of the raw `body`."""
    if not header or not hmac.compare_digest(header.encode(), signature(body, app_secret).encode()):
        raise HTTPException(403, f"missing or wrong {SIGNATURE_HEADER} header")


def check_api_url(channel: str, values: Mapping[str, str]) -> None:
    """Raise `CredentialsError` unless the block's `api_url` (if set) is an http(s) URL; a test
    or a proxy sets one, Meta's own is `GRAPH_API_URL`."""
    if not values.get("api_url", GRAPH_API_URL).startswith(("https://", "http://")):
        raise CredentialsError(f"{channel}.api_url: expected an http(s):// URL such as {GRAPH_API_URL}")
