"""The one Redis client a server process shares between its turn locks and its live pushes."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

# Fail fast while Redis is down (a restart, a failover): a request answers 503 within about a
# second rather than hanging, and the next one reconnects by itself.
CONNECT_TIMEOUT_SECONDS = 1.0
COMMAND_TIMEOUT_SECONDS = 2.0
RETRIES = 2
# A burst of turns beyond this many Redis commands in flight waits for a connection (up to
# POOL_WAIT_SECONDS) instead of failing: a busy server queues, only a dead Redis refuses.
MAX_CONNECTIONS = 100
POOL_WAIT_SECONDS = 10.0


def connect(url: str) -> Redis:
    """A client for `url` (redis://, rediss:// or unix://); it connects on first use."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=MAX_CONNECTIONS,
        timeout=POOL_WAIT_SECONDS,
        socket_connect_timeout=CONNECT_TIMEOUT_SECONDS,
        socket_timeout=COMMAND_TIMEOUT_SECONDS,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.02), RETRIES),
        health_check_interval=30,
    )
    return Redis.from_pool(pool)
