"""Running asyncio tasks together and stopping them cleanly."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine, Sequence
from typing import Any

CANCEL_AGAIN = 0.5  # seconds after which a task that has not ended is cancelled again


async def cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel the tasks not yet done (once: a task already being cancelled is left to finish its
    clean-up undisturbed) and wait until every one has finished."""
    for task in tasks:
        if not task.done() and not (isinstance(task, asyncio.Task) and task.cancelling()):
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)


async def run_until_first_done(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run coroutines together; when one ends, cancel the rest and re-raise its error if any.

    A task still running :data:`CANCEL_AGAIN` seconds after it was cancelled is cancelled again, until
    it ends: redis-py (8.1) can swallow a cancellation that arrives while it awaits a reply (seen in
    ``set`` and ``subscribe``), and the task then goes on (a heartbeat sleeping, a subscription
    listening), so that the bridge would never finish stopping.
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = set(tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN)
        for task in tasks:  # one that failed while the others were cancelled: retrieved, not reported
            if not task.cancelled():
                task.exception()
    for task in done:
        error = None if task.cancelled() else task.exception()
        if error is not None:
            raise error
