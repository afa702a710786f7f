"""mqtttoredis's receiver decodes an MQTT-borne BLOB into its file and makes it durable in a thread:
the event loop keeps serving (the link's other direction, the heartbeat, other links) while the
file's fsync blocks, and the payloads after the BLOB's wait for it (none overtakes it).

A real mosquitto in its default configuration; the fsync of the BLOB's temporary file is made to
block (on a threading.Event) so that a slow disk is seen without one.  Progress is counted in turns
of another task and messages seen on the broker, never timed.
"""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import indiredis
from indiredis.core.channel import Channel
from indiredis.links.mqtt import MqttConnection, MqttIndiSideLink
from indiredis.protocol import Message
from indiredis.protocol.document import parse_document
from indiredis.protocol.mqttframing import Framer
from indiredis.store.blobs import BlobFolder, BlobStreams
from tests.mqtt.test_mqtt_delivery import Sniffer
from tests.store.test_blob_loop import TURNS, ticker
from tests.store.test_blob_streaming import DEFINE, blob_xml, seq, wrapped
from tests.support.servers import wait_for


def parse(xml: bytes) -> Message:
    messages, problems = parse_document(xml)
    assert not problems and len(messages) == 1
    return messages[0]


def test_the_mqtt_receiver_makes_a_blob_durable_off_the_loop(mosquitto_proc, tmp_path: Path, monkeypatch):
    server = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    data = os.urandom(300_000)
    real_fsync = os.fsync
    entered, release = threading.Event(), threading.Event()
    turns = [0]
    seen: dict[str, int] = {}

    def slow_fsync(fd: int) -> None:
        if not entered.is_set() and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(
            ".incoming-"
        ):
            seen["entry"] = turns[0]
            entered.set()
            release.wait(10)  # on the loop (the old code) no turn is made until the timeout
            seen["exit"] = turns[0]
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    instrument = Sniffer(mosquitto_proc.port, f"{server.to_indi_topic}/#")  # sees the client side's requests

    async def main() -> list[Message]:
        folder = BlobFolder(tmp_path / "blobs")
        link = MqttIndiSideLink("blobloop", server, blobs=BlobStreams(folder))
        connection = MqttConnection(server, "blobloop")
        await connection.connect(link.subscriptions())
        from_indi: Channel = Channel()
        to_indi: Channel[Message] = Channel()
        tick = asyncio.create_task(ticker(turns))
        serving = asyncio.create_task(link.serve(connection, from_indi, to_indi))
        try:
            topic = f"{server.from_indi_topic}/obs"
            definitions = [line + b"\n" for line in DEFINE.splitlines()]
            for payload in (*definitions, blob_xml(wrapped(data), len(data)), seq(1)):  # original framing
                await asyncio.to_thread(instrument.publish, topic, payload)
            await asyncio.wait_for(asyncio.to_thread(entered.wait, 10), 10)
            start = turns[0]
            while turns[0] < start + TURNS:  # the loop serves other tasks while the fsync blocks
                await asyncio.sleep(0)
            # the link's other direction goes on: a client's request reaches the broker meanwhile
            await to_indi.put(Message.get_properties("CCD Simulator", "CCD_EXPOSURE"))
            await asyncio.to_thread(
                wait_for, lambda: any(b"CCD_EXPOSURE" in p for _, p in instrument.taken()), 10
            )
            got = []
            while len(from_indi):
                got.append(await from_indi.get())
            assert [getattr(m, "name", None) for m in got if isinstance(m, Message)] == ["CCD1", "SEQ"]
            assert entered.is_set() and not release.is_set()
            release.set()
            while sum(isinstance(m, Message) for m in got) < 4:
                got.append(await asyncio.wait_for(from_indi.get(), 10))
            return [m for m in got if isinstance(m, Message)]
        finally:
            release.set()
            serving.cancel()
            tick.cancel()
            await asyncio.wait([serving])
            await connection.close()
            folder.close()

    try:
        got = asyncio.run(main())
    finally:
        instrument.close()
    assert seen["exit"] - seen["entry"] >= TURNS  # the loop turned while the fsync was blocked
    assert [(m.tag, m.name) for m in got] == [
        ("defBLOBVector", "CCD1"),
        ("defNumberVector", "SEQ"),
        ("setBLOBVector", "CCD1"),
        ("setNumberVector", "SEQ"),
    ]  # in order: the message after the BLOB did not overtake it
    blob = got[2].members[0].blob
    assert blob is not None and not blob.problem
    assert Path(blob.path).read_bytes() == data


def test_a_receiver_cancelled_while_a_blob_is_made_durable_counts_its_payload_as_not_received(
    tmp_path: Path, monkeypatch
):
    """The connection ends while a payload's BLOB is fsync'ed in a thread: the thread cannot be
    stopped, so the next payload waits for it (one unpacking at a time), and the payload's messages,
    never handed on, show as a gap on the next one (the store asks for everything again)."""
    entered, release = threading.Event(), threading.Event()
    real_fsync = os.fsync

    def slow_fsync(fd: int) -> None:
        if not entered.is_set() and os.path.basename(os.readlink(f"/proc/self/fd/{fd}")).startswith(
            ".incoming-"
        ):
            entered.set()
            release.wait(10)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    data = os.urandom(100_000)
    framer = Framer()
    topic = "from_indi/obs"
    frames, _ = framer.pack([(parse(blob_xml(wrapped(data), len(data))), [topic]), (parse(seq(1)), [topic])])
    frames += framer.pack([(parse(seq(2)), [topic])])[0]
    assert len(frames) == 3  # the BLOB, its neighbour, and one more payload

    async def main() -> tuple[list[Message], int, int]:
        folder = BlobFolder(tmp_path / "blobs")
        link = MqttIndiSideLink("cancelled", indiredis.mqtt_server("127.0.0.1", 1), blobs=BlobStreams(folder))
        got: list[Message] = []

        async def handle(message: Message) -> None:
            got.append(message)

        try:
            blob = asyncio.create_task(link.receiver.deliver(topic, frames[0].payload, handle))
            await asyncio.wait_for(asyncio.to_thread(entered.wait, 10), 10)
            blob.cancel()  # the connection ended
            await asyncio.wait([blob])
            following = asyncio.create_task(link.receiver.deliver(topic, frames[1].payload, handle))
            for _ in range(TURNS):
                await asyncio.sleep(0)
            waited = not following.done()  # it waits for the thread still unpacking the BLOB
            release.set()
            verdict = await asyncio.wait_for(following, 10)
            last = await link.receiver.deliver(topic, frames[2].payload, handle)
            assert verdict is not None and last is not None
            return got, int(waited), verdict.missing + last.missing
        finally:
            release.set()
            folder.close()

    got, waited, missing = asyncio.run(main())
    assert waited
    assert missing == 1  # the BLOB's message, never handed on, is a gap
    assert [m.name for m in got] == ["SEQ", "SEQ"]
