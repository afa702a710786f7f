"""Process supervision: start a driver, watch it, restart it with back-off when it exits, stop it.

A driver that exits is reported (a warning for every crash, with the count when they repeat:
"indi_simulator_ccd crashed 5 times in 60 s"; a driver that cannot be started at all is said once, then
at debug level), its devices are dropped until it is back, and it is restarted with capped exponential
back-off (see :class:`~indiredis.links.base.Backoff`; from the shortest delay again after
:data:`STABLE_RUN` seconds of running), or, under a :class:`GiveUp` policy, left stopped (failed) after
N crashes within M seconds until a client starts it again.

What a running driver's traffic means, and how clients are told, is the caller's
(:class:`SupervisionHooks`: the driver pool).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from ...core.tasks import cancel_and_wait
from ...events import Event, journal_fields
from ...protocol.xmlout import indi_timestamp
from ..base import Backoff
from .manager import DriverState, GiveUp
from .process import CrashCount, DriverProcess, Phase, exit_text

log = logging.getLogger("indiredis.links.indi_side.drivers")  # the pool's logger, as before the split

STABLE_RUN = 10.0  # a driver that ran this long restarts from the shortest back-off
CRASH_WINDOW = 60.0  # seconds over which repeated crashes are counted in the log (without a give-up policy)


class SupervisionHooks(Protocol):
    """What the supervisor asks of the driver pool."""

    async def serve(self, driver: DriverProcess) -> None:
        """Serve a driver that has just started, until its process exits."""

    async def show(self, driver: DriverProcess) -> None:
        """Tell clients the driver's new state."""

    async def drop_devices(self, driver: DriverProcess, text: str, *, announce: bool, back: bool) -> None:
        """Delete the driver's devices and, if ``announce``, say ``text`` to the clients."""


@dataclass
class _Watch:
    """The supervision of one driver: its task and its restart history."""

    task: asyncio.Task[None] | None = None
    settled: asyncio.Event = field(default_factory=asyncio.Event)  # set once started, or it could not be
    backoff: Backoff = field(default_factory=Backoff)
    crashes: CrashCount = field(default_factory=CrashCount)
    last_failure: str = ""  # how the last start attempt failed, when it could not start


