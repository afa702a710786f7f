"""Helpers for links that carry INDI XML over an asyncio byte stream (TCP, pipes)."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from ..core.channel import Channel
from ..protocol.messages import Malformed, Message
from ..protocol.parser import IndiStreamParser, abandon, settle, unsettled
from .base import report_malformed

__all__ = ["pump_messages", "write_messages"]

READ_SIZE = 256 * 1024


async def pump_messages(
    reader: asyncio.StreamReader,
    parser: IndiStreamParser,
    from_indi: Channel[Any],
    source: str,
    accept: Callable[[Message], Awaitable[None]] | None = None,
) -> None:
    """Read until EOF, putting each parsed message on ``from_indi`` (or handing it to ``accept``).

    However the stream ends, a message it cut off is reported (and a BLOB streaming to a file dropped).
    A message whose streamed BLOBs are still to be closed (a parser with ``defer_close``) is settled
    in a thread, so that the loop never waits on the disk, and is handed on only once its files are
    durable; the messages after it wait for it, so none overtakes it.
    """
    events: deque[Message | Malformed] = deque()
    try:
        while True:
            data = await reader.read(READ_SIZE)
            if not data:
                return
            events.extend(parser.feed(data))
            while events:
                event = events.popleft()  # out of the queue: one being settled is never abandoned
                if isinstance(event, Malformed):
                    report_malformed(source, event)
                    continue
                if unsettled(event):
                    event = await asyncio.to_thread(settle, event)
                if accept is not None:
                    await accept(event)
                else:
                    await from_indi.put(event)
    finally:
        for event in events:
            if isinstance(event, Message):
                abandon(event)
        for event in parser.close():
            report_malformed(source, event)


async def write_messages(writer: asyncio.StreamWriter, to_indi: Channel[Message]) -> None:
    """Write messages from ``to_indi`` until the stream fails; a failed batch is kept for later."""
    while True:
        batch = await to_indi.get_batch()
        try:
            writer.write(b"".join(message.raw for message in batch))
            await writer.drain()
        except BaseException:
            to_indi.push_front(batch)
            raise
