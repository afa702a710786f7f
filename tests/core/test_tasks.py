"""Running tasks together: the first to end stops the others (its error re-raised), and cancelling waits
for every task's clean-up.  Synchronised by events and turns of the event loop, never by time."""

from __future__ import annotations

import asyncio
import gc

import pytest

from indiredis.core.tasks import cancel_and_wait, run_until_first_done
from tests.support.eventloop import run, run_ready_tasks


class Worker:
    """A task body that serves until cancelled and then cleans up over a few loop turns."""

    def __init__(self, fail_with: Exception | None = None, finish: bool = False) -> None:
        self.fail_with = fail_with
        self.finish = finish
        self.cleaned_up = False

    async def __call__(self) -> None:
        try:
            await run_ready_tasks(2)
            if self.fail_with is not None:
                raise self.fail_with
            if not self.finish:
                await asyncio.Event().wait()
        finally:
            await run_ready_tasks(3)  # clean-up that itself awaits
            self.cleaned_up = True


def test_the_first_to_finish_stops_the_others() -> None:
    async def body() -> None:
        done, serving = Worker(finish=True), Worker()
        await run_until_first_done(done(), serving())
        assert done.cleaned_up and serving.cleaned_up

    run(body)


def test_the_first_error_is_raised_after_the_others_stopped() -> None:
    async def body() -> None:
        failing, serving = Worker(fail_with=ConnectionResetError("gone")), Worker()
        with pytest.raises(ConnectionResetError, match="gone"):
            await run_until_first_done(failing(), serving())
        assert serving.cleaned_up

    run(body)


def test_cancelling_from_outside_stops_every_task() -> None:
    async def body() -> None:
        first, second = Worker(), Worker()
        outer = asyncio.ensure_future(run_until_first_done(first(), second()))
        await run_ready_tasks()
        outer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await outer
        assert first.cleaned_up and second.cleaned_up

    run(body)


def test_cancel_and_wait_waits_for_every_clean_up() -> None:
    async def body() -> None:
        workers = [Worker(), Worker(), Worker(finish=True)]
        tasks = [asyncio.ensure_future(worker()) for worker in workers]
        await tasks[2]  # one has already finished when the others are cancelled
        await cancel_and_wait(tasks)
        assert all(task.done() for task in tasks)
        assert all(worker.cleaned_up for worker in workers)
        await cancel_and_wait([])  # nothing to do

    run(body)


def test_cancel_and_wait_leaves_a_task_already_being_cancelled_alone() -> None:
    async def body() -> None:
        worker = Worker()
        task = asyncio.ensure_future(worker())
        await run_ready_tasks()
        task.cancel()
        await cancel_and_wait([task])  # not cancelled a second time in the middle of its clean-up
        assert worker.cleaned_up and task.cancelled()

    run(body)


class SwallowsCancellation:
    """A task body that, cancelled, goes on and then fails (as redis-py's ``listen`` swallows a
    cancellation and then finds its connection closed)."""

    async def __call__(self) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            pass
        await run_ready_tasks(2)
        raise ConnectionError("Connection closed by server.")


def test_an_error_of_a_task_while_it_is_stopped_is_retrieved() -> None:
    """No ``Task exception was never retrieved`` (soak: inditoredis stopping while Redis was gone)."""
    unretrieved: list[str] = []

    async def body() -> None:
        asyncio.get_running_loop().set_exception_handler(
            lambda _loop, context: unretrieved.append(context["message"])
        )
        await run_until_first_done(Worker(finish=True)(), SwallowsCancellation()())
        task = asyncio.ensure_future(SwallowsCancellation()())
        await run_ready_tasks()
        await cancel_and_wait([task])
        del task
        gc.collect()  # a task whose error nobody retrieved says so when it is collected

    run(body)
    assert unretrieved == []
