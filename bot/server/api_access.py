"""Who may call the Rasa-compatible API routes that read conversations or the model.

Two kinds of credential, as Rasa's `--auth-token` and `--jwt-secret`:

- a static token (`crowddesk run --auth-token`, or `CROWDDESK_API_TOKEN`), full access;
- a JWT signed with the shared secret (`--jwt-secret`, or `CROWDDESK_JWT_SECRET`) whose payload
  is Rasa's `{"user": {"username": ..., "role": ...}}`: role `admin` reads every conversation,
  any other role only the conversation whose sender id is `username`.

Either is sent as `Authorization: Bearer <credential>` or as `?token=<credential>`. With
neither configured the routes refuse every request, so a forgotten setting never exposes data.
"""

from __future__ import annotations

import hmac
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jwt
from fastapi import Depends, HTTPException, Security
from fastapi.security import APIKeyQuery, HTTPAuthorizationCredentials, HTTPBearer

from crowddesk.bot.web.services import provided
from crowddesk.errors import Rejected

TOKEN_ENV = "CROWDDESK_API_TOKEN"
JWT_SECRET_ENV = "CROWDDESK_JWT_SECRET"
# The shortest secret each method is safe with (RFC 7518 section 3.2: at least the hash's size).
JWT_METHODS = {"HS256": 32, "HS384": 48, "HS512": 64}
ADMIN_ROLE = "admin"

_bearer = HTTPBearer(auto_error=False, description="the API token, or a JWT signed with the JWT secret")
_query_token = APIKeyQuery(name="token", auto_error=False, description="Rasa's `?token=`; prefer the header")


def presented_credential(
    bearer: HTTPAuthorizationCredentials | None = Security(_bearer),
    query_token: str | None = Security(_query_token),
) -> str | None:
    """The credential from `Authorization: Bearer`, else from Rasa's `?token=`."""
    return bearer.credentials if bearer is not None else query_token


class ApiAccessError(Rejected, ValueError):
    """The access settings are unusable (an unknown JWT method, an empty or short secret)."""


@dataclass(frozen=True)
class Caller:
    """Who a credential says the caller is: `username` None for the static token (full access)."""

    role: str
    username: str | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


@dataclass(frozen=True)
class ApiAccess:
    """The configured credentials, which the FastAPI dependencies `api_admin` and
    `conversation_reader` check each request's credential against."""

    token: str | None = None
    jwt_secret: str | None = None
    jwt_method: str = "HS256"

    def __post_init__(self) -> None:
        if self.jwt_method not in JWT_METHODS:
            raise ApiAccessError(f"--jwt-method: {self.jwt_method!r} is not one of {', '.join(JWT_METHODS)}")
        if self.token is not None and not self.token.strip():
            raise ApiAccessError(f"--auth-token / {TOKEN_ENV}: is empty; leave it out or give a secret value")
        minimum = JWT_METHODS[self.jwt_method]
        if self.jwt_secret is not None and len(self.jwt_secret.encode()) < minimum:
            raise ApiAccessError(
                f"--jwt-secret / {JWT_SECRET_ENV}: {self.jwt_method} needs a secret of at "
                f"least {minimum} bytes (RFC 7518 section 3.2)"
            )

    @classmethod
    def configured(
        cls,
        token: str | None = None,
        jwt_secret: str | None = None,
        jwt_method: str = "HS256",
        environ: Mapping[str, str] = os.environ,
    ) -> ApiAccess:
        """Command-line values first, then the environment (which keeps secrets out of `ps`)."""
        return cls(
            token or environ.get(TOKEN_ENV) or None, jwt_secret or environ.get(JWT_SECRET_ENV) or None, jwt_method
        )

    def caller(self, credential: str | None) -> Caller:
        """Who `credential` belongs to; 401 naming the reason when it proves nothing."""
        if self.token is None and self.jwt_secret is None:
            raise _unauthorized(
                "the API is locked: no API token is configured; start the server with "
                f"`crowddesk run --auth-token ...` or set {TOKEN_ENV} (or {JWT_SECRET_ENV} for signed JWTs)"
            )
        if not credential:
            raise _unauthorized("missing API token: send `Authorization: Bearer <token>` or `?token=<token>`")
        if self.token is not None and hmac.compare_digest(credential.encode(), self.token.encode()):
            return Caller(ADMIN_ROLE)
        if self.jwt_secret is None:
            raise _unauthorized("invalid API token")
        try:
            payload = jwt.decode(credential, self.jwt_secret, algorithms=[self.jwt_method])
        except jwt.ExpiredSignatureError:
            raise _unauthorized("the JWT has expired") from None
        except jwt.InvalidSignatureError:
            raise _unauthorized("the JWT's signature does not match the JWT secret") from None
        except jwt.InvalidTokenError as exc:
            raise _unauthorized(f"invalid API token or JWT ({exc})") from None
        return _jwt_caller(payload)


Access = Annotated[ApiAccess, Depends(provided(ApiAccess))]
Credential = Annotated[str | None, Depends(presented_credential)]


def api_admin(access: Access, credential: Credential) -> Caller:
    """Dependency: the static token or an admin JWT (Rasa's `/model/parse` needs admin too)."""
    caller = access.caller(credential)
    if not caller.is_admin:
        raise HTTPException(403, detail=f"this route needs role {ADMIN_ROLE!r}; the JWT's role is {caller.role!r}")
    return caller


def conversation_reader(sender_id: str, access: Access, credential: Credential) -> Caller:
    """Dependency: a caller who may read conversation `sender_id` (the route's path parameter)."""
    caller = access.caller(credential)
    if not caller.is_admin and caller.username != sender_id:
        raise HTTPException(
            403,
            detail=f"this JWT (user {caller.username!r}, role {caller.role!r}) may read only its own conversation",
        )
    return caller


def _jwt_caller(payload: Mapping[str, Any]) -> Caller:
    """Rasa's payload: `{"user": {"username": ..., "role": ...}}`."""
    user = payload.get("user")
    claims: Mapping[str, Any] = user if isinstance(user, Mapping) else {}
    role, username = claims.get("role"), claims.get("username")
    if not isinstance(role, str):
        raise HTTPException(403, detail='the JWT has no user.role claim; expected {"user": {"username", "role"}}')
    return Caller(role, username if isinstance(username, str) else None)


def _unauthorized(reason: str) -> HTTPException:
    return HTTPException(401, detail=reason, headers={"WWW-Authenticate": "Bearer"})