def log_failure(task: asyncio.Future[Any], what: str) -> None:
    """Log the error that ended a background task (one that ends by being cancelled says nothing)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("error in %s", what, exc_info=task.exception())


class Supervisor:
    """Starts, watches, restarts (with back-off) and stops driver processes."""

    def __init__(self, hooks: SupervisionHooks, give_up: GiveUp | None = None) -> None:
        self.hooks = hooks
        self.give_up = give_up  # None: always restart
        self._watches: dict[DriverProcess, _Watch] = {}

    def _watch(self, driver: DriverProcess) -> _Watch:
        return self._watches.setdefault(driver, _Watch())

    def launch(self, driver: DriverProcess) -> None:
        """Start supervising the driver (it starts now, and restarts whenever it exits)."""
        before = self._watches.get(driver)
        watch = self._watches[driver] = _Watch(last_failure=before.last_failure if before else "")
        watch.task = asyncio.ensure_future(self._supervise(driver, watch))
        watch.task.add_done_callback(lambda task: log_failure(task, f"supervising {driver.label}"))

    def supervising(self, driver: DriverProcess) -> bool:
        """Whether the driver is supervised now (running, or waiting to restart)."""
        task = self._watch(driver).task
        return task is not None and not task.done()

    def crashes(self, driver: DriverProcess) -> int:
        """The driver's crashes counted since it was last launched (within the counting window)."""
        return len(self._watch(driver).crashes.times)

    async def started(self, driver: DriverProcess) -> None:
        """Wait until the driver has started (or could not start, or its supervision ended)."""
        watch = self._watch(driver)
        if watch.task is not None:
            settled = asyncio.ensure_future(watch.settled.wait())
            await asyncio.wait([settled, watch.task], return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait([settled])

    async def halt(self, driver: DriverProcess) -> None:
        """Stop supervising the driver and stop its process."""
        watch = self._watch(driver)
        if watch.task is not None:
            await cancel_and_wait([watch.task])
            watch.task = None
        await driver.stop()

    async def stop_all(self, drivers: list[DriverProcess]) -> None:
        """Stop supervising every driver, then stop them all together (at shutdown)."""
        await cancel_and_wait([w.task for w in self._watches.values() if w.task is not None])
        await asyncio.gather(*(d.stop() for d in drivers), return_exceptions=True)

    def forget(self, driver: DriverProcess) -> None:
        """Drop what is known of a driver removed from the configuration (once halted)."""
        self._watches.pop(driver, None)

    def _window(self) -> float:
        return self.give_up.seconds if self.give_up else CRASH_WINDOW

    async def _supervise(self, driver: DriverProcess, watch: _Watch) -> None:
        """Start the driver, serve it, and restart it with back-off whenever it exits (or leave it
        failed, under the give-up policy)."""
        while True:
            started = time.monotonic()
            code_text, crashed = await self._run_once(driver, watch)
            if time.monotonic() - started > STABLE_RUN:
                watch.backoff.reset()
            driver.last_exit, driver.last_exit_time = code_text, indi_timestamp()
            crashes = watch.crashes.add(self._window())
            count = f"{driver.label} crashed {crashes} times in {self._window():g} s" if crashes > 1 else ""
            if self.give_up is not None and crashes >= self.give_up.crashes:
                await self._give_up_on(driver, code_text, count)
                return
            delay = await self._report_restart(driver, watch, code_text, count, crashed=crashed)
            await asyncio.sleep(delay)

    async def _run_once(self, driver: DriverProcess, watch: _Watch) -> tuple[str, bool]:
        """Start the driver and serve it until it exits: how it ended, and whether it had started (a
        crash) rather than failed to start."""
        try:
            process = await driver.start()
        except OSError as exc:
            watch.settled.set()
            return f"cannot be started: {exc.strerror or exc}", False
        watch.settled.set()
        driver.phase = Phase(DriverState.RUNNING, "running")
        watch.last_failure = ""
        log.info("started driver %s (pid %d)", driver.label, process.pid, extra=driver.fields)
        await self.hooks.show(driver)
        try:
            await self.hooks.serve(driver)
        except Exception:  # noqa: BLE001 - a fault in serving one driver must not stop the others
            log.exception("error while serving driver %s; restarting it", driver.label)
        finally:
            await driver.stop()
        return exit_text(process.returncode), True

    async def _give_up_on(self, driver: DriverProcess, code_text: str, count: str) -> None:
        """Leave a driver that crashed too often stopped until a client starts it, and say so."""
        driver.phase = Phase(DriverState.FAILED, f"{code_text}, failed: {count or 'gave up'}")
        log.error(
            "driver %s %s; %s: given up, left stopped until a client starts it",
            driver.label,
            code_text,
            count or f"{driver.label} crashed once",
            extra=driver.fields | journal_fields(Event.DRIVER_CRASHED),
        )
        text = (
            f"driver {driver.label} {code_text}; {count or 'crashed'}: "
            "given up, left stopped until a client starts it"
        )
        await self.hooks.drop_devices(driver, text, announce=True, back=True)
        await self.hooks.show(driver)

    async def _report_restart(
        self, driver: DriverProcess, watch: _Watch, code_text: str, count: str, *, crashed: bool
    ) -> float:
        """Log and show that the driver ended and will be restarted; the delay before the restart.

        Every crash is a warning (with the count when they repeat); a driver that cannot be started at
        all is said once, then at debug level until it could start (it is retried forever).
        """
        delay = watch.backoff.next()
        driver.restarts += 1
        driver.phase = Phase(DriverState.RESTARTING, f"{code_text}, restarting in {delay:g} s")
        repeated = not crashed and code_text == watch.last_failure
        watch.last_failure = "" if crashed else code_text
        counted = f" ({count})" if count and crashed else ""
        log.log(
            logging.DEBUG if repeated else logging.WARNING,
            "driver %s %s%s; restarting in %g s",
            driver.label,
            code_text,
            counted,
            delay,
            extra=driver.fields | journal_fields(Event.DRIVER_CRASHED),
        )
        text = f"driver {driver.label} {code_text}{counted}; restarting"
        await self.hooks.drop_devices(driver, text, announce=not repeated, back=True)
        await self.hooks.show(driver)
        return delay
