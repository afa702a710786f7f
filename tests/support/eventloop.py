"""Running async test bodies, and synchronising their tasks by turns of the event loop, never by time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable


def run(test: Callable[[], Awaitable[None]]) -> None:
    """Run one async test body in a fresh event loop."""

    async def main() -> None:
        await test()

    asyncio.run(main())


async def run_ready_tasks(turns: int = 5) -> None:
    """Let every ready task run up to its next wait: a few turns of the event loop; no time passes.

    A task that is still not done afterwards is waiting (for room in a channel, for an item, ...).
    """
    loop = asyncio.get_running_loop()
    for _ in range(turns):
        turn: asyncio.Future[None] = loop.create_future()
        loop.call_soon(turn.set_result, None)
        await turn
