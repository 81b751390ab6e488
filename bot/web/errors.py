"""How the HTTP API says no: every refusal answers `{"error": "<reason>"}` with its status code,
whether a route raised an HTTPException, FastAPI refused the request body, or the domain raised
one of the families of `crowddesk.errors`. The status code of each family is decided here only,
so domain code never knows HTTP."""

from __future__ import annotations

import logging

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import InterfaceError, OperationalError

from crowddesk.errors import Conflict, CrowdDeskError, Forbidden, Invalid, NotFound, Rejected, TooLarge, Unavailable

# Most specific first: a message refused because its conversation belongs to another channel is
# both a Rejected and a Conflict, and answers 409. An Invalid value answers 422, as a request
# body that fails its schema does: the same kind of refusal, found one layer further in.
logger = logging.getLogger(__name__)

# A client retries a 503 after this many seconds: long enough for a database restart to be noticed.
UNAVAILABLE_RETRY_AFTER_SECONDS = 5

STATUS_CODES: tuple[tuple[type[CrowdDeskError], int], ...] = (
    (NotFound, 404),
    (Conflict, 409),
    (Forbidden, 403),
    (TooLarge, 413),
    (Invalid, 422),
    (Rejected, 400),
    (Unavailable, 503),
)


def status_code_for(error: CrowdDeskError) -> int | None:
    """The status code `error` answers with; None for errors that are no refusal (a 500)."""
    return next((code for family, code in STATUS_CODES if isinstance(error, family)), None)


def install_error_handlers(app: FastAPI) -> None:
    """Answer refusals on `app` as `{"error": ...}`, domain errors with their family's status code."""
    for family, _ in STATUS_CODES:
        app.add_exception_handler(family, _refused)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    for unavailable in (OperationalError, InterfaceError):
        app.add_exception_handler(unavailable, _database_unavailable)
    for unreachable in (RedisConnectionError, RedisTimeoutError):
        app.add_exception_handler(unreachable, _redis_unavailable)


async def _refused(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CrowdDeskError)  # registered for the families only
    if isinstance(exc, Unavailable):
        return _try_again(str(exc))
    return JSONResponse({"error": str(exc)}, status_code=status_code_for(exc) or 500)


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _database_unavailable(_: Request, exc: Exception) -> JSONResponse:
    """The database refused, dropped or timed out the connection (a restart, a failover, SQLite
    busy past its timeout): 503, so clients and platforms send the request again, rather than
    a 500 that reads as a bug. The driver's message is logged, never sent: it names the server."""
    logger.warning("database unavailable: %s", exc.__class__.__name__, exc_info=exc)
    return _try_again("the database is unavailable; try again shortly")


async def _redis_unavailable(_: Request, exc: Exception) -> JSONResponse:
    """Redis (the turn locks, the live pushes between processes) is down or restarting: 503, as
    for the database; its address stays in the log."""
    logger.warning("redis unavailable: %s", exc.__class__.__name__, exc_info=exc)
    return _try_again("the lock store (Redis) is unavailable; try again shortly")


def _try_again(reason: str) -> JSONResponse:
    return JSONResponse(
        {"error": reason}, status_code=503, headers={"Retry-After": str(UNAVAILABLE_RETRY_AFTER_SECONDS)}
    )


async def _invalid_request(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(e.get("type") == "json_invalid" for e in errors):
        return JSONResponse({"error": "request body is not valid JSON"}, status_code=400)
    details = [
        {"field": ".".join(str(p) for p in e.get("loc", ()) if p != "body"), "reason": e.get("msg")} for e in errors
    ]
    summary = "; ".join(f"{d['field'] or 'body'}: {d['reason']}" for d in details)
    return JSONResponse({"error": f"invalid request: {summary}", "details": details}, status_code=422)
