"""Who is calling the agent API: a bearer token resolved to an agent, and the role checks, as
FastAPI dependencies on the app's AgentDirectory.

No `from __future__ import annotations`: FastAPI reads the dependency annotations at run time.
"""

import asyncio
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from crowddesk.bot.desk.agents import Agent, AgentDirectory, AuthError
from crowddesk.bot.web.services import provided
from crowddesk.errors import Forbidden

_bearer = HTTPBearer(auto_error=False)  # our own 401s carry a reason, HTTPBearer's don't

Agents = Annotated[AgentDirectory, Depends(provided(AgentDirectory))]


def bearer_token(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> str | None:
    """The token from `Authorization: Bearer ...`, if one was sent."""
    return credentials.credentials if credentials else None


BearerToken = Annotated[str | None, Depends(bearer_token)]


async def signed_in(agents: Agents, token: BearerToken) -> Agent:
    """Any signed-in account, whatever its role; 401 when the token is missing, unknown, expired
    or its account disabled."""
    if not token:
        raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
    try:
        return await asyncio.to_thread(agents.authenticate_token, token)
    except AuthError as exc:
        raise HTTPException(401, str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc


def holder_of(role: str, refusal: str) -> Callable[[Agent], Awaitable[Agent]]:
    """A dependency: a signed-in account that can act as `role` (admins can act as any role);
    403 with `refusal` otherwise, where `{role}` stands for the caller's role."""

    async def holder(agent: Annotated[Agent, Depends(signed_in)]) -> Agent:
        if not agent.can(role):
            raise Forbidden(refusal.format(role=agent.role))
        return agent

    return holder


SignedIn = Annotated[Agent, Depends(signed_in)]
TicketWorker = Annotated[Agent, Depends(holder_of("agent", "role {role!r} can't work tickets"))]
AccountAdmin = Annotated[Agent, Depends(holder_of("admin", "only admins manage agent accounts"))]
