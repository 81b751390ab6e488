"""The action-server client: Rasa's webhook protocol, retries, and clear failures."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest

from crowddesk.bot.dialogue.action_client import ActionClient, ActionServerError

URL = "http://127.0.0.1:5055/webhook"


def run(client: ActionClient, action: str = "action_check") -> object:
    async def go() -> object:
        try:
            return await client.run(action, "c1", {"sender_id": "c1", "slots": {}}, {"intents": []})
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_posts_the_rasa_payload_and_returns_events_and_responses() -> None:
    seen: list[dict[str, object]] = []

    def server(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return httpx.Response(
            200,
            json={
                "events": [{"event": "slot", "name": "order_number", "value": "CD-1"}],
                "responses": [{"text": "Done"}],
            },
        )

    result = run(ActionClient(URL, transport=httpx.MockTransport(server)))
    assert seen[0]["next_action"] == "action_check" and seen[0]["sender_id"] == "c1"
    assert set(seen[0]) == {"next_action", "sender_id", "tracker", "domain", "version"}
    assert result.events[0]["value"] == "CD-1" and result.responses == [{"text": "Done"}]


def test_retries_server_errors_then_succeeds() -> None:
    statuses = iter([503, 502, 200])

    def server(request: httpx.Request) -> httpx.Response:
        status = next(statuses)
        return httpx.Response(status, json={"events": [], "responses": []} if status == 200 else {})

    result = run(ActionClient(URL, backoff=0.0, transport=httpx.MockTransport(server)))
    assert result.events == [] and next(statuses, None) is None


def test_unknown_action_and_persistent_outage_raise_clear_errors() -> None:
    missing = ActionClient(
        URL,
        transport=httpx.MockTransport(
            lambda r: httpx.Response(404, json={"error": "No registered action found", "action_name": "x"})
        ),
    )
    with pytest.raises(ActionServerError, match="no action named 'action_check'"):
        run(missing)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    down = ActionClient(URL, retries=1, backoff=0.0, transport=httpx.MockTransport(refuse))
    with pytest.raises(ActionServerError, match="unreachable"):
        run(down)
