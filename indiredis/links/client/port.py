"""The port link: a TCP listening port that classic INDI clients (KStars/Ekos, indi_getprop) use.

The client side of ``mqtttoport``: to its clients it looks like indiserver.
Several clients at once; each gets every message from the INDI side, BLOBs
only after its own ``enableBLOB`` (``Never`` by default, as indiserver).  What
a client sends is parsed (garbage is logged and skipped) and passed on.  A
client that reads too slowly to keep up (more than :data:`CLIENT_BUFFER`
messages behind) is disconnected with one log line, so it never stalls the
others.
"""

from __future__ import annotations

import asyncio
import logging

from ...core.channel import Channel
from ...events import Event, host_port, journal_fields
from ...protocol.messages import Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser
from ...protocol.routing import BlobPolicy
from ...protocol.vocabulary import Tag
from ..base import InboundItem, Link
from ..streams import pump_messages, run_until_first_done

log = logging.getLogger(__name__)

CLIENT_BUFFER = 10_000


class PortClient:
    """One connected INDI client: its BLOB policy and its queue of messages to write."""

    def __init__(self, peer: str) -> None:
        self.peer = peer
        self.blobs = BlobPolicy()
        self.queue: asyncio.Queue[Message] = asyncio.Queue(CLIENT_BUFFER)
        self.too_slow = asyncio.Event()

    def offer(self, message: Message) -> None:
        if self.too_slow.is_set() or not self.blobs.passes(message):
            return
        try:
            self.queue.put_nowait(message)
        except asyncio.QueueFull:
            self.too_slow.set()


class PortLink(Link):
    """Serves INDI clients on ``host:port`` (see the module docstring)."""

    what = "INDI port"
    link = "port"

    def __init__(
        self, port: int = 7624, host: str = "localhost", max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    ) -> None:
        super().__init__(host_port(host, port))
        self.host, self.port = host, port
        self.max_message_size = max_message_size
        self.clients: set[PortClient] = set()

    @property
    def summary(self) -> str:
        return f"{len(self.clients)} INDI clients"

    async def session(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_client(reader, writer, outbound)

        server = await asyncio.start_server(on_client, self.host, self.port)
        try:
            self.connected(f"listening for INDI clients on {self.host}:{self.port}")
            await self._fan_out(inbound)
        finally:
            server.close()
            for client in list(self.clients):
                client.too_slow.set()

    async def _fan_out(self, inbound: Channel[InboundItem]) -> None:
        while True:
            for item in await inbound.get_batch():
                if isinstance(item, Message):
                    for client in list(self.clients):
                        client.offer(item)

    async def _serve_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, outbound: Channel[Message]
    ) -> None:
        peer = "{}:{}".format(*writer.get_extra_info("peername")[:2])
        client = PortClient(peer)
        self.clients.add(client)
        log.info("INDI client %s connected", peer)
        parser = IndiStreamParser(self.max_message_size)

        async def from_client(message: Message) -> None:
            if message.tag == Tag.ENABLE_BLOB:
                client.blobs.update(message)
            await outbound.put(message)

        async def to_client() -> None:
            while True:
                message = await client.queue.get()
                writer.write(message.raw)
                if client.queue.empty():
                    await writer.drain()

        async def until_too_slow() -> None:
            await client.too_slow.wait()
            too_slow = journal_fields(Event.MESSAGES_DROPPED, link="port", peer=peer)
            log.warning(
                "INDI client %s disconnected: more than %d messages behind",
                peer,
                CLIENT_BUFFER,
                extra=too_slow,
            )

        try:
            await run_until_first_done(
                pump_messages(reader, parser, outbound, f"INDI client {peer}", from_client),
                to_client(),
                until_too_slow(),
            )
        except (OSError, ConnectionError):
            pass
        finally:
            self.clients.discard(client)
            writer.close()
            log.info("INDI client %s disconnected", peer)
