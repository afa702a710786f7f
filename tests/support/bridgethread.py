"""Run a bridge (or any coroutine factory) in a background thread with its own event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from typing import Any


class LoopThread:
    """Runs ``main()`` in a new event loop on a thread until :meth:`stop`."""

    def __init__(self, main: Callable[[], Awaitable[Any]]) -> None:
        self.main = main
        self.loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[Any] | None = None
        self._started = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self._task = self.loop.create_task(self.main())
        self._started.set()
        try:
            self.loop.run_until_complete(self._task)
        except asyncio.CancelledError:
            pass
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            self.error = exc
        finally:
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    def start(self) -> LoopThread:
        self.thread.start()
        self._started.wait(5)
        return self

    def call(self, func: Callable[[], Any]) -> Any:
        """Run ``func`` on the loop thread and return its result."""
        assert self.loop is not None
        done = threading.Event()
        box: list[Any] = []

        def wrapper() -> None:
            box.append(func())
            done.set()

        self.loop.call_soon_threadsafe(wrapper)
        done.wait(5)
        return box[0]

    def stop(self, timeout: float = 20) -> None:
        if self.loop is not None and self._task is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._task.cancel)
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "bridge thread did not stop"

    @property
    def alive(self) -> bool:
        return self.thread.is_alive()

    def __enter__(self) -> LoopThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def run_bridge(bridge: Any) -> LoopThread:
    """Start ``bridge.run()`` on a background loop; use as a context manager."""
    return LoopThread(bridge.run)
