"""The driver link: runs INDI driver executables as child processes and routes as indiserver does.

The INDI side of ``driverstoredis`` and ``driverstomqtt``.  Each driver speaks
INDI on its stdin/stdout (one :class:`IndiStreamParser` per driver, so at most
one whole message, one BLOB, is held per driver); its stderr goes to the log
line by line (logger ``indiredis.driver.<executable>``).

Routing contract (the rules live in :mod:`.routing`):

- ``outbound`` (client traffic) -> drivers: ``new*Vector`` goes to the driver
  that owns the device (a device is owned by the first driver that sends a
  ``def``/``set``/``message``/``delProperty`` naming it); ``getProperties``
  with a known device goes to its owner, without a device or for an unknown
  one to every driver; ``enableBLOB`` sets the client side's BLOB policy
  (``Never`` by default, as in indiserver; ``Also``/``Only`` per device or
  property).  ``def``/``set``/``message``/``delProperty`` arriving on
  ``outbound`` for a device *no local driver owns* is snoop data from
  elsewhere (the MQTT instrument side delivers other observatories' traffic
  this way): it goes to every local driver that snoops that device.
- drivers -> ``inbound``: ``def``/``set``/``message``/``delProperty`` go to
  ``inbound`` when the client side's BLOB policy lets them (``setBLOBVector``
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
  MQTT instrument side: ``driverstomqtt``), it is *also put on* ``inbound`` so
  the client side can ask the rest of the network (the snoop_control topic).
  Without that flag (``driverstoredis``) snoop requests never reach
  ``inbound``: under indiserver a client never sees a driver's getProperties,
  and the Redis store would otherwise publish it on ``from_indi``.  Snoop
  records last until the snooping driver exits (a restarted driver asks
  again), surviving the snooped device's ``delProperty`` or restart.

A driver that exits is reported (a warning for every crash, with the count when
they repeat: "indi_simulator_ccd crashed 5 times in 60 s"; a driver that cannot
be started at all is said once, then at debug level; and an INDI ``message``
that reaches the clients), its devices are deleted (``delProperty`` on
``inbound`` and to their snoopers) until it is back, and it is restarted with
capped exponential back-off (0.5 s to 5 s; from 0.5 s again after 10 s of
running), or, under a :class:`GiveUp` policy, left stopped (failed) after N
crashes within M seconds until a client starts it again.

The pool is itself an INDI device, the Driver Manager (:mod:`.manager` builds
its messages and checks requests): per driver a light, restart count, last exit
and stderr lines, and switches that restart, stop or start a *configured*
driver; ``getProperties`` (without a device, or naming it) is answered with its
definitions, every change with set messages.  :meth:`DriverPool.set_drivers`
applies a new list of drivers on reload, starting and stopping only the
difference.

Cancelling :meth:`DriverPool.run` stops every child (SIGTERM, then SIGKILL
after 3 s) and reaps it; children also get SIGKILL from the kernel if this
process (the thread that started them) dies (``setpriv --pdeathsig KILL``).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import os
import shutil
import signal
import time
from collections.abc import Coroutine, Mapping
from pathlib import Path
from typing import Any

from ...core.channel import Channel
from ...errors import DriverMissing, InvalidValue
from ...events import Event, journal_fields
from ...protocol.messages import Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, BlobSink, BlobSinks, IndiStreamParser
from ...protocol.routing import BlobPolicy, Router
from ...protocol.vocabulary import Action, Tag
from ...protocol.xmlout import indi_timestamp
from ...store.blobs import DiscardedBlob
from ..base import Backoff, InboundItem, LinkState, Reset
from ..streams import cancel_and_wait, pump_messages, run_until_first_done, write_messages
from .manager import (
    DEFAULT_MANAGER_DEVICE,
    STDERR_LINES,
    Command,
    DriverAction,
    DriverReport,
    DriverState,
    GiveUp,
    ManagerDevice,
    Refusal,
    driver_key,
)

log = logging.getLogger(__name__)

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL at shutdown
STABLE_RUN = 10.0  # a driver that ran this long restarts from the shortest back-off
DRIVER_BUFFER = 1000  # messages queued for one driver's stdin
CRASH_WINDOW = 60.0  # seconds over which repeated crashes are counted in the log (without a give-up policy)


def _command(executable: str) -> list[str]:
    """The driver's command line: under ``setpriv --pdeathsig KILL`` (util-linux) when available, so the
    kernel kills the driver if this process dies without stopping it.  (Not a ``preexec_fn``: running
    Python between fork and exec can deadlock in a process with threads.)"""
    path = shutil.which(executable)
    if path is None:  # said here: under setpriv it would only be an exit status
        raise DriverMissing(errno.ENOENT, "no such executable on PATH", executable)
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", path] if setpriv else [path]


def _exit_text(code: int | None) -> str:
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


class DriverProcess:
    """One driver executable: its process, its stdin queue, its restarts and what the manager shows."""

    def __init__(self, executable: str, key: str = "") -> None:
        self.executable = executable
        self.label = Path(executable).name
        self.fields = journal_fields(link="driver", driver=self.label)  # for its log lines
        self.key = key or driver_key(self.label)
        self.stdin: Channel[Message] = Channel(DRIVER_BUFFER, f"to {self.label}")
        self.process: asyncio.subprocess.Process | None = None
        self.backoff = Backoff()
        self.restarts = 0
        self.status = "starting"
        self.state = DriverState.RESTARTING  # until the first start
        self.busy = False  # a client's action on it is under way
        self.last_failure = ""  # how the last start attempt failed, when it could not start
        self.last_exit = ""
        self.last_exit_time = ""
        self.crashes: collections.deque[float] = collections.deque()  # monotonic times of recent crashes
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)
        self.supervisor: asyncio.Task[None] | None = None
        self.settled = asyncio.Event()  # set once the supervisor has started it, or could not
        self.lock = asyncio.Lock()  # one client action at a time

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def report(self) -> DriverReport:
        """What the Driver Manager device shows of this driver."""
        return DriverReport(
            self.key,
            self.executable,
            self.state,
            self.process.pid if self.running and self.process is not None else None,
            self.restarts,
            self.last_exit,
            self.last_exit_time,
            tuple(self.stderr_tail),
            self.busy,
        )

    def count_crash(self, window: float) -> int:
        """Note a crash now; the number of crashes within the last ``window`` seconds, this one included."""
        now = time.monotonic()
        self.crashes.append(now)
        while self.crashes and self.crashes[0] < now - window:
            self.crashes.popleft()
        return len(self.crashes)

    def send(self, message: Message) -> None:
        """Queue a message for the driver; if it stops reading, the oldest queued ones are dropped
        and counted (one log line per run of the process, the total when it exits)."""
        if self.running:
            self.stdin.put_nowait(message)
            if self.stdin.dropped == 1:
                log.warning(
                    "driver %s is not reading its input: dropping the oldest of %d queued messages",
                    self.label,
                    DRIVER_BUFFER,
                    extra=self.fields | journal_fields(Event.MESSAGES_DROPPED),
                )

    async def start(self) -> asyncio.subprocess.Process:
        """Start the process (raises OSError if it cannot be started)."""
        if self.stdin.dropped:
            dropped = self.fields | journal_fields(Event.MESSAGES_DROPPED)
            log.warning(
                "driver %s: %d messages to it were dropped", self.label, self.stdin.dropped, extra=dropped
            )
        self.stdin = Channel(DRIVER_BUFFER, f"to {self.label}")  # nothing stale for a new process
        self.process = await asyncio.create_subprocess_exec(
            *_command(self.executable),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            start_new_session=True,
        )
        self.status = "running"
        return self.process

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL to the driver's process group after a grace period; reaps the process.

        The driver's output is read and discarded meanwhile: asyncio reports a process as finished
        only once its pipes have reached end of file, and a pipe nobody reads (the serving tasks are
        gone by now) fills up and is never read to its end.
        """
        process = self.process
        if process is None or process.returncode is not None:
            return
        drains: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(_discard(stream)) for stream in (process.stdout, process.stderr) if stream
        ]
        try:
            _signal(process, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(process.wait()), STOP_GRACE)
            except TimeoutError:
                _signal(process, signal.SIGKILL)  # the whole group: nothing left holding the pipes
                try:
                    await asyncio.wait_for(asyncio.shield(process.wait()), STOP_GRACE)
                except TimeoutError:
                    log.error(
                        "driver %s (pid %d) did not end after SIGKILL; leaving it",
                        self.label,
                        process.pid,
                        extra=self.fields,
                    )
        finally:
            await cancel_and_wait(drains)


