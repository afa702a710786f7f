"""The Redis store: the I/O half of the key space of ``docs/redis-keys.md``.

What each INDI message changes in the key space is decided by the pure model,
:class:`~.keyspace.KeySpaceModel` (no connection in sight: it returns the operations to apply).
:class:`RedisStore` applies them: each batch of messages in one pipelined round trip (current-state
writes, history pushes and the ``from_indi`` publications, mostly in one Lua script call:
:mod:`.writes`), the batches in the order they were prepared; it loads the Lua scripts on each
connection (and again when Redis lost them), and writes BLOB data that arrived whole to the blob
folder (:mod:`.blobs`) before the model records where it went.  A hash is written whole the first
time on each Redis connection and whenever a fixed value changes, then only the fields that change;
a Redis that came back empty is a new connection, so the next message of each property rebuilds its
hashes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, NamedTuple

import redis.exceptions

from ..errors import BlobError
from ..events import journal_fields
from ..hosts import RedisServer
from ..protocol.messages import Member, Message, SetBLOBVector, StreamedBlob
from ..protocol.xmlout import indi_timestamp
from .blobs import DEFAULT_MAX_BLOB_SIZE, BlobFolder, BlobStreams
from .freespace import is_refusal
from .keys import KeySpace
from .keyspace import KeySpaceModel
from .properties import PropertyModel, unsafe_name, write_definition_order
from .sender import CommandSender
from .writes import SCRIPTS, Writes, to_commands

__all__ = [
    "PREPARE_SLICE",
    "PreparedBatch",
    "PropertyModel",
    "RedisStore",
    "unsafe_name",
    "write_definition_order",
]

log = logging.getLogger(__name__)

#: messages prepared between two yields to the event loop (see :meth:`RedisStore.prepare`)
PREPARE_SLICE = 50


class PreparedBatch(NamedTuple):
    """A batch of writes :meth:`RedisStore.prepare` made, to be sent with :meth:`RedisStore.send`."""

    commands: list[tuple[Any, ...]]  #: the writes, each the arguments of one Redis command
    number: int  #: the batch's place in the order batches are prepared (and sent) in


class RedisStore:
    """Applies INDI messages to Redis; see the module docstring."""

    def __init__(
        self,
        redisserver: RedisServer,
        log_lengths: dict[str, int] | None = None,
        blob_folder: str | None = None,
        max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    ) -> None:
        self.server = redisserver
        self.keys = KeySpace(redisserver.keyprefix)
        self.blobs = BlobFolder(blob_folder, max_blob_size) if blob_folder else None
        #: what the key space holds, and what each message changes in it
        self.keyspace = KeySpaceModel(
            self.keys, redisserver.from_indi_channel, log_lengths, blobs_stored=self.blobs is not None
        )
        self.log_lengths = self.keyspace.log_lengths
        #: what the INDI side's parser streams BLOB data into (files in the blob folder)
        self.blob_streams = BlobStreams(self.blobs)
        self._scripts_loaded_on: Any = None
        self.sender = CommandSender()  # the writes' own connection
        # batches numbered as :meth:`prepare` begins them, and the newest Redis confirmed (they are sent
        # one at a time, in order): writes made outside them wait for those begun before (note_outgoing)
        self._begun = 0
        self._confirmed = 0
        self._confirmation = asyncio.Event()

    # ------------------------------------------------------------ statistics
    @property
    def model(self) -> dict[str, dict[str, PropertyModel]]:
        """What the key-space model knows: device -> property name -> property."""
        return self.keyspace.properties

    @property
    def device_count(self) -> int:
        """How many devices the store holds."""
        return self.keyspace.device_count

    @property
    def property_count(self) -> int:
        """How many properties the store holds."""
        return self.keyspace.property_count

    def blobs_enabled(self, device: str, name: str) -> bool:
        """Whether BLOB data may arrive on this connection for the property."""
        return self.keyspace.blobs_enabled(device, name)

    # ---------------------------------------------------------------- public
    async def apply(self, rconn: Any, messages: Sequence[Message]) -> None:
        """Apply ``messages`` in order in one pipelined round trip, then publish each.

        Re-applying a batch is harmless (hash writes are idempotent and history
        entries are pushed only when different), so a batch that fails half-way
        may simply be applied again.
        """
        await self.send(rconn, await self.prepare(rconn, messages))

    async def prepare(self, rconn: Any, messages: Sequence[Message]) -> PreparedBatch:
        """The first half of :meth:`apply`: update the model and return its writes as Redis commands, not
        sent yet (so that the next batch can be prepared while Redis runs this one).  Batches must be
        sent in the order they were prepared, one at a time.

        Every PREPARE_SLICE messages it yields to the event loop: the batch sent before goes on
        being written to Redis's socket meanwhile (otherwise Redis would only get it once this one
        is ready, and Python and Redis would take turns instead of working at once), and client
        commands and the heartbeat are not held up by a long batch.

        A batch given up half prepared (its connection failed, the task was cancelled) leaves the
        model ahead of Redis, with hashes taken as written whole that never were: harmless, as its
        messages go back to the channel and the next connection writes every hash whole again
        (:meth:`load_scripts`)."""
        self._begun += 1
        number = self._begun
        await self._scripts_on(rconn)
        writes = self.keyspace.writes()
        apply = self.keyspace.apply
        for index, message in enumerate(messages, 1):
            if isinstance(message, SetBLOBVector):
                await self._apply_one(writes, message)
            else:  # nothing to await: no coroutine made for it (the hot path)
                apply(writes, message)
            if index % PREPARE_SLICE == 0:
                await asyncio.sleep(0)  # let the loop send the batch before and serve the rest
        return PreparedBatch(to_commands(writes.take()), number)

    async def send(self, rconn: Any, batch: PreparedBatch) -> None:
        """The second half of :meth:`apply`: run a prepared batch in one round trip."""
        await self._send(rconn, batch.commands)
        self._confirmed = max(self._confirmed, batch.number)
        self._confirmation.set()

    def forget_unconfirmed(self) -> None:
        """Batches prepared and not confirmed were abandoned (a connection ended; their messages go
        back to the channel and are prepared again): nothing waits for them any more."""
        self._confirmed = self._begun
        self._confirmation.set()

    async def note_outgoing(self, rconn: Any, message: Message) -> None:
        """Record what a client sent that changes the store's view: an ``enableBLOB`` changes whether
        BLOB data may arrive, so the ``blobs`` attribute of the BLOB properties it names is rewritten
        (and logged) where it changed."""
        changed = self.keyspace.note_outgoing(message)
        if changed:
            # a batch begun before the change may write the attributes with the old value: after it
            await self._after_begun_batches()
            await self._scripts_on(rconn)
            await self._send(rconn, to_commands(self.keyspace.rewrite(changed)))

    async def clear(self, rconn: Any) -> None:
        """Remove every definition key under the prefix and forget the model (logs, last messages and
        getProperties records stay).

        Every key, not only those this store wrote: keys left by an earlier run (a bridge restarted,
        a device that lost a property meanwhile) would otherwise merge with the fresh definitions.
        """
        found: list[Any] = []
        for pattern in self.keyspace.definition_patterns():
            found += [key async for key in rconn.scan_iter(match=pattern, count=1000)]
        pipe = rconn.pipeline(transaction=False)
        for start in range(0, len(found), 1000):
            pipe.delete(*found[start : start + 1000])
        await pipe.execute()
        self.keyspace.forget()

    async def _scripts_on(self, rconn: Any) -> None:
        """Load the Lua scripts on ``rconn`` unless this store loaded them there already."""
        if self._scripts_loaded_on is not rconn:
            await self.load_scripts(rconn)

    async def load_scripts(self, rconn: Any) -> None:
        """Load the store's Lua scripts into Redis (done once per connection, and again if Redis lost
        them).  Redis may have lost more meanwhile: the next write of every hash is whole again."""
        for text in SCRIPTS.values():
            await rconn.script_load(text)
        self._scripts_loaded_on = rconn
        await self.start_blobs()
        self.keyspace.new_connection()

    async def start_blobs(self) -> None:
        """Start the blob folder (left-overs removed, index read: :meth:`BlobFolder.start`), once; done
        on the first connection to Redis, or by the first BLOB if it comes before."""
        if self.blobs is None:
            return
        try:
            await asyncio.to_thread(self.blobs.start)
        except OSError as exc:
            log.error("blob folder %s cannot be read: %s", self.blobs.folder, exc)

    # ------------------------------------------------------------- sending
    async def _after_begun_batches(self) -> None:
        """Wait until Redis confirmed every batch begun so far (the writes of a batch being prepared
        may hold what the model held before)."""
        begun = self._begun
        while self._confirmed < begun:
            self._confirmation.clear()
            await self._confirmation.wait()

    async def _send(self, rconn: Any, commands: list[tuple[Any, ...]]) -> None:
        """Run commands in one round trip (loading the scripts again and repeating what failed if
        Redis flushed them meanwhile); the first error reply is raised."""
        results = await self.sender.run(rconn, commands)
        pairs = zip(commands, results, strict=True)
        failed = [command for command, result in pairs if isinstance(result, Exception)]
        if not failed:
            return
        errors = [result for result in results if isinstance(result, Exception)]
        if all(isinstance(error, redis.exceptions.NoScriptError) for error in errors):
            # the scripts were flushed since they were loaded: load them and run what failed again
            await self.load_scripts(rconn)
            retried = await self.sender.run(rconn, failed)
            errors = [result for result in retried if isinstance(result, Exception)]
        if errors:
            raise errors[0]

    # ------------------------------------------------------------- BLOBs
    async def _apply_one(self, writes: Writes, message: Message) -> None:
        now = None
        if isinstance(message, SetBLOBVector):
            now = indi_timestamp()
            message = await self._store_blobs(message, now)
        self.keyspace.apply(writes, message, now)

    async def _store_blobs(self, message: SetBLOBVector, now: str) -> Message:
        """The message with where the data of each BLOB the model records went (written to the
        folder when it arrived whole, streamed there by the parser otherwise)."""
        stamp, targets = self.keyspace.blob_targets(message, now)
        if not targets:
            return message
        stored = {id(member): await self._store_blob(message, member, stamp) for member in targets}
        members = tuple(
            replace(member, blob=stored[id(member)]) if id(member) in stored else member
            for member in message.members
        )
        return replace(message, members=members)

    async def _store_blob(self, message: Message, member: Member, stamp: str) -> StreamedBlob:
        """Note a BLOB the parser streamed to the folder, or write one that arrived whole: where it
        went, or (logged) why it was not stored."""
        device, name = message.device, message.name
        label = f"{device}.{name}.{member.name}"
        where = journal_fields(device=device, prop=name)
        streamed = member.blob
        if streamed is not None:
            if is_refusal(streamed.problem):  # counted, and logged once a minute, by the folder
                log.debug("BLOB %s not stored: %s", label, streamed.problem, extra=where)
                return streamed
            if streamed.problem:
                log.error("BLOB %s not stored: %s", label, streamed.problem, extra=where)
                return streamed
        elif self.blobs is None:
            log.warning(
                "BLOB %s received but no blob folder is configured; data discarded", label, extra=where
            )
            return StreamedBlob(problem="no blob folder is configured")
        else:
            try:
                written, size = await asyncio.to_thread(
                    self.blobs.write,
                    device,
                    name,
                    member.name,
                    stamp,
                    member.blob_format,
                    member.text,
                    member.size,
                )
            except (BlobError, OSError) as exc:
                level = logging.DEBUG if is_refusal(str(exc)) else logging.ERROR
                log.log(level, "BLOB %s not stored: %s", label, exc, extra=where)
                return StreamedBlob(problem=str(exc) or type(exc).__name__)
            streamed = StreamedBlob(path=str(written), size=size, stamp=stamp)
        if self.blobs is not None:
            self.blobs.pin(device, name, member.name, streamed.path)
        return streamed
