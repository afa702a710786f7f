"""Helpers for links that carry INDI XML over an asyncio byte stream (TCP, pipes)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from ..core.channel import Channel
from ..protocol.messages import Malformed, Message
from ..protocol.parser import IndiStreamParser
from .base import report_malformed

READ_SIZE = 256 * 1024


async def pump_messages(
    reader: asyncio.StreamReader,
    parser: IndiStreamParser,
    inbound: Channel[Any],
    source: str,
    accept: Callable[[Message], Awaitable[None]] | None = None,
) -> None:
    """Read until EOF, putting each parsed message on ``inbound`` (or handing it to ``accept``)."""
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            return
        for event in parser.feed(data):
            if isinstance(event, Malformed):
                report_malformed(source, event)
            elif accept is not None:
                await accept(event)
            else:
                await inbound.put(event)


async def write_messages(writer: asyncio.StreamWriter, outbound: Channel[Message]) -> None:
    """Write messages from ``outbound`` until the stream fails; a failed batch is kept for later."""
    while True:
        batch = await outbound.get_batch()
        try:
            writer.write(b"".join(message.raw for message in batch))
            await writer.drain()
        except BaseException:
            outbound.push_front(batch)
            raise


async def cancel_and_wait(tasks: list[asyncio.Future[Any]]) -> None:
    """Cancel the tasks not yet done (once: a task already being cancelled is left to finish its
    clean-up undisturbed) and wait until every one has finished."""
    for task in tasks:
        if not task.done() and not (isinstance(task, asyncio.Task) and task.cancelling()):
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def run_until_first_done(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run coroutines together; when one ends, cancel the rest and re-raise its error if any."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for task in done:
        if not task.cancelled() and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
