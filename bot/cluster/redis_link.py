"""The one Redis client a server process shares between its turn locks and its live pushes."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# Fail fast while Redis is down (a restart, a failover): a request answers 503 within about a
# second rather than hanging, and the next one reconnects by itself.
CONNECT_TIMEOUT_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 2.0
RETRIES = 2


def connect(url: str) -> Redis:
    """A client for `url` (redis://, rediss:// or unix://); it connects on first use."""
    return Redis.from_url(
        url,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), RETRIES),
        health_check_interval=30,
    )
