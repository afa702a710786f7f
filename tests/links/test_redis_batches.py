"""How the Redis side works through a stream of messages: Python and Redis at work at once.

Under load the Redis side prepares batch N+1 while Redis runs batch N.  That only helps if batch N
is on its way to Redis while N+1 is being prepared; otherwise the two take turns and ingest is bound
by the sum of both (issue 14: 7 500 msg/s where 11 000 was possible).  These tests pin down the
order of events with a real redis-server, and that a long batch does not hold up the event loop.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import redis.asyncio as aioredis

import indiredis
from indiredis.core.channel import Channel
from indiredis.core.sides import FromIndiItem
from indiredis.links.client_side.redisside import RedisLink, aclose
from indiredis.links.client_side.storewriter import BATCH_SIZE
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store import redisstore

DEFINITION = (
    '<defNumberVector device="Mount" name="EQ" state="Idle" perm="rw" timestamp="2026-01-01T00:00:00">'
    '<defNumber name="RA" format="%010.6m" min="0" max="24" step="0">0</defNumber>'
    '<defNumber name="DEC" format="%010.6m" min="-90" max="90" step="0">0</defNumber>'
    "</defNumberVector>"
)


def stamp(seq: int) -> str:
    """The timestamp of the ``seq``-th set (one of its own)."""
    return f"2026-01-01T00:00:00.{seq:06d}"


def stream(count: int) -> list[Message]:
    """The definition, then ``count`` sets of EQ, each with its own value and timestamp."""
    sets = "".join(
        f'<setNumberVector device="Mount" name="EQ" state="Ok" timestamp="{stamp(seq)}">'
        f'<oneNumber name="RA">{seq % 24}:{seq % 60:02d}:00</oneNumber>'
        f'<oneNumber name="DEC">-{seq % 90}:30:00</oneNumber></setNumberVector>'
        for seq in range(1, count + 1)
    )
    events = IndiStreamParser().feed((DEFINITION + sets).encode())
    assert all(isinstance(event, Message) for event in events)
    return events


@pytest.mark.parametrize("slice_size", [redisstore.PREPARE_SLICE, 10**9])
def test_a_batch_goes_to_redis_while_the_next_is_prepared(redis_proc, monkeypatch, slice_size):
    """Batch 1 is being sent before batch 2's preparation ends, and everything arrives in order;
    also when preparation does not yield (the Redis side yields once it started a send)."""
    monkeypatch.setattr(redisstore, "PREPARE_SLICE", slice_size)
    events: list[str] = []
    link = RedisLink(indiredis.redis_server("127.0.0.1", redis_proc.port))
    store = link.store
    prepare, send = store.prepare, store.send
    batches = 0

    async def recording_prepare(rconn: Any, messages: Any) -> Any:
        nonlocal batches
        batches += 1
        number = batches
        pipe = await prepare(rconn, messages)
        events.append(f"prepared {number}")
        return pipe

    async def recording_send(rconn: Any, pipe: Any) -> None:
        events.append("sending")
        await send(rconn, pipe)

    store.prepare = recording_prepare  # type: ignore[method-assign]
    store.send = recording_send  # type: ignore[method-assign]

    async def run() -> None:
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        from_indi: Channel[FromIndiItem] = Channel()
        for message in stream(3 * BATCH_SIZE):
            from_indi.put_nowait(message)
        applying = asyncio.ensure_future(link._apply(rconn, from_indi, Channel()))
        try:
            key = store.keys.attributes("EQ", "Mount")
            last = stamp(3 * BATCH_SIZE).encode()
            async with asyncio.timeout(60):
                while await rconn.hget(key, "timestamp") != last:
                    await asyncio.sleep(0.01)
        finally:
            applying.cancel()
            await asyncio.gather(applying, return_exceptions=True)
            await aclose(rconn)

    asyncio.run(run())
    assert events.index("sending") < events.index("prepared 2"), events


def test_the_event_loop_is_served_while_a_batch_is_prepared(redis_proc, monkeypatch):
    """A long batch yields to the loop every PREPARE_SLICE messages (the batch before is written to
    Redis's socket meanwhile, and client commands are relayed)."""
    monkeypatch.setattr(redisstore, "PREPARE_SLICE", 10)
    messages = stream(BATCH_SIZE)
    store = redisstore.RedisStore(indiredis.redis_server("127.0.0.1", redis_proc.port))

    async def run() -> int:
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        turns = 0

        async def ticker() -> None:
            nonlocal turns
            while True:
                await asyncio.sleep(0)
                turns += 1

        try:
            await store.apply(rconn, messages[:1])  # the definition
            ticking = asyncio.ensure_future(ticker())
            await asyncio.sleep(0)
            before = turns
            await store.prepare(rconn, messages[1:])
            during = turns - before
            ticking.cancel()
            await asyncio.gather(ticking, return_exceptions=True)
            return during
        finally:
            await aclose(rconn)

    assert asyncio.run(run()) >= (BATCH_SIZE - 1) // 10 - 1


def test_a_clients_enableblob_during_a_batch_lands_after_it(redis_proc, tmp_path):
    """A client's enableBLOB arriving while a batch is prepared (at one of its yields) changes the
    ``blobs`` attribute; the batch already holds a whole write of that hash with the old value, so the
    new value is written after the batch, and stays."""
    definition = (
        '<defBLOBVector device="Cam" name="B" state="Idle" perm="ro" timestamp="2026-01-01T00:00:00">'
        '<defBLOB name="IMG"/></defBLOBVector>'
    )
    store = redisstore.RedisStore(
        indiredis.redis_server("127.0.0.1", redis_proc.port), blob_folder=str(tmp_path)
    )
    key = store.keys.attributes("B", "Cam")

    def parsed(xml: str) -> list[Message]:
        return [event for event in IndiStreamParser().feed(xml.encode()) if isinstance(event, Message)]

    async def run() -> tuple[str, str]:
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port, decode_responses=True)
        try:
            await store.apply(rconn, parsed(definition) + stream(0))

            async def client() -> None:
                await asyncio.sleep(0)  # runs at the batch's first yield
                never = parsed('<enableBLOB device="Cam" name="B">Never</enableBLOB>')[0]
                await store.note_outgoing(rconn, never)

            enabling = asyncio.ensure_future(client())
            prepared = await store.prepare(rconn, parsed(definition) + stream(3 * redisstore.PREPARE_SLICE))
            # not a synchronisation: time for a write that jumped the queue to reach Redis (and show)
            await asyncio.sleep(0.05)
            await store.send(rconn, prepared)
            await enabling
            set_blob = '<setBLOBVector device="Cam" name="B" state="Ok" timestamp="2026-01-01T00:01:00"/>'
            await store.apply(rconn, parsed(set_blob))
            return store.model["Cam"]["B"].attrs["blobs"], await rconn.hget(key, "blobs")
        finally:
            await aclose(rconn)

    assert asyncio.run(run()) == ("Disabled", "Disabled")


