"""The indiserver link: an INDI client connection over TCP (the INDI side of a bridge)."""

from __future__ import annotations

import asyncio

from ...core.channel import Channel
from ...core.sides import FromIndiItem, Reset
from ...core.tasks import run_until_first_done
from ...events import host_port
from ...hosts import IndiServer
from ...protocol.messages import BlobSinks, Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser
from ..base import Link
from ..streams import pump_messages, write_messages


class IndiServerLink(Link):
    """Connects to indiserver, asks for every property, and passes messages both ways."""

    what = "indiserver"
    link = "indiserver"

    def __init__(
        self,
        indi: IndiServer,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        blobs: BlobSinks | None = None,
    ) -> None:
        super().__init__(host_port(indi.host, indi.port))
        self.indi = indi
        self.max_message_size = max_message_size
        self.blobs = blobs  # where BLOB data streams to (None: BLOBs arrive whole, as MQTT needs them)

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        reader, writer = await asyncio.open_connection(self.indi.host, self.indi.port)
        try:
            self.connected(f"connected to indiserver {self.indi.host}:{self.indi.port}")
            await from_indi.put(Reset())
            writer.write(Message.get_properties().raw)
            parser = IndiStreamParser(self.max_message_size, self.blobs, defer_close=True)
            await run_until_first_done(
                pump_messages(reader, parser, from_indi, f"indiserver {self.indi.host}:{self.indi.port}"),
                write_messages(writer, to_indi),
            )
        finally:
            writer.close()
