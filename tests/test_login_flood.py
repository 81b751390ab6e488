"""A flood of wrong-password sign-ins must not cost customers their messages (SQLite, real uvicorn)."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.browser import LiveServer

ACCOUNTS = 80
GUESSES_PER_ACCOUNT = 4  # under the per-account limit, so every guess is hashed
CUSTOMERS = 30


async def _flood_while_customers_talk(url: str, accounts: list[str]) -> tuple[list[int], list[int]]:
    # No kept-alive connections: under this load one can sit idle past uvicorn's keep-alive
    # timeout and be closed by the server just as the client reuses it (a ReadError that says
    # nothing about the server's answers).
    limits = httpx.Limits(max_connections=200, max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=url, timeout=180, limits=limits) as client:

        async def guess(account: str, n: int) -> int:
            # Each guesser has its own address (uvicorn trusts X-Forwarded-For from loopback), so
            # the per-address budget does not cut the flood short.
            response = await client.post(
                "/desk/api/login",
                json={"agent_id": account, "password": f"guess-{n}"},
                headers={"X-Forwarded-For": f"10.13.{accounts.index(account)}.{n}"},
            )
            return response.status_code

        async def customer(n: int) -> int:
            await asyncio.sleep(0.3 * n)  # spread over the flood
            response = await client.post(
                "/webhooks/rest/webhook", json={"sender": f"flood-{uuid.uuid4().hex[:8]}", "message": "hi"}
            )
            return response.status_code

        guesses = [guess(a, n) for a in accounts for n in range(GUESSES_PER_ACCOUNT)]
        results = await asyncio.gather(*guesses, *(customer(n) for n in range(CUSTOMERS)))
    return list(results[: len(guesses)]), list(results[len(guesses) :])


def test_customers_messages_survive_a_login_flood(live_server: LiveServer) -> None:
    accounts = [f"flood-{uuid.uuid4().hex[:8]}" for _ in range(ACCOUNTS)]
    for account in accounts:
        live_server.bot.agents.add(account, "Flooded", password="the right password")

    logins, messages = asyncio.run(_flood_while_customers_talk(live_server.url, accounts))

    assert set(logins) == {401}
    assert messages == [200] * CUSTOMERS