def _log_failure(task: asyncio.Future[Any], what: str) -> None:
    """Log the error that ended a background task (one that ends by being cancelled says nothing)."""
    if not task.cancelled() and task.exception() is not None:
        log.error("error in %s", what, exc_info=task.exception())


async def _discard(stream: asyncio.StreamReader) -> None:
    """Read a stream to its end, dropping what it says."""
    while await stream.read(65536):
        pass


def _signal(process: asyncio.subprocess.Process, sig: signal.Signals) -> None:
    """Signal a driver that has not been reaped yet, and with SIGKILL its whole process group
    (drivers run in a session of their own, so the group is the driver and whatever it started).

    Not ``process.terminate()``: Popen polls (and so reaps) the child before signalling it, and a
    child that has just died would then be reaped behind asyncio's child watcher, which reports
    exit status 255 instead of the real one.  ``os.kill`` leaves reaping to the watcher (an unreaped
    child's pid cannot be reused, nor can the group id while the group has members).
    """
    if process.returncode is None:
        try:
            os.kill(process.pid, sig)
        except ProcessLookupError:
            pass
    if sig == signal.SIGKILL:
        try:
            os.killpg(process.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


class _DriverBlobs:
    """Chooses, for each BLOB a driver sends, where its data streams (a :class:`BlobSinks`).

    A BLOB that another driver snooping the device wants must reach that driver as sent: it is
    buffered whole in the message (at most one per driver, bounded by ``max_message_size``), as
    before streaming existed.  Otherwise it streams to the client side's sink (the blob folder), or
    is dropped as it streams when the client side's enableBLOB withholds it.
    """

    def __init__(self, pool: DriverPool) -> None:
        self.pool = pool

    def open(self, tag: str, vector: Mapping[str, str], element: Mapping[str, str]) -> BlobSink | None:
        message = Message(tag, dict(vector))
        if any(True for _ in self.pool.router.snoopers(message)):
            return None
        if not self.pool.client_blobs.passes(message):
            return DiscardedBlob("withheld by the client side's enableBLOB")
        assert self.pool.blobs is not None
        return self.pool.blobs.open(tag, vector, element)


class DriverPool:
    """The INDI side of a bridge that runs drivers itself (see the module docstring)."""

    what = "drivers"

    def __init__(
        self,
        drivers: list[str],
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        forward_snoop_requests: bool = False,
        manager_device: str = DEFAULT_MANAGER_DEVICE,
        give_up: GiveUp | None = None,
        blobs: BlobSinks | None = None,
    ) -> None:
        self.drivers: list[DriverProcess] = []
        self._inbound: Channel[InboundItem] | None = None
        self._actions: set[asyncio.Task[None]] = set()  # clients' actions and reloads under way
        self.set_drivers(drivers)  # none running yet: this only names them
        self.max_message_size = max_message_size
        self.forward_snoop_requests = forward_snoop_requests
        self.manager = ManagerDevice(manager_device)
        self.give_up = give_up
        self.blobs = blobs  # where the client side wants BLOB data streamed (None: BLOBs arrive whole)
        self.router: Router[DriverProcess] = Router()
        self.client_blobs = BlobPolicy()
        self.state = LinkState("drivers", "driver")

    def _keys(self) -> list[str]:
        return [driver.key for driver in self.drivers]

    def _manager_definitions(self) -> list[Message]:
        """The Driver Manager device's definitions for the drivers as they are now."""
        return self.manager.definitions(d.report() for d in self.drivers)

    # -- status ----------------------------------------------------------------------------
    def _update_state(self) -> None:
        running = [d for d in self.drivers if d.running]
        if len(running) == len(self.drivers):
            self.state.up(f"running {len(running)} drivers: {', '.join(d.label for d in running)}")
        else:
            trouble = "; ".join(f"{d.label} {d.status}" for d in self.drivers if not d.running)
            text = f"{len(running)} of {len(self.drivers)} drivers running; {trouble}"
            if running or all(d.state is DriverState.STOPPED for d in self.drivers if not d.running):
                self.state.degraded(text)  # the bridge still serves the others (and the Driver Manager)
            else:
                self.state.down(text, "no driver running")

    @property
    def summary(self) -> str:
        """Nothing beyond the state's text (which names the drivers)."""
        return ""

    async def _publish(self, messages: list[Message]) -> None:
        """Put the Driver Manager's messages on ``inbound`` (and to drivers snooping it)."""
        if self._inbound is None:
            return
        for message in messages:
            await self._inbound.put(message)
            self._to_snoopers(message)

    async def _show(self, driver: DriverProcess) -> None:
        """Tell clients the driver's new state (the Driver Manager's set messages)."""
        self._update_state()
        await self._publish(self.manager.updates(driver.report()))

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        """Run every driver and route until cancelled; then stop them all."""
        self._inbound = inbound
        await inbound.put(Reset())  # whatever the store held before belongs to an older run
        await self._publish(self._manager_definitions())
        for driver in self.drivers:
            self._launch(driver)
        try:
            await self._route_client_traffic(outbound, inbound)
        finally:
            await cancel_and_wait(list(self._actions))
            await cancel_and_wait([d.supervisor for d in self.drivers if d.supervisor is not None])
            await asyncio.gather(*(d.stop() for d in self.drivers), return_exceptions=True)
            self._inbound = None

    def _launch(self, driver: DriverProcess) -> None:
        """Start supervising the driver (it starts now, and restarts whenever it exits)."""
        assert self._inbound is not None
        driver.backoff.reset()
        driver.crashes.clear()
        driver.settled = asyncio.Event()
        driver.supervisor = asyncio.ensure_future(self._supervise(driver, self._inbound))
        driver.supervisor.add_done_callback(lambda task: _log_failure(task, f"supervising {driver.label}"))

    def _spawn(self, coroutine: Coroutine[Any, Any, None], what: str) -> None:
        """Run a client's action (or a reload's) beside the routing, which must not wait for it."""
        task = asyncio.ensure_future(coroutine)
        self._actions.add(task)
        task.add_done_callback(self._actions.discard)
        task.add_done_callback(lambda done: _log_failure(done, what))

    async def _supervise(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> None:
        """Start the driver, serve it, and restart it with back-off whenever it exits (or leave it
        failed, under the give-up policy)."""
        while True:
            started = time.monotonic()
            code_text, crashed = await self._run_once(driver, inbound)
            if time.monotonic() - started > STABLE_RUN:
                driver.backoff.reset()
            driver.last_exit, driver.last_exit_time = code_text, indi_timestamp()
            crashes = driver.count_crash(self._window())
            count = f"{driver.label} crashed {crashes} times in {self._window():g} s" if crashes > 1 else ""
            if self.give_up is not None and crashes >= self.give_up.crashes:
                await self._give_up_on(driver, code_text, count)
                return
            delay = await self._report_restart(driver, code_text, crashed, count)
            await asyncio.sleep(delay)

    async def _run_once(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> tuple[str, bool]:
        """Start the driver and serve it until it exits: how it ended, and whether it had started (a
        crash) rather than failed to start."""
        try:
            process = await driver.start()
        except OSError as exc:
            driver.settled.set()
            return f"cannot be started: {exc.strerror or exc}", False
        driver.settled.set()
        driver.state = DriverState.RUNNING
        driver.last_failure = ""
        log.info("started driver %s (pid %d)", driver.label, process.pid, extra=driver.fields)
        await self._show(driver)
        driver.send(Message.get_properties())
        try:
            await self._serve(driver, inbound)
        except Exception:  # noqa: BLE001 - a fault in serving one driver must not stop the others
            log.exception("error while serving driver %s; restarting it", driver.label)
        finally:
            await driver.stop()
        return _exit_text(process.returncode), True

    async def _give_up_on(self, driver: DriverProcess, code_text: str, count: str) -> None:
        """Leave a driver that crashed too often stopped until a client starts it, and say so."""
        driver.state = DriverState.FAILED
        driver.status = f"{code_text}, failed: {count or 'gave up'}"
        log.error(
            "driver %s %s; %s: given up, left stopped until a client starts it",
            driver.label,
            code_text,
            count or f"{driver.label} crashed once",
            extra=driver.fields | journal_fields(Event.DRIVER_CRASHED),
        )
        await self._drop_devices(
            driver,
            f"driver {driver.label} {code_text}; {count or 'crashed'}: "
            "given up, left stopped until a client starts it",
        )
        await self._show(driver)

    async def _report_restart(
        self, driver: DriverProcess, code_text: str, crashed: bool, count: str
    ) -> float:
        """Log and show that the driver ended and will be restarted; the delay before the restart.

        Every crash is a warning (with the count when they repeat); a driver that cannot be started at
        all is said once, then at debug level until it could start (it is retried forever).
        """
        delay = driver.backoff.next()
        driver.restarts += 1
        driver.state = DriverState.RESTARTING
        driver.status = f"{code_text}, restarting in {delay:g} s"
        repeated = not crashed and code_text == driver.last_failure
        driver.last_failure = "" if crashed else code_text
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
        text = f"driver {driver.label} {code_text}{counted}"
        await self._drop_devices(driver, f"{text}; restarting", announce=not repeated)
        await self._show(driver)
        return delay

    def _window(self) -> float:
        return self.give_up.seconds if self.give_up else CRASH_WINDOW

    async def _drop_devices(
        self, driver: DriverProcess, text: str, announce: bool = True, back: bool = True
    ) -> None:
        """Delete the driver's devices (delProperty) and, if ``announce``, say ``text`` in a system
        message that reaches the clients (naming the devices, gone until it is ``back``)."""
        assert self._inbound is not None
        stamp = indi_timestamp()
        devices = self.router.forget(driver)
        for device in devices:
            gone = Message.del_property(device, timestamp=stamp)
            await self._inbound.put(gone)
            self._to_snoopers(gone)
        if not announce and not devices:
            return
        if devices:
            text += f" (devices gone{' until then' if back else ''}: {', '.join(devices)})"
        await self._inbound.put(Message.indi_message(text, timestamp=stamp))

    async def _serve(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> None:
        process = driver.process
        assert process is not None and process.stdout and process.stderr and process.stdin
        parser = IndiStreamParser(
            self.max_message_size, _DriverBlobs(self) if self.blobs else None, defer_close=True
        )

        async def accept(message: Message) -> None:
            await self._from_driver(driver, message, inbound)

        async def wait_exit() -> None:
            await process.wait()

        await run_until_first_done(
            pump_messages(process.stdout, parser, inbound, f"driver {driver.label}", accept),
            write_messages(process.stdin, driver.stdin),
            self._log_stderr(driver, process.stderr),
            wait_exit(),
        )

    async def _log_stderr(self, driver: DriverProcess, stream: asyncio.StreamReader) -> None:
        """Log the driver's stderr line by line (lines cut at 2000 characters) and show its last lines
        on the Driver Manager."""
        driver_log = logging.getLogger(f"indiredis.driver.{driver.label}")
        pending = b""
        while True:
            chunk = await stream.read(65536)
            if not chunk:
                await asyncio.Event().wait()  # stderr closed: keep going until the process ends
            *lines, pending = (pending + chunk).split(b"\n")
            if len(pending) > 65536:
                lines.append(pending)
                pending = b""
            shown = False
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip()
                if text:
                    driver_log.info("%s: %s", driver.label, text[:2000], extra=driver.fields)
                    driver.stderr_tail.append(text[:2000])
                    shown = True
            if shown:
                await self._publish([self.manager.stderr_update(driver.report())])

    # -- the Driver Manager: clients' actions and reloads ----------------------------------------
    def _configured(self, key: str) -> DriverProcess | None:
        return next((driver for driver in self.drivers if driver.key == key), None)

    async def _manager_request(self, message: Message) -> None:
        """A client's message for the Driver Manager device."""
        if message.tag == Tag.GET_PROPERTIES:
            await self._publish(self._manager_definitions())
            return
        verdict = self.manager.request(message, self._keys())
        if isinstance(verdict, Refusal):
            log.warning("%s", verdict.messages[0].attrs.get("message", "request refused"))
            await self._publish(list(verdict.messages))
        elif isinstance(verdict, Command):
            driver = self._configured(verdict.key)
            assert driver is not None  # request() only accepts configured keys
            self._spawn(self._act(driver, verdict.action), f"{verdict.action.value} of {driver.label}")

    async def _act(self, driver: DriverProcess, action: DriverAction) -> None:
        """Restart, stop or start a configured driver at a client's request."""
        if driver.lock.locked():
            await self._publish([self.manager.notice(f"{driver.label}: {action.value.lower()} queued")])
        async with driver.lock:
            if driver not in self.drivers:  # removed by a reload meanwhile
                return
            driver.busy = True
            log.info(
                "%s of driver %s asked by a client", action.value.lower(), driver.label, extra=driver.fields
            )
            if (
                action is DriverAction.START
                and driver.supervisor is not None
                and not driver.supervisor.done()
            ):
                driver.busy = False
                await self._publish([self.manager.notice(f"driver {driver.label} is already running")])
                await self._show(driver)
                return
            if action is not DriverAction.STOP:
                driver.state = DriverState.RESTARTING
            await self._show(driver)
            doing = "stopped" if action is DriverAction.STOP else "restarting"
            await self._halt(
                driver,
                f"driver {driver.label} {doing} at a client's request",
                back=action is not DriverAction.STOP,
            )
            if action is DriverAction.STOP:
                driver.state = DriverState.STOPPED
                driver.status = "stopped at a client's request"
            else:
                if driver.process is not None:
                    driver.restarts += 1
                self._launch(driver)
                await self._started(driver)
            driver.busy = False
            await self._show(driver)

    @staticmethod
    async def _started(driver: DriverProcess) -> None:
        """Wait until the supervisor has started the driver (or could not start it, or ended)."""
        if driver.supervisor is not None:
            settled = asyncio.ensure_future(driver.settled.wait())
            await asyncio.wait([settled, driver.supervisor], return_when=asyncio.FIRST_COMPLETED)
            await cancel_and_wait([settled])

    async def _halt(self, driver: DriverProcess, text: str, back: bool = False) -> None:
        """Stop supervising the driver, stop its process and delete its devices."""
        if driver.supervisor is not None:
            await cancel_and_wait([driver.supervisor])
            driver.supervisor = None
        await driver.stop()
        await self._drop_devices(driver, text, back=back)
        self._update_state()

    def set_drivers(self, executables: list[str]) -> tuple[list[str], list[str]]:
        """Apply a new list of drivers (on reload): start the added ones and stop the removed ones,
        leaving the others running untouched; the (added, removed) executables.

        Drivers are matched by executable, as many times as each is listed.
        """
        if not executables:
            raise InvalidValue("driverstoredis needs at least one driver executable")
        kept: list[DriverProcess] = []
        unmatched = list(self.drivers)
        added: list[DriverProcess] = []
        for executable in executables:
            same = next((d for d in unmatched if d.executable == executable), None)
            if same is not None:
                unmatched.remove(same)
                kept.append(same)
            else:
                taken = [d.key for d in self.drivers] + [d.key for d in added]
                fresh = DriverProcess(executable, driver_key(Path(executable).name, taken))
                added.append(fresh)
                kept.append(fresh)
        self.drivers = kept
        if self._inbound is not None:
            for driver in unmatched:
                self._spawn(self._remove(driver), f"removal of {driver.label}")
            for driver in added:
                self._spawn(self._add(driver), f"addition of {driver.label}")
        return [d.executable for d in added], [d.executable for d in unmatched]

    async def _add(self, driver: DriverProcess) -> None:
        await self._publish(self.manager.driver_definitions(driver.report()))
        self._launch(driver)

    async def _remove(self, driver: DriverProcess) -> None:
        async with driver.lock:
            await self._halt(driver, f"driver {driver.label} removed from the configuration")
            await self._publish(self.manager.deletions(driver.key))

    # -- routing -----------------------------------------------------------------------------
    async def _from_driver(
        self, driver: DriverProcess, message: Message, inbound: Channel[InboundItem]
    ) -> None:
        tag = message.tag
        if tag == Tag.GET_PROPERTIES:
            await self._snoop_request(driver, message, inbound)
        elif tag == Tag.PING_REQUEST:  # drivers wait for the reply before sending more BLOB data
            driver.send(Message.ping_reply(message.attrs.get("uid", "")))
        elif tag == Tag.ENABLE_BLOB:
            self.router.set_snoop_blobs(driver, message)
        elif message.from_device:
            self.router.learn(driver, message)
            if self.client_blobs.passes(message):
                await inbound.put(message)
            self._to_snoopers(message)
        else:
            log.warning(
                "driver %s sent <%s>, which drivers do not send; ignored",
                driver.label,
                tag,
                extra=driver.fields,
            )

    async def _snoop_request(
        self, driver: DriverProcess, message: Message, inbound: Channel[InboundItem]
    ) -> None:
        targets = self.router.snoop_request(driver, message)
        if message.device and message.device == self.manager.device:  # the pool's own device answers at once
            for definition in self._manager_definitions():
                if not message.name or definition.name == message.name:
                    driver.send(definition)
            return
        for target in targets or ():
            target.send(message)
        if targets is None:  # perhaps a driver that has not spoken yet, or another observatory
            for other in self.drivers:
                if other is not driver:
                    other.send(message)
            if self.forward_snoop_requests:
                await inbound.put(message)

    def _to_snoopers(self, message: Message) -> None:
        for snooper in self.router.snoopers(message):
            snooper.send(message)

    async def _route_client_traffic(self, outbound: Channel[Message], inbound: Channel[InboundItem]) -> None:
        while True:
            for message in await outbound.get_batch():
                await self._from_client(message)

    async def _from_client(self, message: Message) -> None:
        tag = message.tag
        if tag == Tag.ENABLE_BLOB:
            self.client_blobs.update(message)
            return
        if message.device == self.manager.device:
            await self._manager_request(message)
            return
        if tag == Tag.GET_PROPERTIES and not message.device:
            await self._manager_request(message)
        owner = self.router.owner(message.device) if message.device else None
        if tag == Tag.GET_PROPERTIES or message.action is Action.NEW:
            targets = [owner] if owner is not None else (self.drivers if tag == Tag.GET_PROPERTIES else [])
            if not targets:
                where = journal_fields(device=message.device, prop=message.name)
                log.warning(
                    "no driver owns device %r; <%s %s> dropped",
                    message.device,
                    tag,
                    message.name,
                    extra=where,
                )
            for driver in targets:
                driver.send(message)
        elif message.from_device:
            if owner is None:  # snoop data from elsewhere
                self._to_snoopers(message)

    def child_pids(self) -> list[int]:
        """Pids of the running drivers (for tests and status)."""
        return [d.process.pid for d in self.drivers if d.running and d.process is not None]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DriverPool({[d.label for d in self.drivers]!r})"
