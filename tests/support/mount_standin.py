#!/usr/bin/env python3
"""Stand-ins that speak the realistic mount stream (``tests/support/mountstream.py``), for the MQTT
tests and benchmarks.  Two forms:

* ``mount_standin.py --servers N [--rate R]``: N stand-in indiservers, each a TCP listener on
  127.0.0.1 serving its own device ``Site<i>``; prints ``PORTS p1 p2 ...`` once listening.  Each
  answers a client's getProperties with the device's definitions and then streams R
  ``setNumberVector`` per second to it.  Commands on stdin: ``rate R`` changes every site's
  rate, ``burst N`` sends N messages at once to every client.
* ``mount_standin.py`` (no arguments): an INDI driver on stdin/stdout (run by indiserver or by the
  driver pool) for device ``$MOUNT_DEVICE`` (default ``Mount``), streaming ``$MOUNT_RATE``
  messages per second (default 0: none).  A client's ``newSwitchVector`` on its ``BURST``
  property sends ``$MOUNT_BURST`` messages at once (default 20 000).

Numbering continues across bursts and streaming, from 1 per device.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from tests.support import mountstream  # noqa: E402

TICK = 0.01
BURST_PROPERTY = (
    b'<defSwitchVector device="{device}" name="BURST" label="Burst" group="Bench" state="Idle" perm="rw" '
    b'rule="AtMostOne" timeout="0"><defSwitch name="GO" label="Go">Off</defSwitch></defSwitchVector>\n'
)


class Site:
    """One device's stream: numbering, pacing, and the writers it goes to."""

    def __init__(self, device: str, rate: float) -> None:
        self.device = device
        self.rate = rate
        self.sequence = 0
        self.writers: list[asyncio.StreamWriter] = []
        self.defined = asyncio.Event()

    def definitions(self) -> bytes:
        return mountstream.definitions(self.device, self.sequence) + BURST_PROPERTY.replace(
            b"{device}", self.device.encode()
        )

    def next_messages(self, count: int) -> bytes:
        first = self.sequence + 1
        self.sequence += count
        return mountstream.burst(self.device, first, count)

    async def send(self, data: bytes) -> None:
        for writer in list(self.writers):
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                self.writers.remove(writer)

    async def stream(self) -> None:
        """Send ``rate`` messages per second, paced every tick."""
        await self.defined.wait()
        loop = asyncio.get_running_loop()
        start, sent_at_start, current_rate = loop.time(), self.sequence, self.rate
        while True:
            if self.rate != current_rate or not self.writers:  # count again from now
                start, sent_at_start, current_rate = loop.time(), self.sequence, self.rate
            due = sent_at_start + int((loop.time() - start) * current_rate) - self.sequence
            if due > 0:
                await self.send(self.next_messages(due))
            await asyncio.sleep(TICK)

    async def answer(self, data: bytes) -> None:
        """React to what a client sent."""
        if b"getProperties" in data:
            await self.send(self.definitions())
            self.defined.set()
        if b'name="BURST"' in data and b"newSwitchVector" in data:
            await self.send(self.next_messages(int(os.environ.get("MOUNT_BURST", "20000"))))


async def serve_site(site: Site) -> int:
    async def client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        site.writers.append(writer)
        try:
            while data := await reader.read(65536):
                await site.answer(data)
        except (ConnectionError, OSError):
            pass  # the client went away
        finally:
            if writer in site.writers:
                site.writers.remove(writer)

    server = await asyncio.start_server(client, "127.0.0.1", 0)
    return int(server.sockets[0].getsockname()[1])


async def run_servers(count: int, rate: float) -> None:
    sites = [Site(f"Site{index:02d}", rate) for index in range(count)]
    ports = [await serve_site(site) for site in sites]
    for site in sites:
        asyncio.ensure_future(site.stream())
    print("PORTS " + " ".join(str(port) for port in ports), flush=True)
    reader = asyncio.StreamReader()
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        words = line.decode().split()
        if words[:1] == ["rate"]:
            for site in sites:
                site.rate = float(words[1])
        elif words[:1] == ["burst"]:
            for site in sites:
                await site.send(site.next_messages(int(words[1])))


async def run_driver() -> None:
    site = Site(os.environ.get("MOUNT_DEVICE", "Mount"), float(os.environ.get("MOUNT_RATE", "0")))
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(asyncio.streams.FlowControlMixin, sys.stdout)
    site.writers.append(asyncio.StreamWriter(transport, protocol, None, loop))
    asyncio.ensure_future(site.stream())
    while data := await reader.read(65536):
        await site.answer(data)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--servers", type=int, default=0)
    parser.add_argument("--rate", type=float, default=100)
    args = parser.parse_args()
    try:
        asyncio.run(run_servers(args.servers, args.rate) if args.servers else run_driver())
    except (KeyboardInterrupt, BrokenPipeError):
        pass


if __name__ == "__main__":
    main()
