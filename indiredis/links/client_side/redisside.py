"""The Redis side of a bridge: applies INDI traffic to the store and relays client XML.

Messages from the INDI side are applied in batches (one pipelined round trip
each).  XML that clients publish on the ``to_indi`` channel is parsed (garbage
is logged and skipped, so it never reaches the instruments) and forwarded.
When Redis is unreachable the from_indi channel switches to drop-oldest mode and
the number of dropped messages is logged on recovery; after any outage the
bridge asks the INDI side for every property again, so a Redis that came back
empty is repopulated.

When Redis answers but refuses writes (MISCONF, OOM, READONLY: :mod:`.refusals`)
the link keeps its connection: one log line names the cause, the batch that was
refused goes back to the head of the channel, which drops its oldest messages
once full, and a no-op write probes Redis with the link's capped back-off until
it is accepted.  Then what waited is written (hashes whole again), and only if
messages were dropped meanwhile is the INDI side asked for every property.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Any, TypeVar

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ...core.channel import Channel
from ...core.sides import FromIndiItem, Side
from ...core.tasks import run_until_first_done
from ...errors import LinkLost
from ...events import Event, journal_fields
from ...hosts import RedisServer
from ...protocol.document import parse_document
from ...protocol.messages import Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from ...redisconnect import (
    async_redis_client,
    current_master,
    describe,
    is_connection_error,
    sentinel_clients,
    sentinel_errors,
    uses_sentinel,
)
from ...store.blobs import DEFAULT_MAX_BLOB_SIZE
from ...store.keys import KeySpace
from ...store.redisstore import RedisStore
from ...store.retention import Retention
from ..base import Link, report_malformed, resume_consuming
from ..loglimit import LogLimiter
from .refusals import refusal
from .storewriter import StoreWriter

log = logging.getLogger(__name__)

HEARTBEAT_PERIOD = 1.0  # seconds between two heartbeats
HEARTBEAT_EXPIRY = 5  # seconds the heartbeat key lives when not rewritten


CLOSE_TIMEOUT = 2.0  # seconds a connection may take to close before it is abandoned
#: seconds Redis may take to answer the first PING of a connection or a heartbeat before the link
#: counts it gone: one that stopped answering (frozen, or cut off without a reset) is noticed within
#: HEARTBEAT_PERIOD + ANSWER_TIMEOUT, on every redis-py version
ANSWER_TIMEOUT = 5.0

T = TypeVar("T")


async def answered(request: Awaitable[T], what: str) -> T:
    """Await a Redis request, or raise LinkLost when Redis does not answer in ANSWER_TIMEOUT.

    ``wait_for`` runs the request as a task of its own: a cancellation scope on this task (asyncio.timeout)
    would be confused by async-timeout 4.0.2 under Debian's redis-py 4.3, which cancels without
    ``uncancel()`` (see :meth:`RedisLink._apply_batches`), and its CancelledError would end the bridge."""
    try:
        return await asyncio.wait_for(request, ANSWER_TIMEOUT)
    except TimeoutError:
        raise LinkLost(f"Redis did not answer {what} within {ANSWER_TIMEOUT:g} s") from None


async def aclose(resource: Any) -> None:
    """Close a redis.asyncio client or pubsub (``aclose`` in redis-py 5, ``close`` before), waiting
    at most CLOSE_TIMEOUT: redis-py waits for the socket to be closed, which can hang (redis-py
    issue 3941), and a bridge that is stopping or reconnecting must not wait on it."""
    closer = getattr(resource, "aclose", None) or resource.close
    try:
        await asyncio.wait_for(closer(), CLOSE_TIMEOUT)
    except TimeoutError:
        log.debug("a Redis connection did not close within %g s; abandoned", CLOSE_TIMEOUT)


def redis_connection(server: RedisServer, **options: Any) -> aioredis.Redis:
    """An asyncio Redis client for ``server``, of any kind (:mod:`indiredis.redisconnect`).

    redis-py's own silent retries are turned off (newer versions retry three
    times by default): a Redis restarted between two writes would otherwise go
    unnoticed, and one that came back empty would never be repopulated.  Every
    connection error surfaces, and the link reconnects and resynchronises.

    Reads have no timeout of redis-py's (it has none before version 5 and 5 s
    after, and the pub/sub relay waits for messages without end); the link
    times the first PING and the heartbeat itself (:func:`answered`), so a
    Redis that stops answering is noticed alike on every version.
    """
    return async_redis_client(
        server,
        socket_connect_timeout=5,
        socket_timeout=None,
        socket_keepalive=True,
        retry=Retry(NoBackoff(), 0),
        **options,
    )


def parse_client_xml(data: bytes, max_message_size: int, source: str) -> list[Message]:
    """Messages in a piece of client XML; bad parts are logged and skipped."""
    messages, problems = parse_document(data, max_message_size)
    for problem in problems:
        report_malformed(source, problem)
    return messages


class RedisLink(Link):
    """Client side of a bridge backed by the Redis key space."""

    what = "Redis"
    link = "redis"

    def __init__(
        self,
        redisserver: RedisServer,
        log_lengths: dict[str, int] | None = None,
        blob_folder: str | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
        blob_retention: Retention | None = None,
    ) -> None:
        super().__init__(describe(redisserver))
        self.server = redisserver
        #: the master a Sentinel link writes to (host:port), once known
        self.master: str | None = None
        self.store = RedisStore(redisserver, log_lengths, blob_folder, max_blob_size)
        self.max_message_size = max_message_size
        self._sessions = 0
        self.retention = blob_retention or Retention()
        self.writer = StoreWriter(self.store, self.retention)
        if self.store.blobs is not None:
            self.store.blobs.min_free = self.retention.min_free
            self.store.blobs.retention = self.retention  # applied as each frame is opened, too
        self._bridge_name = ""
        self._peer: Side | None = None
        self._refusal_lock = asyncio.Lock()  # one task waits out a refusal, the others wait for it
        #: commands relayed while Redis refuses to record what they change (the relay goes on)
        self._relay_refusals = LogLimiter(log, "client commands not recorded in Redis")

    def keep_heartbeat(self, bridge_name: str, peer: Side) -> None:
        """Keep the heartbeat key of the key space (``P heartbeat``) while connected: every second,
        with a 5 s expiry, JSON of the bridge's name, the time (UTC), and both sides' states, so that a
        client can tell live data from stale (key gone: this bridge stopped; a link down: its side)."""
        self._bridge_name, self._peer = bridge_name, peer

    def heartbeat(self) -> str:
        """The heartbeat's JSON now."""
        links = [self._peer.state] if self._peer is not None else []
        links.append(self.state)
        return json.dumps(
            {
                "bridge": self._bridge_name,
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "links": [
                    {"what": s.what, "connected": s.connected, "partial": s.partial, "text": s.text}
                    for s in links
                ],
            }
        )

    async def _beat(
        self, rconn: aioredis.Redis, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        key = KeySpace(self.server.keyprefix).heartbeat()
        while True:
            try:
                await answered(rconn.set(key, self.heartbeat(), ex=HEARTBEAT_EXPIRY), "the heartbeat")
            except redis.exceptions.ResponseError as exc:  # not beating meanwhile: the key expires
                await self._until_writable(rconn, from_indi, to_indi, exc)
                continue
            await asyncio.sleep(HEARTBEAT_PERIOD)

    # ---------------------------------------------------------------- writes refused
    async def _until_writable(
        self,
        rconn: aioredis.Redis,
        from_indi: Channel[FromIndiItem],
        to_indi: Channel[Message],
        exc: redis.exceptions.ResponseError,
    ) -> None:
        """Redis refused a write with ``exc``: return once it accepts writes again (re-raise ``exc`` when
        it is no refusal, ending the session).

        The first task of the session to meet the refusal waits it out; the others wait for it, then
        find Redis writable.  Meanwhile the link is down (one log line naming the cause, once per cause),
        the from_indi channel drops its oldest messages once full, and a no-op write probes Redis after
        each delay of the link's back-off.  Then the hashes are written whole again (writes made during
        the refusal may have been taken in part), and, if messages were dropped, the INDI side is asked
        for every property.
        """
        cause = refusal(exc)
        if cause is None:
            raise exc
        if uses_sentinel(self.server) and cause.startswith("READONLY"):
            # the master was demoted to a replica: reconnect, asking the sentinels for the new one
            raise LinkLost(f"the master {self.master} is now a replica") from exc
        async with self._refusal_lock:
            cause = await self._refused(rconn)
            if cause is None:  # another task of this session waited it out, or it was brief
                return
            from_indi.set_consumer_up(False)
            await self._wait_out(rconn, cause)
            await self.store.load_scripts(rconn)  # and every hash is written whole again
            dropped = from_indi.dropped
            resume_consuming(from_indi, "Redis", self.state)
            if dropped:  # the store misses what was dropped: ask for every property
                to_indi.push_front([Message.get_properties()])
            self.connected(self._connected_text())

    async def _wait_out(self, rconn: aioredis.Redis, cause: str | None) -> None:
        """Down while Redis refuses writes for ``cause``, probing after each delay of the back-off."""
        if self._stable_timer is not None:  # a refusal is no stable connection: keep the back-off
            self._stable_timer.cancel()
            self._stable_timer = None
        while cause is not None:
            reason = f"refusing writes ({cause})"
            delay = self.backoff.next()
            self.state.down(f"waiting for Redis: {reason}, retry in {delay:g} s", reason)
            await asyncio.sleep(delay)
            cause = await self._refused(rconn)

    async def _refused(self, rconn: aioredis.Redis) -> str | None:
        """Probe with a write that changes nothing (``SETRANGE`` of nothing on the heartbeat key, which
        Redis checks as any write): the cause when refused, None when accepted."""
        key = KeySpace(self.server.keyprefix).heartbeat()
        try:
            await answered(rconn.setrange(key, 0, ""), "a write")
        except redis.exceptions.ResponseError as exc:
            cause = refusal(exc)
            if cause is None:
                raise
            return cause
        return None

    def connection_error(self, exc: BaseException) -> bool:
        """redis-py's connection errors (lost, refused, timed out, no master known) are retried quietly."""
        return is_connection_error(exc)

    def _connected_text(self) -> str:
        master = f" (master {self.master})" if self.master else ""
        return f"connected to Redis {describe(self.server)}{master}"

    async def _note_master(self, rconn: aioredis.Redis) -> None:
        """With Sentinel, log the master this link writes to when it is first known or has changed
        (journal ``MESSAGE_ID`` :attr:`~indiredis.events.Event.REDIS_MASTER`)."""
        master = (
            await answered(current_master(rconn), "the sentinels") if uses_sentinel(self.server) else None
        )
        if master is None or master == self.master:
            return
        fields = self.state.fields | journal_fields(Event.REDIS_MASTER)
        if self.master is None:
            log.info("Redis master %s is %s", self.server.service_name, master, extra=fields)
        else:
            log.warning(
                "Redis master %s changed from %s to %s: writing to the new master",
                self.server.service_name,
                self.master,
                master,
                extra=fields,
            )
        self.master = master

    @property
    def summary(self) -> str:
        """Devices and properties held, for status lines."""
        return f"{self.store.device_count} devices, {self.store.property_count} properties"

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        rconn = redis_connection(self.server)
        pubsub = rconn.pubsub(ignore_subscribe_messages=True)
        try:
            with sentinel_errors(self.server):
                await self._serve(rconn, pubsub, from_indi, to_indi)
        finally:
            from_indi.set_consumer_up(False)
            await aclose(pubsub)
            await aclose(rconn)
            for sentinel in sentinel_clients(rconn):  # each session asks the sentinels anew
                await aclose(sentinel)

    async def _serve(
        self, rconn: aioredis.Redis, pubsub: Any, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        """One session on a connection: connected (and so ready) once it writes and listens to clients."""
        try:
            await answered(rconn.ping(), "PING")
        except redis.exceptions.ResponseError as exc:  # MISCONF refuses PING too
            await self._until_writable(rconn, from_indi, to_indi, exc)
        self.store.forget_unconfirmed()
        await self.store.start_blobs()  # once: left-over .incoming- files removed, index read
        resume_consuming(from_indi, "Redis", self.state)
        self._sessions += 1
        if self._sessions > 1:
            # Redis may have come back empty: ask for everything again
            await to_indi.put(Message.get_properties())
        await self._note_master(rconn)
        # subscribed before saying so: a client command published once the link is up is heard
        await answered(pubsub.subscribe(self.server.to_indi_channel), "SUBSCRIBE")
        self.connected(self._connected_text())
        tasks = [self._apply(rconn, from_indi, to_indi), self._relay(rconn, pubsub, from_indi, to_indi)]
        if self._bridge_name:
            tasks.append(self._beat(rconn, from_indi, to_indi))
        await run_until_first_done(*tasks)

    async def _apply(
        self, rconn: aioredis.Redis, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        """Apply batches from ``from_indi``; when Redis refuses a write, the batches not confirmed are
        back in the channel: wait until it accepts writes (:meth:`_until_writable`) and go on."""
        while True:
            try:
                await self.writer.apply_batches(rconn, from_indi, to_indi)
            except redis.exceptions.ResponseError as exc:
                self.store.forget_unconfirmed()  # nothing waits for the batches given up
                await self._until_writable(rconn, from_indi, to_indi, exc)

    async def _relay(
        self, rconn: aioredis.Redis, pubsub: Any, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        """Relay what clients publish on the ``to_indi`` channel (``pubsub`` is subscribed to it)."""
        async for item in pubsub.listen():
            if item.get("type") != "message":
                continue
            data = item["data"]
            if isinstance(data, str):
                data = data.encode("utf-8")
            for message in parse_client_xml(
                data, self.max_message_size, f"Redis channel {self.server.to_indi_channel}"
            ):
                await to_indi.put(message)
                try:
                    await self.store.note_outgoing(rconn, message)
                except redis.exceptions.ResponseError as exc:
                    # the blobs attribute is rewritten with the next data; the relay never waits
                    # for a refusal to end (the commands after it go on to the instruments)
                    cause = refusal(exc)
                    if cause is None:
                        raise
                    self._relay_refusals.warning(
                        "Redis refuses writes (%s): %s of %s relayed, not recorded in Redis",
                        cause,
                        message.tag,
                        message.device,
                    )
