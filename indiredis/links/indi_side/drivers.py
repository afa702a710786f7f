"""The driver link: runs INDI driver executables as child processes and routes as indiserver does.

The INDI side of ``driverstoredis`` and ``driverstomqtt``.  Each driver speaks
INDI on its stdin/stdout (one :class:`IndiStreamParser` per driver, so at most
one whole message, one BLOB, is held per driver); its stderr goes to the log
line by line (logger ``indiredis.driver.<executable>``).

Routing contract (the rules live in :mod:`...protocol.routing`, applied in :mod:`.routes`):

- ``to_indi`` (client traffic) -> drivers: ``new*Vector`` goes to the driver
  that owns the device (a device is owned by the first driver that sends a
  ``def``/``set``/``message``/``delProperty`` naming it); ``getProperties``
  with a known device goes to its owner, without a device or for an unknown
  one to every driver; ``enableBLOB`` sets the client side's BLOB policy
  (``Never`` by default, as in indiserver; ``Also``/``Only`` per device or
  property).  ``def``/``set``/``message``/``delProperty`` arriving on
  ``to_indi`` for a device *no local driver owns* is snoop data from
  elsewhere (the MQTT instrument side delivers other observatories' traffic
  this way): it goes to every local driver that snoops that device.
- drivers -> ``from_indi``: ``def``/``set``/``message``/``delProperty`` go to
  ``from_indi`` when the client side's BLOB policy lets them (``setBLOBVector``
  only after ``enableBLOB Also/Only``), and to every driver that snoops the
  device (BLOB data only if that driver sent its own ``enableBLOB``), the
  sender included when it snoops its own device, as indiserver does.
  ``pingRequest`` is answered with ``pingReply`` by the pool itself (INDI 2
  drivers wait for it between BLOBs).
- snooping: a driver's ``getProperties`` naming a device is recorded (device,
  and property when named) and passed to the owner, whose answer then reaches
  the snooper (a driver asking for its own device gets its request back once,
  see ``Router.snoop_request``); while no local driver owns the device it
  goes to every other driver and, with ``forward_snoop_requests=True`` (the
  MQTT instrument side: ``driverstomqtt``), it is *also put on* ``from_indi`` so
  the client side can ask the rest of the network (the snoop_control topic).
  Without that flag (``driverstoredis``) snoop requests never reach
  ``from_indi``: under indiserver a client never sees a driver's getProperties,
  and the Redis store would otherwise publish it on ``from_indi``.  Snoop
  records last until the snooping driver exits (a restarted driver asks
  again), surviving the snooped device's ``delProperty`` or restart.

A driver that exits is reported (in the log, and in an INDI ``message`` that
reaches the clients), its devices are deleted (``delProperty`` on ``from_indi``
and to their snoopers) until it is back, and it is restarted with back-off or
left failed (:mod:`.supervisor`).

The pool is itself an INDI device, the Driver Manager (:mod:`.manager` builds
its messages and checks requests): per driver a light, restart count, last exit
and stderr lines, and switches that restart, stop or start a *configured*
driver; ``getProperties`` (without a device, or naming it) is answered with its
definitions, every change with set messages; :mod:`.control` carries out its
actions.  :meth:`DriverPool.set_drivers` applies a new list of drivers on
reload, starting and stopping only the difference (:mod:`.reload`).

The parts: :mod:`.process` (one child process), :mod:`.supervisor` (start,
watch, restart, stop), :mod:`.routes` (where each message goes, without I/O),
:mod:`.control` (the Driver Manager's actions), and this module, which runs
them together as the INDI side of a bridge.

Cancelling :meth:`DriverPool.run` stops every child (SIGTERM, then SIGKILL
after 3 s) and reaps it; children also get SIGKILL from the kernel if this
process (the thread that started them) dies (``setpriv --pdeathsig KILL``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping

from ...core.channel import Channel
from ...core.sides import FromIndiItem, LinkState, Reset
from ...core.tasks import run_until_first_done
from ...events import journal_fields
from ...protocol.messages import BlobSink, BlobSinks, Message, PingRequest
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser
from ...protocol.routing import Router
from ...protocol.xmlout import indi_timestamp
from ...store.blobs import DiscardedBlob
from ..streams import pump_messages, write_messages
from .control import DriverControl
from .manager import DEFAULT_MANAGER_DEVICE, DriverState, GiveUp, ManagerDevice
from .process import DriverProcess
from .routes import BlobRoute, DriverRoutes, Route
from .supervisor import Supervisor

log = logging.getLogger(__name__)

STDERR_CHUNK = 65536  # bytes read from a driver's stderr at a time; a longer unfinished line is logged as is
STDERR_LINE = 2000  # characters of a stderr line logged and shown


class _DriverBlobs:
    """Chooses, for each BLOB a driver sends, where its data streams (a :class:`BlobSinks`).

    A BLOB that another driver snooping the device wants must reach that driver as sent: it is
    buffered whole in the message (at most one per driver, bounded by ``max_message_size``), as
    before streaming existed.  Otherwise it streams to the client side's sink (the blob folder), or
    is dropped as it streams when the client side's enableBLOB withholds it.
    """

    def __init__(self, routes: DriverRoutes[DriverProcess], sinks: BlobSinks) -> None:
        self.routes = routes
        self.sinks = sinks

    def open(self, vector: Message, element: Mapping[str, str]) -> BlobSink | None:
        match self.routes.blob_route(vector):
            case BlobRoute.WHOLE:
                return None
            case BlobRoute.WITHHELD:
                return DiscardedBlob("withheld by the client side's enableBLOB")
            case BlobRoute.STREAMED:
                return self.sinks.open(vector, element)


class DriverPool:
    """The INDI side of a bridge that runs drivers itself (see the module docstring).

    ``forward_snoop_requests``: see :class:`~.routes.DriverRoutes`; ``blobs``: where the client side
    wants BLOB data streamed (None: BLOBs arrive whole in their messages).
    """

    what = "drivers"

    def __init__(
        self,
        drivers: list[str],
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        forward_snoop_requests: bool = False,
        manager_device: str = DEFAULT_MANAGER_DEVICE,
        give_up: GiveUp | None = None,
        blobs: BlobSinks | None = None,
    ) -> None:
        self.drivers: list[DriverProcess] = []
        self._from_indi: Channel[FromIndiItem] | None = None
        self.max_message_size = max_message_size
        self.manager = ManagerDevice(manager_device)
        self.routes: DriverRoutes[DriverProcess] = DriverRoutes(
            self.manager.device, forward_snoop_requests=forward_snoop_requests
        )
        self.supervisor = Supervisor(self, give_up)
        self.control = DriverControl(self, self.supervisor, self.manager)
        self.blobs = blobs
        self.state = LinkState("drivers", "driver")
        self.set_drivers(drivers)  # none running yet: this only names them

    @property
    def router(self) -> Router[DriverProcess]:
        """Device ownership and snoop records (indiserver's :class:`Router`)."""
        return self.routes.router

    @property
    def give_up(self) -> GiveUp | None:
        """The give-up policy (None: always restart); a reload may change it."""
        return self.supervisor.give_up

    @give_up.setter
    def give_up(self, policy: GiveUp | None) -> None:
        self.supervisor.give_up = policy

    @property
    def serving(self) -> bool:
        """Whether :meth:`run` runs."""
        return self._from_indi is not None

    def set_drivers(self, executables: list[str]) -> tuple[list[str], list[str]]:
        """Apply a new list of drivers (on reload): start the added ones and stop the removed ones,
        leaving the others running untouched; the (added, removed) executables.

        Drivers are matched by executable, as many times as each is listed.
        """
        return self.control.set_drivers(executables)

    # -- status ----------------------------------------------------------------------------
    def update_state(self) -> None:
        """The link state from the drivers' (degraded while one runs, or all are stopped on purpose)."""
        running = [d for d in self.drivers if d.running]
        if len(running) == len(self.drivers):
            self.state.up(f"running {len(running)} drivers: {', '.join(d.label for d in running)}")
        else:
            trouble = "; ".join(f"{d.label} {d.phase.text}" for d in self.drivers if not d.running)
            text = f"{len(running)} of {len(self.drivers)} drivers running; {trouble}"
            if running or all(d.state is DriverState.STOPPED for d in self.drivers if not d.running):
                self.state.degraded(text)  # the bridge still serves the others (and the Driver Manager)
            else:
                self.state.down(text, "no driver running")

    @property
    def summary(self) -> str:
        """Nothing beyond the state's text (which names the drivers)."""
        return ""

    async def publish(self, messages: list[Message]) -> None:
        """Put the Driver Manager's messages on ``from_indi`` (and to drivers snooping it)."""
        if self._from_indi is None:
            return
        for message in messages:
            await self._from_indi.put(message)
            self._to_snoopers(message)

    async def show(self, driver: DriverProcess) -> None:
        """Tell clients the driver's new state (the Driver Manager's set messages)."""
        self.update_state()
        await self.publish(self.manager.updates(driver.report()))

    async def drop_devices(self, driver: DriverProcess, text: str, *, announce: bool, back: bool) -> None:
        """Delete the driver's devices (delProperty) and, if ``announce``, say ``text`` in a system
        message that reaches the clients (naming the devices, gone until it is ``back``)."""
        assert self._from_indi is not None
        stamp = indi_timestamp()
        devices = self.routes.forget(driver)
        for device in devices:
            gone = Message.del_property(device, timestamp=stamp)
            await self._from_indi.put(gone)
            self._to_snoopers(gone)
        if not announce and not devices:
            return
        if devices:
            text += f" (devices gone{' until then' if back else ''}: {', '.join(devices)})"
        await self._from_indi.put(Message.indi_message(text, timestamp=stamp))

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        """Run every driver and route until cancelled; then stop them all."""
        self._from_indi = from_indi
        await from_indi.put(Reset())  # whatever the store held before belongs to an older run
        await self.publish(self.control.definitions())
        for driver in self.drivers:
            self.supervisor.launch(driver)
        try:
            while True:
                for message in await to_indi.get_batch():
                    await self._from_client(message)
        finally:
            await self.control.cancel()
            await self.supervisor.stop_all(self.drivers)
            self._from_indi = None

    async def serve(self, driver: DriverProcess) -> None:
        """Serve a driver that has just started, until its process exits: ask for its properties, route
        what it says, write what it is sent, log its stderr."""
        process, from_indi = driver.process, self._from_indi
        assert process is not None and process.stdout and process.stderr and process.stdin
        assert from_indi is not None
        sinks = _DriverBlobs(self.routes, self.blobs) if self.blobs else None
        parser = IndiStreamParser(self.max_message_size, sinks, defer_close=True)
        driver.send(Message.get_properties())

        async def accept(message: Message) -> None:
            await self._from_driver(driver, message)

        async def wait_exit() -> None:
            await process.wait()

        await run_until_first_done(
            pump_messages(process.stdout, parser, from_indi, f"driver {driver.label}", accept),
            write_messages(process.stdin, driver.stdin),
            self._log_stderr(driver, process.stderr),
            wait_exit(),
        )

    async def _log_stderr(self, driver: DriverProcess, stream: asyncio.StreamReader) -> None:
        """Log the driver's stderr line by line (lines cut at 2000 characters) and show its last lines
        on the Driver Manager."""
        driver_log = logging.getLogger(f"indiredis.driver.{driver.label}")
        pending = b""
        while chunk := await stream.read(STDERR_CHUNK):
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > STDERR_CHUNK:
                lines.append(pending)
                pending = b""
            texts = [
                text[:STDERR_LINE] for line in lines if (text := line.decode("utf-8", "replace").rstrip())
            ]
            for text in texts:
                driver_log.info("%s: %s", driver.label, text, extra=driver.fields)
                driver.stderr_tail.append(text)
            if texts:
                await self.publish([self.manager.stderr_update(driver.report())])
        await asyncio.Event().wait()  # stderr closed: keep going until the process ends

    # -- routing -----------------------------------------------------------------------------
    async def _from_driver(self, driver: DriverProcess, message: Message) -> None:
        route = self.routes.from_driver(driver, message, self.drivers)
        if route.ping_reply and isinstance(message, PingRequest):
            driver.send(Message.ping_reply(message.uid))
        if route.definitions:  # a driver snooping the Driver Manager: answered at once
            for definition in self.control.definitions():
                if not message.name or definition.name == message.name:
                    driver.send(definition)
        if route.unexpected:
            log.warning(
                "driver %s sent <%s>, which drivers do not send; ignored",
                driver.label,
                message.tag,
                extra=driver.fields,
            )
        await self._deliver(message, route)

    async def _from_client(self, message: Message) -> None:
        route = self.routes.from_client(message, self.drivers)
        if route.definitions:
            await self.publish(self.control.definitions())
        if route.manager:
            await self.control.request(message)
        if route.unowned:
            where = journal_fields(device=message.device, prop=message.name)
            log.warning(
                "no driver owns device %r; <%s %s> dropped",
                message.device,
                message.tag,
                message.name,
                extra=where,
            )
        await self._deliver(message, route)

    async def _deliver(self, message: Message, route: Route[DriverProcess]) -> None:
        """Send ``message`` where ``route`` says: to the client side, then to drivers."""
        if route.clients:
            assert self._from_indi is not None
            await self._from_indi.put(message)
        for driver in route.drivers:
            driver.send(message)

    def _to_snoopers(self, message: Message) -> None:
        for snooper in self.routes.snoopers(message):
            snooper.send(message)

    def child_pids(self) -> list[int]:
        """Pids of the running drivers (for tests and status)."""
        return [d.process.pid for d in self.drivers if d.running and d.process is not None]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DriverPool({[d.label for d in self.drivers]!r})"
