"""The one Redis connection factory: every Redis client of indiredis is made here.

The bridges (``redis.asyncio``), :func:`indiredis.tools.open_redis`, the web client and the service's
command line (``redis``) all take their client from :func:`redis_client` or :func:`async_redis_client`,
given a :class:`~indiredis.hosts.RedisServer`.  It knows three kinds of connection:

- **TCP** to ``host``:``port`` (the default), with TLS when ``ssl`` is on;
- a **Unix socket**, ``socket`` (Debian's ``redis-server`` can listen on
  ``/run/redis/redis-server.sock``);
- **Redis Sentinel**: ``sentinels`` are asked for the address of the master named ``service_name``
  before every new connection (redis-py's ``SentinelConnectionPool``), so a client follows the master
  after a failover; a connection that meets a READONLY reply (a master demoted to a replica) is
  dropped and the next one asks the sentinels again.

To add a kind of connection, this module and the fields of ``RedisServer`` (:mod:`indiredis.hosts`)
are the places to change.  Both redis-py 4.3 (Debian bookworm) and newer versions are supported.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.exceptions
import redis.sentinel

from .errors import LinkLost
from .events import host_port
from .hosts import RedisServer, redis_connection_options, redis_credentials

__all__ = [
    "MASTER_NOT_FOUND",
    "SENTINEL_TIMEOUT",
    "async_redis_client",
    "current_master",
    "dedicated_connection",
    "describe",
    "is_connection_error",
    "not_a_sentinel",
    "redis_client",
    "sentinel_clients",
    "sentinel_errors",
    "uses_sentinel",
]

#: seconds a sentinel may take to accept a connection and to answer
SENTINEL_TIMEOUT = 5.0

#: redis-py's "no sentinel knows a master of that name" (its text lists every sentinel client in full)
MASTER_NOT_FOUND = (redis.sentinel.MasterNotFoundError, redis.asyncio.sentinel.MasterNotFoundError)


def uses_sentinel(server: RedisServer) -> bool:
    """True when ``server`` is found through Redis Sentinel."""
    return bool(server.sentinels)


def describe(server: RedisServer) -> str:
    """Where ``server`` is, for log lines and ``INDIREDIS_PEER``: ``host:port``, ``unix:/path`` or
    ``sentinel mymaster@host:port,host:port``."""
    if server.socket:
        return f"unix:{server.socket}"
    if server.sentinels:
        return f"sentinel {server.service_name}@" + ",".join(host_port(h, p) for h, p in server.sentinels)
    return host_port(server.host, server.port)


def _sentinel_options(server: RedisServer) -> dict[str, Any]:
    """How to talk to the sentinels themselves (their own password; never the master's TLS)."""
    return {
        "password": server.sentinel_password or None,
        "socket_timeout": SENTINEL_TIMEOUT,
        "socket_connect_timeout": SENTINEL_TIMEOUT,
    }


def redis_client(server: RedisServer, **options: Any) -> redis.Redis:
    """A ``redis.Redis`` client for ``server`` (any kind); ``options`` are redis-py's (``socket_timeout``).

    Nothing is connected yet: the first command connects (and, with Sentinel, asks for the master)."""
    if server.sentinels:
        sentinel = redis.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # redis-py leaves it untyped
            list(server.sentinels), sentinel_kwargs=_sentinel_options(server), **redis_credentials(server)
        )
        client: redis.Redis = sentinel.master_for(  # type: ignore[no-untyped-call]  # untyped too
            server.service_name, redis_class=redis.Redis, **options
        )
        return client
    return redis.Redis(**redis_connection_options(server), **options)


def async_redis_client(server: RedisServer, **options: Any) -> redis.asyncio.Redis:
    """A ``redis.asyncio.Redis`` client for ``server`` (any kind), as :func:`redis_client`."""
    if server.sentinels:
        sentinel = redis.asyncio.sentinel.Sentinel(  # type: ignore[no-untyped-call]  # untyped in redis-py
            list(server.sentinels), sentinel_kwargs=_sentinel_options(server), **redis_credentials(server)
        )
        client: redis.asyncio.Redis = sentinel.master_for(  # type: ignore[no-untyped-call,unused-ignore]  # untyped in 4.3
            server.service_name, redis_class=redis.asyncio.Redis, **options
        )
        return client
    return redis.asyncio.Redis(**redis_connection_options(server), **options)


#: redis-py before 5.3 names the command a connection is taken for (and warns about it after)
_POOL_TAKES_A_COMMAND_NAME = (
    inspect.signature(redis.asyncio.ConnectionPool.get_connection).parameters["command_name"].default
    is inspect.Parameter.empty
)


async def dedicated_connection(rconn: redis.asyncio.Redis) -> Any:
    """A connection of ``rconn``'s pool (connected to the master, with Sentinel) for the caller alone:
    it is never given back, and closes when the client does."""
    pool: Any = rconn.connection_pool  # get_connection is untyped in some redis-py versions
    if _POOL_TAKES_A_COMMAND_NAME:
        return await pool.get_connection("_")
    return await pool.get_connection()


async def current_master(rconn: redis.asyncio.Redis) -> str | None:
    """``host:port`` of the master a Sentinel client writes to now (asked of the sentinels), or None
    for a client of another kind."""
    pool = rconn.connection_pool
    if not isinstance(pool, redis.asyncio.sentinel.SentinelConnectionPool):
        return None
    host, port = await pool.get_master_address()  # type: ignore[no-untyped-call]  # untyped in redis-py
    return host_port(str(host), int(port))


def sentinel_clients(rconn: Any) -> list[Any]:
    """The clients of the sentinels behind a Sentinel client (to close with it), or none."""
    manager = getattr(rconn.connection_pool, "sentinel_manager", None)
    return list(getattr(manager, "sentinels", ()))


def not_a_sentinel(exc: BaseException) -> bool:
    """True when ``exc`` is a Redis that is no sentinel answering a sentinel's question (an address in
    ``sentinels`` that names a Redis, 6379 for 26379): redis-py then gives up asking the others."""
    text = str(exc)
    return (
        isinstance(exc, redis.exceptions.ResponseError) and "unknown command" in text and "SENTINEL" in text
    )


def is_connection_error(exc: BaseException) -> bool:
    """True for redis-py's errors of the connection (lost, refused, timed out, not authenticated,
    no master known to the sentinels), which a link retries without logging a traceback."""
    return isinstance(
        exc,
        (
            redis.exceptions.ConnectionError,
            redis.exceptions.TimeoutError,
            redis.exceptions.AuthenticationError,
        ),
    )


@contextmanager
def sentinel_errors(server: RedisServer) -> Iterator[None]:
    """Turn redis-py's Sentinel failures into one short :class:`~indiredis.errors.LinkLost` each (its
    texts list every sentinel client in full, or are a Redis's "unknown command")."""
    try:
        yield
    except MASTER_NOT_FOUND:
        raise LinkLost(
            f"the sentinels gave no master {server.service_name!r} (none answered, or none knows it)"
        ) from None
    except redis.exceptions.ResponseError as exc:
        if not (server.sentinels and not_a_sentinel(exc)):
            raise
        raise LinkLost("an address of [redis] sentinels is a Redis, not a sentinel") from None
