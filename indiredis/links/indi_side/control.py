"""The Driver Manager's actions: restart, stop or start a configured driver at a client's request, and
apply a reload's new list of drivers.

:class:`~.manager.ManagerDevice` says what the device shows and which requests are valid; this module
carries them out, one action at a time per driver, beside the routing (which never waits for them).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any, Protocol

from ...core.tasks import cancel_and_wait
from ...protocol.messages import Message
from .manager import Command, DriverAction, DriverState, ManagerDevice, Refusal
from .process import DriverProcess, Phase
from .reload import plan_drivers
from .supervisor import Supervisor, log_failure

log = logging.getLogger("indiredis.links.indi_side.drivers")  # the pool's logger, as before the split


class Pool(Protocol):
    """What the actions need of the driver pool."""

    drivers: list[DriverProcess]

    @property
    def serving(self) -> bool:
        """Whether the pool runs (else a reload only names the drivers)."""

    async def publish(self, messages: list[Message]) -> None:
        """Say the Driver Manager's messages to the clients (and to drivers snooping it)."""

    async def show(self, driver: DriverProcess) -> None:
        """Tell clients the driver's new state."""

    async def drop_devices(self, driver: DriverProcess, text: str, *, announce: bool, back: bool) -> None:
        """Delete the driver's devices and, if ``announce``, say ``text`` to the clients."""

    def update_state(self) -> None:
        """Bring the pool's link state up to date."""


class DriverControl:
    """Runs the Driver Manager's actions and reloads (each a task beside the routing)."""

    def __init__(self, pool: Pool, supervisor: Supervisor, manager: ManagerDevice) -> None:
        self.pool = pool
        self.supervisor = supervisor
        self.manager = manager
        self._locks: dict[DriverProcess, asyncio.Lock] = {}  # one action at a time per driver
        self._actions: set[asyncio.Task[None]] = set()  # clients' actions and reloads under way

    def definitions(self) -> list[Message]:
        """The Driver Manager device's definitions for the drivers as they are now."""
        return self.manager.definitions(d.report() for d in self.pool.drivers)

    async def request(self, message: Message) -> None:
        """A client's request to the Driver Manager device: refused (and said), or carried out."""
        match self.manager.request(message, [driver.key for driver in self.pool.drivers]):
            case Refusal(messages=messages):
                log.warning("%s", messages[0].text or "request refused")
                await self.pool.publish(list(messages))
            case Command(key=key, action=action):
                driver = next(d for d in self.pool.drivers if d.key == key)  # request() checked the key
                self._spawn(self._act(driver, action), f"{action.value} of {driver.label}")
            case None:
                pass

    def _lock(self, driver: DriverProcess) -> asyncio.Lock:
        return self._locks.setdefault(driver, asyncio.Lock())

    async def _act(self, driver: DriverProcess, action: DriverAction) -> None:
        """Restart, stop or start a configured driver at a client's request."""
        if self._lock(driver).locked():
            await self.pool.publish([self.manager.notice(f"{driver.label}: {action.value.lower()} queued")])
        async with self._lock(driver):
            if driver not in self.pool.drivers:  # removed by a reload meanwhile
                return
            log.info(
                "%s of driver %s asked by a client", action.value.lower(), driver.label, extra=driver.fields
            )
            if action is DriverAction.START and self.supervisor.supervising(driver):
                await self.pool.publish([self.manager.notice(f"driver {driver.label} is already running")])
            else:
                driver.busy = True
                try:
                    await self._carry_out(driver, action)
                finally:
                    driver.busy = False
            await self.pool.show(driver)

    async def _carry_out(self, driver: DriverProcess, action: DriverAction) -> None:
        """Stop the driver, then leave it stopped or start it again."""
        stopping = action is DriverAction.STOP
        if not stopping:
            driver.phase = Phase(DriverState.RESTARTING, driver.phase.text)
        await self.pool.show(driver)
        doing = "stopped" if stopping else "restarting"
        await self._halt(driver, f"driver {driver.label} {doing} at a client's request", back=not stopping)
        if stopping:
            driver.phase = Phase(DriverState.STOPPED, "stopped at a client's request")
            return
        if driver.process is not None:
            driver.restarts += 1
        self.supervisor.launch(driver)
        await self.supervisor.started(driver)

    async def _halt(self, driver: DriverProcess, text: str, *, back: bool) -> None:
        """Stop supervising the driver, stop its process and delete its devices."""
        await self.supervisor.halt(driver)
        await self.pool.drop_devices(driver, text, announce=True, back=back)
        self.pool.update_state()

    def set_drivers(self, executables: list[str]) -> tuple[list[str], list[str]]:
        """Apply a new list of drivers (see :meth:`DriverPool.set_drivers`)."""
        plan = plan_drivers(self.pool.drivers, executables)
        self.pool.drivers = plan.drivers
        if self.pool.serving:
            for driver in plan.removed:
                self._spawn(self._remove(driver), f"removal of {driver.label}")
            for driver in plan.added:
                self._spawn(self._add(driver), f"addition of {driver.label}")
        return [d.executable for d in plan.added], [d.executable for d in plan.removed]

    async def _add(self, driver: DriverProcess) -> None:
        await self.pool.publish(self.manager.driver_definitions(driver.report()))
        self.supervisor.launch(driver)

    async def _remove(self, driver: DriverProcess) -> None:
        async with self._lock(driver):
            await self._halt(driver, f"driver {driver.label} removed from the configuration", back=False)
            await self.pool.publish(self.manager.deletions(driver.key))
        self.supervisor.forget(driver)
        self._locks.pop(driver, None)

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a client's action (or a reload's) beside the routing, which must not wait for it."""
        task = asyncio.ensure_future(coroutine)
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)
        task.add_done_callback(lambda done: log_failure(done, what))

    async def cancel(self) -> None:
        """Cancel the actions under way (at shutdown)."""
        await cancel_and_wait(list(self._actions))
