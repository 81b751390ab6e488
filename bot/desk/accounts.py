"""Agent API for sessions and accounts: sign in and out, list and create agents, revoke tokens.

Its routes are relative to the agent API's prefix; `api.py` includes them.
No `from __future__ import annotations`: FastAPI reads the route annotations at run time.
"""

import asyncio
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field

from crowddesk.bot.desk.agents import AGENT_ID, MIN_PASSWORD_CHARS, Agent, AuthError
from crowddesk.bot.desk.auth import AccountAdmin, Agents, BearerToken, SignedIn
from crowddesk.bot.desk.login_limits import LoginLimiter
from crowddesk.bot.web.services import provided

CONSOLE_TOKEN_DAYS = 1  # console sign-ins get a token for one working day, not the API's 90


class LoginBody(BaseModel):
    """A console sign-in."""

    agent_id: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class NewAgentBody(BaseModel):
    """An account an admin creates."""

    id: str = Field(pattern=AGENT_ID.pattern, description="sign-in id: letters, digits, . _ - @")
    name: str = Field(min_length=1, max_length=128, description="shown to colleagues and customers")
    role: Literal["agent", "editor", "admin"] = "agent"
    password: str | None = Field(
        default=None,
        min_length=MIN_PASSWORD_CHARS,
        max_length=1024,
        description="for the web console; without one, only tokens work",
    )


def agent_view(agent: Agent) -> dict[str, str]:
    """An account as the API shows it: never its password or tokens."""
    return {"id": agent.id, "name": agent.name, "role": agent.role}


router = APIRouter()
LoginLimits = Annotated[LoginLimiter, Depends(provided(LoginLimiter))]


@router.post(
    "/login",
    summary="Account id + password → a console token valid for one day "
    "(any role: each API checks the role it needs); 429 with Retry-After after "
    "repeated failures for the account or from the address",
)
async def login(body: LoginBody, request: Request, agents: Agents, limits: LoginLimits) -> dict[str, Any]:
    # Behind a reverse proxy this is the proxy's address unless uvicorn trusts its
    # X-Forwarded-For (FORWARDED_ALLOW_IPS).
    address = request.client.host if request.client else "unknown"
    refusal = await asyncio.to_thread(limits.refusal, body.agent_id, address)
    if refusal is not None:
        raise HTTPException(429, refusal.reason, headers={"Retry-After": str(refusal.retry_after)})
    try:
        agent = await asyncio.to_thread(agents.authenticate_password, body.agent_id, body.password)
    except AuthError as exc:
        await asyncio.to_thread(limits.failed, body.agent_id, address)
        raise HTTPException(401, str(exc)) from exc
    await asyncio.to_thread(limits.succeeded, agent.id)
    # One sign-in for both consoles: /desk (agents) and /kb (editors) each learn from their
    # API's 403 whether the account may use them.
    token = await asyncio.to_thread(agents.issue_token, agent.id, days=CONSOLE_TOKEN_DAYS)
    return {"token": token, "agent": agent_view(agent)}


@router.post("/logout", status_code=204, summary="Revoke the token this request was made with")
async def logout(agent: SignedIn, token: BearerToken, agents: Agents) -> Response:
    await asyncio.to_thread(agents.revoke_token, token or "")
    return Response(status_code=204)


@router.get(
    "/agents",
    summary="Colleagues who work tickets (id and name: the transfer picker); "
    "admins get every active account with its role",
)
async def list_agents(caller: SignedIn, agents: Agents) -> list[dict[str, str]]:
    found = await asyncio.to_thread(agents.list)
    if caller.role == "admin":
        return [agent_view(agent) for agent in found]
    return [{"id": agent.id, "name": agent.name} for agent in found if agent.can("agent")]


@router.post("/agents", status_code=201, summary="Create an account (admins only)")
async def create_agent(body: NewAgentBody, admin: AccountAdmin, agents: Agents) -> dict[str, str]:
    return agent_view(await asyncio.to_thread(agents.add, body.id, body.name, body.role, body.password))


@router.delete(
    "/agents/{agent_id}/tokens", summary="Revoke every token of an agent, signing them out everywhere (admins only)"
)
async def revoke_tokens(agent_id: str, admin: AccountAdmin, agents: Agents) -> dict[str, Any]:
    revoked = await asyncio.to_thread(agents.revoke_tokens, agent_id)
    return {"agent_id": agent_id, "revoked": revoked}
