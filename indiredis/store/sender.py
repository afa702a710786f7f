"""The store's commands sent to Redis: a batch in one write, on a connection of the store's own.

redis-py's pipeline would send a batch, but its machinery (a pipeline object, a connection taken from
the pool and given back, a callback for each reply) costs more than the batch's own work when a
message comes alone, which is how a mount's few messages a second come: every message is a batch of
one, and the time that machinery takes is added to each message's way into Redis.  A
:class:`CommandSender` holds one connection of the client's pool for the store's writes, packs a
batch with redis-py's packer, writes it at once and reads the replies in order with redis-py's
parser (hiredis when installed).  redis-py still connects (TCP, Unix socket, TLS, Sentinel's master)
and raises its own errors.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

import redis.exceptions

from ..redisconnect import dedicated_connection

__all__ = ["CommandSender"]


class CommandSender:
    """Sends batches of commands on one connection of a client's pool, one batch at a time."""

    def __init__(self) -> None:
        self._client: Any = None  # the client whose pool the connection came from
        self._connection: Any = None
        self._lock = asyncio.Lock()  # a batch's replies are read before the next batch is written

    async def run(self, rconn: Any, commands: Sequence[tuple[Any, ...]]) -> list[Any]:
        """Send ``commands`` (each the arguments of one Redis command) in one write and return their
        replies in order, an error reply as its exception (a ``ResponseError``) in its place.

        Any other failure (the connection lost, the caller cancelled) is raised, and the connection,
        whose replies were not all read, is never used again: the next batch takes another (the old
        one closes with the client)."""
        async with self._lock:
            connection = await self._connection_of(rconn)
            try:
                await connection.send_packed_command(connection.pack_commands(commands), check_health=False)
                return [await _reply(connection) for _ in commands]
            except BaseException:
                self._connection = None
                raise

    async def _connection_of(self, rconn: Any) -> Any:
        if self._connection is None or self._client is not rconn:
            self._connection = await dedicated_connection(rconn)
            self._client = rconn
        return self._connection


async def _reply(connection: Any) -> Any:
    try:
        return await connection.read_response()
    except redis.exceptions.ResponseError as exc:  # the connection stays in step: its reply was read
        return exc
