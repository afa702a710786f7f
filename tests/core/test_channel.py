"""Channel: back-pressure while the consumer is up, drop-oldest (counted) while it is down, push_front
after a failed delivery, and get_batch's limits.

Every test runs in its own event loop.  Tasks are synchronised by turns of the loop
(:func:`run_ready_tasks`), never by time: a task that is still not done after every ready task has run
is waiting (for room, or for an item).
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from indiredis.core.channel import DEFAULT_BUFFER_SIZE, Channel, item_bytes
from indiredis.protocol.messages import Message, StreamedBlob
from tests.support.eventloop import run, run_ready_tasks


async def contents(channel: Channel[str]) -> list[str]:
    """Everything the channel holds, oldest first (taken out; never waits)."""
    return await channel.get_batch(len(channel)) if len(channel) else []


async def filled(maxsize: int, *items: str) -> Channel[str]:
    """A channel of ``maxsize`` holding ``items`` (put while the consumer is up: there must be room)."""
    channel: Channel[str] = Channel(maxsize, "test")
    for item in items:
        await channel.put(item)
    return channel


def test_defaults_and_a_channel_holds_at_least_one_item() -> None:
    channel: Channel[str] = Channel()
    assert channel.maxsize == DEFAULT_BUFFER_SIZE == 10_000
    assert channel.consumer_up and channel.dropped == 0 and len(channel) == 0
    with pytest.raises(ValueError):
        Channel(0)


def test_items_come_out_oldest_first() -> None:
    async def body() -> None:
        channel = await filled(10, "a", "b", "c")
        assert len(channel) == 3
        assert await channel.get() == "a"
        assert await channel.get_batch() == ["b", "c"]
        assert len(channel) == 0

    run(body)


def test_get_batch_returns_at_most_limit_items() -> None:
    async def body() -> None:
        channel = await filled(10, *"abcde")
        assert await channel.get_batch(2) == ["a", "b"]
        assert await channel.get_batch(2) == ["c", "d"]
        assert await channel.get_batch(2) == ["e"]  # fewer when fewer are there: it does not wait for more

    run(body)


def test_get_batch_default_limit_is_500() -> None:
    async def body() -> None:
        channel = await filled(1000, *(str(n) for n in range(600)))
        assert len(await channel.get_batch()) == 500
        assert len(await channel.get_batch()) == 100

    run(body)


def test_get_batch_waits_for_the_first_item() -> None:
    async def body() -> None:
        channel: Channel[str] = Channel(10)
        consumer = asyncio.ensure_future(channel.get_batch())
        await run_ready_tasks()
        assert not consumer.done()
        channel.put_nowait("a")
        channel.put_nowait("b")
        assert await consumer == ["a", "b"]
        # emptied: the next get_batch waits again
        second = asyncio.ensure_future(channel.get())
        await run_ready_tasks()
        assert not second.done()
        channel.put_nowait("c")
        assert await second == "c"

    run(body)


def test_full_channel_applies_back_pressure_while_the_consumer_is_up() -> None:
    async def body() -> None:
        channel = await filled(2, "a", "b")
        producer = asyncio.ensure_future(channel.put("c"))
        await run_ready_tasks()
        assert not producer.done(), "put must wait for room while the consumer is up"
        assert channel.dropped == 0 and len(channel) == 2
        assert await channel.get_batch(1) == ["a"]  # makes room
        await producer
        assert await contents(channel) == ["b", "c"]
        assert channel.dropped == 0

    run(body)


def test_several_blocked_producers_lose_nothing_and_keep_their_order() -> None:
    async def body() -> None:
        channel = await filled(1, "0")
        producers = [asyncio.ensure_future(channel.put(str(n))) for n in range(1, 6)]
        await run_ready_tasks()
        assert not any(p.done() for p in producers)
        received: list[str] = []
        while len(received) < 6:
            received += await channel.get_batch()
            await run_ready_tasks()
        await asyncio.gather(*producers)
        assert received == [str(n) for n in range(6)]
        assert channel.dropped == 0

    run(body)


def test_consumer_down_releases_blocked_producers_which_drop_the_oldest() -> None:
    async def body() -> None:
        channel = await filled(2, "a", "b")
        producer = asyncio.ensure_future(channel.put("c"))
        await run_ready_tasks()
        assert not producer.done()
        channel.set_consumer_up(False)
        assert not channel.consumer_up
        await producer
        assert channel.dropped == 1
        assert await contents(channel) == ["b", "c"]

    run(body)


def test_while_the_consumer_is_down_put_never_waits_and_counts_every_drop() -> None:
    async def body() -> None:
        channel: Channel[str] = Channel(3)
        channel.set_consumer_up(False)
        for n in range(10):
            await channel.put(str(n))  # would wait forever if it applied back-pressure
        assert channel.dropped == 7
        assert await contents(channel) == ["7", "8", "9"]  # the newest are kept

    run(body)


def test_take_dropped_returns_the_count_once() -> None:
    async def body() -> None:
        channel: Channel[str] = Channel(1)
        channel.set_consumer_up(False)
        for n in range(4):
            await channel.put(str(n))
        assert channel.take_dropped() == 3
        assert channel.take_dropped() == 0
        assert channel.dropped == 0

    run(body)


def test_back_pressure_again_once_the_consumer_is_up() -> None:
    async def body() -> None:
        channel: Channel[str] = Channel(1)
        channel.set_consumer_up(False)
        await channel.put("a")
        await channel.put("b")
        assert channel.take_dropped() == 1
        channel.set_consumer_up(True)
        producer = asyncio.ensure_future(channel.put("c"))
        await run_ready_tasks()
        assert not producer.done()
        assert await channel.get() == "b"
        await producer
        assert await contents(channel) == ["c"]
        assert channel.dropped == 0

    run(body)


def test_put_nowait_drops_the_oldest_even_while_the_consumer_is_up() -> None:
    channel: Channel[str] = Channel(2)
    for item in "abc":
        channel.put_nowait(item)
    assert channel.dropped == 1 and len(channel) == 2


def test_push_front_puts_items_back_at_the_head_in_their_order() -> None:
    async def body() -> None:
        channel = await filled(10, "a", "b", "c", "d")
        batch = await channel.get_batch(2)
        await channel.put("e")
        channel.push_front(batch)  # delivery of a, b failed
        assert await contents(channel) == ["a", "b", "c", "d", "e"]
        assert channel.dropped == 0

    run(body)


def test_push_front_beyond_maxsize_drops_the_oldest_and_counts_them() -> None:
    async def body() -> None:
        channel = await filled(3, "a", "b", "c")
        batch = await channel.get_batch(2)  # a, b taken; c left
        await channel.put("d")
        await channel.put("e")  # now c, d, e: full
        channel.push_front(batch)
        assert channel.dropped == 2
        assert await contents(channel) == ["c", "d", "e"]

    run(body)


def test_push_front_wakes_a_waiting_consumer() -> None:
    async def body() -> None:
        channel: Channel[str] = Channel(10)
        consumer = asyncio.ensure_future(channel.get_batch())
        await run_ready_tasks()
        channel.push_front([])  # nothing to give back: the consumer keeps waiting
        await run_ready_tasks()
        assert not consumer.done()
        channel.push_front(["a", "b"])
        assert await consumer == ["a", "b"]

    run(body)


# -- the byte bound ---------------------------------------------------------------------------
def blob(number: int, size: int = 1000) -> Message:
    """A BLOB message holding about ``2 * 4/3 * size`` bytes (its bytes and its base64 text)."""
    return Message.new_blob_vector("Cam", "CCD1", [("CCD1", size, ".fits", bytes([number % 256]) * size)])


def number(value: int) -> Message:
    return Message.new_vector("Number", "Mount", "EQ", {"RA": str(value)})


def test_a_blob_message_counts_its_bytes_and_its_text() -> None:
    message = blob(1)
    assert item_bytes(message) == len(message.raw) + len(message.members[0].text) > 2 * 1333
    assert item_bytes(number(1)) == len(number(1).raw)
    assert item_bytes("not a message") == 0


def test_a_blob_streamed_to_a_file_counts_the_files_bytes() -> None:
    """A frame written to the blob folder and not recorded yet counts its file's size: the channel's
    byte bound is what bounds the frames retention may not delete yet (docs/datapath.md)."""
    message = blob(1)
    member = replace(message.members[0], text="", blob=StreamedBlob("/blobs/f.fits", 50_000_000))
    streamed = replace(message, members=(member,))
    assert item_bytes(streamed) == len(message.raw) + 50_000_000


def test_beyond_its_bytes_a_channel_waits_while_the_consumer_is_up_but_one_item_always_passes() -> None:
    async def body() -> None:
        big = blob(1, 100_000)
        channel: Channel[Message] = Channel(100, "test", max_bytes=item_bytes(big) // 2)
        await channel.put(big)  # alone: passes, however large
        waiting = asyncio.ensure_future(channel.put(blob(2, 100_000)))
        await run_ready_tasks()
        assert not waiting.done() and len(channel) == 1
        assert await channel.get() is big
        await waiting
        assert len(channel) == 1 and channel.dropped == 0

    run(body)


def test_while_the_consumer_is_down_the_oldest_blobs_go_first_and_numbers_keep_flowing() -> None:
    async def body() -> None:
        size = item_bytes(blob(0))
        channel: Channel[Message] = Channel(100, "test", max_bytes=3 * size + 10 * len(number(0).raw))
        channel.set_consumer_up(False)
        for index in range(10):
            await channel.put(blob(index))
            await channel.put(number(index))
        held = await contents_of(channel)
        blobs = [m for m in held if m.is_blob]
        numbers = [m for m in held if not m.is_blob]
        assert [m.members[0].text for m in numbers] == [str(i) for i in range(10)]  # every number kept
        assert [b.members[0].text for b in blobs] == [
            blob(i).members[0].text for i in (7, 8, 9)
        ]  # the newest
        drops = channel.take_drops()
        assert (drops.messages, drops.blobs, drops.blob_bytes) == (7, 7, 7 * size)
        assert channel.bytes == 0

    run(body)


def test_while_the_consumer_is_down_the_item_bound_still_drops_the_oldest() -> None:
    async def body() -> None:
        channel: Channel[Message] = Channel(5, "test", max_bytes=10**9)
        channel.set_consumer_up(False)
        for index in range(8):
            await channel.put(number(index))
        assert [m.members[0].text for m in await contents_of(channel)] == ["3", "4", "5", "6", "7"]
        assert channel.take_drops().messages == 3

    run(body)


def test_get_batch_takes_at_most_max_bytes_but_always_one_item() -> None:
    async def body() -> None:
        channel: Channel[Message] = Channel(100, "test")
        for index in range(3):
            await channel.put(blob(index))
        size = item_bytes(blob(0))
        assert len(await channel.get_batch(10, max_bytes=size // 2)) == 1
        assert len(await channel.get_batch(10, max_bytes=2 * size)) == 2
        assert channel.bytes == 0 and len(channel) == 0

    run(body)


async def contents_of(channel: Channel[Message]) -> list[Message]:
    return await channel.get_batch(len(channel)) if len(channel) else []
