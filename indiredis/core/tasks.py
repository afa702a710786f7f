"""Running asyncio tasks together and stopping them cleanly."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine, Sequence
from typing import Any

CANCEL_AGAIN = 0.5  # seconds after which a task that has not ended is cancelled again

log = logging.getLogger(__name__)


def _retrieve_late_errors(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Take the errors of tasks that ended with one while they were being stopped (a cancellation a
    library swallowed, then its connection found closed): logged at debug level, instead of asyncio's
    ``Task exception was never retrieved`` with a traceback when the task is collected."""
    for task in tasks:
        if task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                name = task.get_name() if isinstance(task, asyncio.Task) else "future"
                log.debug("%s ended with %r while it was being stopped", name, error)


async def cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel the tasks not yet done (once: a task already being cancelled is left to finish its
    clean-up undisturbed) and wait until every one has finished."""
    for task in tasks:
        if not task.done() and not (isinstance(task, asyncio.Task) and task.cancelling()):
            task.cancel()
    if tasks:
        await asyncio.wait(tasks)
        _retrieve_late_errors(tasks)


async def run_until_first_done(*coroutines: Coroutine[Any, Any, Any]) -> None:
    """Run coroutines together; when one ends, cancel the rest and re-raise its error if any.

    A task still running :data:`CANCEL_AGAIN` seconds after it was cancelled is cancelled again, until
    it ends: redis-py (8.1) can swallow a cancellation that arrives while it awaits a reply (seen in
    ``set`` and ``subscribe``), and the task then goes on (a heartbeat sleeping, a subscription
    listening), so that the bridge would never finish stopping.
    """
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    done: set[asyncio.Future[Any]] = set()
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        pending = set(tasks)
        while pending:
            for task in pending:
                task.cancel()
            _, pending = await asyncio.wait(pending, timeout=CANCEL_AGAIN)
        _retrieve_late_errors([task for task in tasks if task not in done])
    errors = [task.exception() for task in tasks if task in done and not task.cancelled()]
    for error in errors:  # every one retrieved; the first (in the order given) raised
        if error is not None:
            raise error