def test_batches_not_confirmed_go_back_even_when_the_wait_for_the_one_in_flight_is_cancelled(redis_proc):
    """The session cancels the Redis side's tasks, and again every CANCEL_AGAIN seconds while one holds
    on (redis-py can swallow a cancellation while it awaits a reply): a second cancellation that
    arrives while the batch in flight is being waited for must not lose the batches not confirmed (they
    were put back only after that wait, so they were lost without a count: a Redis kill in the fault
    suite)."""
    link = RedisLink(indiredis.redis_server("127.0.0.1", redis_proc.port))
    store = link.store
    prepare, send = store.prepare, store.send
    messages = stream(3 * BATCH_SIZE)

    async def run() -> int:
        sending, preparing, release = asyncio.Event(), asyncio.Event(), asyncio.Event()
        prepared = 0

        async def held_send(rconn: Any, pipe: Any) -> None:  # the first batch's reply never comes
            sending.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                await release.wait()  # redis-py holding on to the cancellation
                raise

        async def gated_prepare(rconn: Any, batch: Any) -> Any:
            nonlocal prepared
            prepared += 1
            if prepared == 2:  # the next batch: the session ends meanwhile
                preparing.set()
                await asyncio.Event().wait()
            return await prepare(rconn, batch)

        store.send = held_send  # type: ignore[method-assign]
        store.prepare = gated_prepare  # type: ignore[method-assign]
        rconn = aioredis.Redis(host="127.0.0.1", port=redis_proc.port)
        from_indi: Channel[FromIndiItem] = Channel()
        for message in messages:
            from_indi.put_nowait(message)
        task = asyncio.ensure_future(link.writer.apply_batches(rconn, from_indi, Channel()))
        await sending.wait()
        await preparing.wait()
        task.cancel()  # the session ends
        await asyncio.sleep(0.1)  # the task now waits for the batch in flight to end
        task.cancel()  # cancelled again: that batch has not ended
        release.set()
        await asyncio.gather(task, return_exceptions=True)
        store.send, store.prepare = send, prepare  # type: ignore[method-assign]
        await aclose(rconn)
        return len(from_indi)

    assert asyncio.run(run()) == len(messages)
