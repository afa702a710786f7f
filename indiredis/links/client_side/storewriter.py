"""The Redis link's write pipeline: batches of messages from the INDI side applied to the key space.

Under load the next batch is prepared while Redis runs the one before (one in flight at a time, an
:class:`~.inflight.InFlight`, so order is kept); when the channel is empty the batch in flight is
awaited first, so that every failure surfaces at once.  A failure returns every batch not confirmed by
Redis to the channel.  After each batch the BLOB data of new BLOB properties is asked for and the blob
retention applied.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from ...core.channel import Channel
from ...core.sides import FromIndiItem, Reset
from ...protocol.messages import DefBLOBVector, Message, SetBLOBVector
from ...protocol.vocabulary import BlobInstruction
from ...store.redisstore import RedisStore
from ...store.retention import Retention
from .inflight import InFlight

if TYPE_CHECKING:
    import redis.asyncio as aioredis

BATCH_SIZE = 500  # messages taken from the channel at a time


class StoreWriter:
    """Applies batches from the INDI side's channel to ``store`` (see the module docstring)."""

    def __init__(self, store: RedisStore, retention: Retention) -> None:
        self.store = store
        self.retention = retention

    async def apply_batches(
        self, rconn: aioredis.Redis, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        """Apply batches from ``from_indi`` until cancelled or a write fails (the batches not confirmed
        are then back in ``from_indi``); ``to_indi``: where requests for BLOB data go."""
        # no check of current_task().cancelling() here: async-timeout 4.0.2 (Debian bookworm, under
        # redis-py 4.3) cancels the task for its own timeouts without uncancel(), so the count stays up
        # and the session would end at once, again and again; a swallowed cancellation is repeated by
        # run_until_first_done instead
        flow: InFlight[FromIndiItem] = InFlight()
        try:
            while True:
                if flow.busy and not len(from_indi):
                    await flow.settle()
                    continue
                batch = await from_indi.get_batch(BATCH_SIZE)
                flow.take(batch)
                await self._write(rconn, flow, batch, from_indi, to_indi)
        except BaseException:
            # back first: waiting for the batch in flight can be cut short by the session cancelling
            # this task again (run_until_first_done repeats a cancellation every CANCEL_AGAIN seconds
            # while redis-py holds on to one), and what was not back in the channel by then was lost
            from_indi.push_front(flow.abandon())
            await flow.stopped()
            raise

    async def _write(
        self,
        rconn: aioredis.Redis,
        flow: InFlight[FromIndiItem],
        batch: list[FromIndiItem],
        from_indi: Channel[FromIndiItem],
        to_indi: Channel[Message],
    ) -> None:
        """One batch taken by ``flow``: written at once with a reset in it, else prepared and sent, in
        flight while more waits in ``from_indi``."""
        if any(isinstance(item, Reset) for item in batch):
            await flow.settle()
            await self._apply_with_resets(rconn, batch, to_indi)
            flow.confirm()
            return
        messages = [item for item in batch if isinstance(item, Message)]
        prepared = await self.store.prepare(rconn, messages)
        await flow.settle()  # the batch before is in Redis: this one may go
        if len(from_indi):  # more is waiting: prepare it while Redis runs this
            flow.launch(self.store.send(rconn, prepared))
            await asyncio.sleep(0)  # it starts writing to Redis now, not after the next batch
        else:
            await self.store.send(rconn, prepared)
            flow.confirm()
        await self._after(messages, to_indi)

    async def _apply_with_resets(
        self, rconn: aioredis.Redis, batch: list[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        messages: list[Message] = []
        for item in batch:
            if isinstance(item, Reset):
                if messages:
                    await self.store.apply(rconn, messages)
                    messages = []
                await self.store.clear(rconn)
            else:
                messages.append(item)
        if messages:
            await self.store.apply(rconn, messages)
            await self._after(messages, to_indi)

    async def _after(self, messages: list[Message], to_indi: Channel[Message]) -> None:
        """BLOB data asked for; files are in place once parsed (Redis may still be busy): retention."""
        await self._request_blobs(messages, to_indi)
        await self._prune_blobs(messages)

    async def _request_blobs(self, messages: list[Message], to_indi: Channel[Message]) -> None:
        """Ask for the data of every BLOB property defined, when BLOBs are stored."""
        for message in messages:
            if isinstance(message, DefBLOBVector) and self.store.blobs is not None:
                if self.store.blobs_enabled(message.device, message.name):
                    await to_indi.put(Message.enable_blob(message.device, message.name, BlobInstruction.ALSO))

    async def _prune_blobs(self, messages: list[Message]) -> None:
        """Apply the blob retention to the elements that received files (in a thread: it lists the
        folder)."""
        if self.store.blobs is None or not self.retention.limited:
            return
        received = {
            (message.device, message.name, member.name)
            for message in messages
            if isinstance(message, SetBLOBVector)
            for member in message.members
        }
        for device, name, element in sorted(received):
            await asyncio.to_thread(self.retention.prune, self.store.blobs, device, name, element)
