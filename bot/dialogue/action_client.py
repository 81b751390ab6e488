"""Runs custom actions on a `rasa_sdk` action server over Rasa's webhook protocol.

Request:  POST <action_endpoint> {"next_action", "sender_id", "tracker", "domain", "version"}
Response: {"events": [...], "responses": [...]}; a 404 with {"action_name": ...} means the
server does not know the action.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from crowddesk.errors import CrowdDeskError

logger = logging.getLogger(__name__)

# The rasa_sdk action server checks this to decide which protocol features to use.
RASA_PROTOCOL_VERSION = "3.6.21"


class ActionServerError(CrowdDeskError):
    """The action server could not run an action (unreachable, unknown action, bad reply)."""


@dataclass(frozen=True)
class ActionResult:
    events: list[dict[str, Any]]
    responses: list[dict[str, Any]]


class ActionClient:
    """Calls one action server; retries connection failures and 5xx with backoff."""

    def __init__(
        self,
        url: str,
        *,
        timeout: float = 10.0,
        retries: int = 2,
        backoff: float = 0.2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.url = url
        self.retries = retries
        self.backoff = backoff
        self._client = httpx.AsyncClient(timeout=timeout, transport=transport)

    async def run(self, action: str, sender_id: str, tracker: dict[str, Any], domain: dict[str, Any]) -> ActionResult:
        payload = {
            "next_action": action,
            "sender_id": sender_id,
            "tracker": tracker,
            "domain": domain,
            "version": RASA_PROTOCOL_VERSION,
        }
        for attempt in range(self.retries + 1):
            try:
                response = await self._client.post(self.url, json=payload)
            except httpx.TransportError as exc:
                failure = f"action server at {self.url} is unreachable ({exc.__class__.__name__})"
            else:
                if response.status_code == 404:
                    raise ActionServerError(f"the action server at {self.url} has no action named {action!r}")
                if response.status_code < 500:
                    return self._result(action, response)
                failure = f"action server returned {response.status_code} for {action!r}"
            if attempt < self.retries:
                logger.warning("%s; retrying (%d/%d)", failure, attempt + 1, self.retries)
                await asyncio.sleep(self.backoff * 2**attempt)
        raise ActionServerError(failure)

    @staticmethod
    def _result(action: str, response: httpx.Response) -> ActionResult:
        if response.status_code != 200:
            raise ActionServerError(f"action {action!r} failed with HTTP {response.status_code}: {response.text[:200]}")
        try:
            body = response.json()
        except ValueError as exc:
            raise ActionServerError(f"action {action!r} returned invalid JSON") from exc
        events = body.get("events") or []
        responses = body.get("responses") or []
        if not isinstance(events, list) or not isinstance(responses, list):
            raise ActionServerError(f"action {action!r} returned a malformed body")
        return ActionResult(events, responses)

    async def aclose(self) -> None:
        await self._client.aclose()
