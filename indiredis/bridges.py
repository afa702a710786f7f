"""The bridge functions: each a composition of one INDI-side and one client-side link.

``make_*`` functions build a :class:`~indiredis.bridge.Bridge` for use inside
an event loop (the daemons use these); the plain functions are the classic
blocking API and run until interrupted.
"""

from __future__ import annotations

from .bridge import Bridge, run_blocking
from .hosts import IndiServer, RedisServer
from .links.drivers import DriverPool
from .links.indiserver import IndiServerLink
from .links.redisside import RedisLink
from .protocol.parser import DEFAULT_MAX_MESSAGE_SIZE


def make_inditoredis(
    indi_host: IndiServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Bridge:
    """indiserver ⇄ Redis, as a :class:`Bridge` to run in an event loop."""
    return Bridge(
        "inditoredis",
        IndiServerLink(indi_host, max_message_size),
        RedisLink(redis_host, log_lengths, blob_folder, max_message_size),
    )


def inditoredis(
    indi_host: IndiServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
) -> None:
    """Connect to indiserver as a client and keep the Redis key space current; blocks.

    ``log_lengths`` overrides the default history lengths (see
    ``shared/spec/redis-keys.md``); ``blob_folder`` is where received BLOBs are
    written (BLOBs are enabled on every BLOB property when it is given).
    """
    run_blocking(make_inditoredis(indi_host, redis_host, log_lengths, blob_folder))


def make_driverstoredis(
    drivers: list[str],
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
) -> Bridge:
    """Driver processes ⇄ Redis (no indiserver), as a :class:`Bridge` to run in an event loop."""
    return Bridge(
        "driverstoredis",
        DriverPool(list(drivers), max_message_size),
        RedisLink(redis_host, log_lengths, blob_folder, max_message_size),
    )


def driverstoredis(
    drivers: list[str],
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
) -> None:
    """Run the INDI driver executables ``drivers`` as child processes and keep Redis current; blocks.

    Routing, snooping and BLOB policy are indiserver's; a driver that exits is
    reported and restarted with back-off; stopping stops every driver.
    """
    run_blocking(make_driverstoredis(drivers, redis_host, log_lengths, blob_folder))
