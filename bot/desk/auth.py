"""Who is calling the agent API: a bearer token resolved to an agent, and the role checks.

No `from __future__ import annotations`: FastAPI reads the dependency annotations at run time.
"""

import asyncio
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crowddesk.bot.desk.agents import Agent, AgentDirectory, AuthError

_bearer = HTTPBearer(auto_error=False)  # our own 401s carry a reason, HTTPBearer's don't


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The token from `Authorization: Bearer ...`, if one was sent."""
    return credentials.credentials if credentials else None


BearerToken = Annotated[str | None, Depends(bearer_token)]


class DeskAuth:
    """FastAPI dependencies: the signed-in agent (401 otherwise), and one with a role (403)."""

    def __init__(self, agents: AgentDirectory) -> None:
        self.agents = agents

    async def agent_for(self, token: str | None) -> Agent:
        """The agent behind `token`; 401 when it is missing, unknown, expired or disabled."""
        if not token:
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        try:
            return await asyncio.to_thread(self.agents.authenticate_token, token)
        except AuthError as exc:
            raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc

    async def signed_in(self, token: BearerToken) -> Agent:
        """Any signed-in account, whatever its role."""
        return await self.agent_for(token)

    async def ticket_worker(self, token: BearerToken) -> Agent:
        """An agent or admin: the roles that work tickets."""
        agent = await self.agent_for(token)
        if not agent.can("agent"):
            raise HTTPException(403, f"role {agent.role!r} can't work tickets")
        return agent

    async def admin(self, token: BearerToken) -> Agent:
        """An admin: the only role that manages accounts."""
        return await self.admin_for(token, "only admins manage agent accounts")

    async def admin_for(self, token: str | None, refusal: str) -> Agent:
        """The admin behind `token`; 401 as `agent_for`, 403 with `refusal` for other roles."""
        agent = await self.agent_for(token)
        if agent.role != "admin":
            raise HTTPException(403, refusal)
        return agent
