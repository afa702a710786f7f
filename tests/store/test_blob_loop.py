"""Making a streamed BLOB durable never stalls the event loop, and never lets its message (or the
messages after it) reach the store before the file is durable.

Real files in a real folder; the fsync is made to block (on a threading.Event) so that a slow disk
is seen without one.  The loop's progress is counted in turns of another task, never timed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from indiredis.core.channel import Channel
from indiredis.links.streams import pump_messages
from indiredis.protocol import IndiStreamParser, Message
from indiredis.store.blobs import BlobFolder, BlobStreams
from tests.store.test_blob_streaming import DEFINE, blob_xml, seq, wrapped

TURNS = 200  # turns of another task the loop must make while the file's fsync is blocked


async def ticker(counter: list[int]) -> None:
    while True:
        counter[0] += 1
        await asyncio.sleep(0)


def test_the_loop_keeps_turning_while_a_blob_is_made_durable(tmp_path: Path, monkeypatch) -> None:
    data = os.urandom(300_000)
    real_fsync = os.fsync
    entered, release = threading.Event(), threading.Event()
    turns = [0]
    seen: dict[str, int] = {}
    durable: list[int] = []

    def slow_fsync(fd: int) -> None:
        if not entered.is_set() and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(
            ".incoming-"
        ):
            seen["entry"] = turns[0]
            entered.set()
            release.wait(10)  # the old code blocks the loop here: no turn is made until the timeout
            seen["exit"] = turns[0]
        real_fsync(fd)
        durable.append(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)

    async def main() -> list[Message]:
        folder = BlobFolder(tmp_path / "blobs")
        reader = asyncio.StreamReader()
        reader.feed_data(DEFINE + blob_xml(wrapped(data), len(data)) + seq(1))
        reader.feed_eof()
        from_indi: Channel[Message] = Channel()
        parser = IndiStreamParser(blobs=BlobStreams(folder), defer_close=True)
        tick = asyncio.create_task(ticker(turns))
        pump = asyncio.create_task(pump_messages(reader, parser, from_indi, "test"))
        try:
            await asyncio.wait_for(asyncio.to_thread(entered.wait, 10), 10)
            start = turns[0]
            while turns[0] < start + TURNS:  # the loop serves other tasks while the fsync blocks
                await asyncio.sleep(0)
            assert not durable  # (nothing made durable yet)
            got = [
                await from_indi.get(),
                await from_indi.get(),
            ]  # the definitions, which came before the BLOB
            assert len(from_indi) == 0  # the BLOB's message (and the one after it) is not handed on yet
            release.set()
            while len(got) < 4:
                got.append(await asyncio.wait_for(from_indi.get(), 10))
            await asyncio.wait_for(pump, 10)
            return got
        finally:
            release.set()
            tick.cancel()
            folder.close()

    got = asyncio.run(main())
    assert seen["exit"] - seen["entry"] >= TURNS  # the loop turned while the fsync was blocked
    names = [(message.tag, message.name) for message in got]
    assert names == [
        ("defBLOBVector", "CCD1"),
        ("defNumberVector", "SEQ"),
        ("setBLOBVector", "CCD1"),
        ("setNumberVector", "SEQ"),
    ]  # in stream order: the message after the BLOB did not overtake it
    blob = got[2].members[0].blob
    assert blob is not None and blob.pending is None and not blob.problem
    assert Path(blob.path).read_bytes() == data


def test_a_pending_blob_of_a_message_never_handed_on_leaves_no_file(tmp_path: Path) -> None:
    folder = BlobFolder(tmp_path / "blobs")
    data = os.urandom(10_000)
    parser = IndiStreamParser(blobs=BlobStreams(folder), defer_close=True)
    events = parser.feed(DEFINE + blob_xml(wrapped(data), len(data)))
    message = events[-1]
    assert isinstance(message, Message) and message.members[0].blob is not None
    assert message.members[0].blob.pending is not None
    assert [p.name for p in (tmp_path / "blobs").iterdir()][0].startswith(".incoming-")
    from indiredis.protocol.parser import abandon

    abandon(message)
    assert list((tmp_path / "blobs").iterdir()) == []
    folder.close()


@pytest.mark.parametrize("defer", [False, True])
def test_a_blob_cut_off_by_a_broken_message_leaves_no_file(tmp_path: Path, defer: bool) -> None:
    folder = BlobFolder(tmp_path / "blobs")
    data = os.urandom(10_000)
    parser = IndiStreamParser(blobs=BlobStreams(folder), defer_close=defer)
    # the BLOB ends, but its message is broken (a second oneBLOB never closed) when the stream ends
    parser.feed(DEFINE + blob_xml(wrapped(data), len(data)).replace(b"</setBLOBVector>\n", b"<oneBLOB"))
    parser.close()
    leftovers = [p.name for p in (tmp_path / "blobs").iterdir() if p.name.startswith(".incoming-")]
    assert leftovers == []
    folder.close()
