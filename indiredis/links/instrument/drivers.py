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
  only after ``enableBLOB Also/Only``), and to every *other* driver that snoops
  the device (BLOB data only if that driver sent its own ``enableBLOB``).
  ``pingRequest`` is answered with ``pingReply`` by the pool itself (INDI 2
  drivers wait for it between BLOBs).
- snooping: a driver's ``getProperties`` for a device it does not own is
  recorded (device, and property when named) and passed to the owner, whose
  answer then reaches the snooper; while no local driver owns the device it
  goes to every other driver and, with ``forward_snoop_requests=True`` (the
  MQTT instrument side: ``driverstomqtt``), it is *also put on* ``inbound`` so
  the client side can ask the rest of the network (the snoop_control topic).
  Without that flag (``driverstoredis``) snoop requests never reach
  ``inbound``: under indiserver a client never sees a driver's getProperties,
  and the Redis store would otherwise publish it on ``from_indi``.  Snoop
  records last until the snooping driver exits (a restarted driver asks
  again), surviving the snooped device's ``delProperty`` or restart.

A driver that exits is reported (a log line and an INDI ``message`` that
reaches Redis; a failure repeated without a good run in between is logged at
debug level only), its devices are deleted (``delProperty`` on ``inbound``
and to their snoopers) until it is back, and it is restarted with capped
exponential back-off (0.5 s to 5 s; from 0.5 s again after 10 s of running).
Cancelling :meth:`DriverPool.run` stops every child (SIGTERM, then SIGKILL
after 3 s) and reaps it; children also get SIGKILL from the kernel if this
process (the thread that started them) dies (``setpriv --pdeathsig KILL``).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import os
import shutil
import signal
import time
from pathlib import Path

from ...core.channel import Channel
from ...events import Event, journal_fields
from ...protocol.messages import Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser
from ...protocol.routing import BlobPolicy, Router
from ...protocol.vocabulary import Action, Tag
from ...protocol.xmlout import indi_timestamp
from ..base import Backoff, InboundItem, LinkState, Reset
from ..streams import cancel_and_wait, pump_messages, run_until_first_done, write_messages

log = logging.getLogger(__name__)

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL at shutdown
STABLE_RUN = 10.0  # a driver that ran this long restarts from the shortest back-off
DRIVER_BUFFER = 1000  # messages queued for one driver's stdin


def _command(executable: str) -> list[str]:
    """The driver's command line: under ``setpriv --pdeathsig KILL`` (util-linux) when available, so the
    kernel kills the driver if this process dies without stopping it.  (Not a ``preexec_fn``: running
    Python between fork and exec can deadlock in a process with threads.)"""
    path = shutil.which(executable)
    if path is None:  # said here: under setpriv it would only be an exit status
        raise FileNotFoundError(errno.ENOENT, "no such executable on PATH", executable)
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
    """One driver executable: its process, its stdin queue, its restarts."""

    def __init__(self, executable: str) -> None:
        self.executable = executable
        self.label = Path(executable).name
        self.fields = journal_fields(link="driver", driver=self.label)  # for its log lines
        self.stdin: Channel[Message] = Channel(DRIVER_BUFFER, f"to {self.label}")
        self.process: asyncio.subprocess.Process | None = None
        self.backoff = Backoff()
        self.restarts = 0
        self.status = "starting"
        self.last_failure = ""  # how the last run ended, when it ended before running STABLE_RUN seconds

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

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

    async def start(self) -> None:
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

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL to the driver's process group after a grace period; reaps the process.

        The driver's output is read and discarded meanwhile: asyncio reports a process as finished
        only once its pipes have reached end of file, and a pipe nobody reads (the serving tasks are
        gone by now) fills up and is never read to its end.
        """
        process = self.process
        if process is None or process.returncode is not None:
            return
        drains = [
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
                        "driver %s (pid %d) did not end after SIGKILL; leaving it", self.label, process.pid
                    )
        finally:
            await cancel_and_wait(drains)


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


class DriverPool:
    """The INDI side of a bridge that runs drivers itself (see the module docstring)."""

    what = "drivers"

    def __init__(
        self,
        drivers: list[str],
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        forward_snoop_requests: bool = False,
    ) -> None:
        if not drivers:
            raise ValueError("driverstoredis needs at least one driver executable")
        self.drivers = [DriverProcess(executable) for executable in drivers]
        self.max_message_size = max_message_size
        self.forward_snoop_requests = forward_snoop_requests
        self.router: Router[DriverProcess] = Router()
        self.client_blobs = BlobPolicy()
        self.state = LinkState("drivers", "driver")

    # -- status ----------------------------------------------------------------------------
    def _update_state(self) -> None:
        running = [d for d in self.drivers if d.running]
        if len(running) == len(self.drivers):
            self.state.up(f"running {len(running)} drivers: {', '.join(d.label for d in running)}")
        else:
            trouble = "; ".join(f"{d.label} {d.status}" for d in self.drivers if not d.running)
            text = f"{len(running)} of {len(self.drivers)} drivers running; {trouble}"
            if running:
                self.state.degraded(text)  # the bridge still serves the others
            else:
                self.state.down(text, "no driver running")

    @property
    def summary(self) -> str:
        """Nothing beyond the state's text (which names the drivers)."""
        return ""

    # -- main loop ---------------------------------------------------------------------------
    async def run(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        """Run every driver and route until cancelled; then stop them all."""
        await inbound.put(Reset())  # whatever the store held before belongs to an older run
        tasks = [asyncio.ensure_future(self._supervise(driver, inbound)) for driver in self.drivers]
        tasks.append(asyncio.ensure_future(self._route_client_traffic(outbound, inbound)))
        try:
            await asyncio.gather(*tasks)
        finally:
            await cancel_and_wait(tasks)  # each supervisor stops its driver on the way out
            await asyncio.gather(*(d.stop() for d in self.drivers), return_exceptions=True)

    async def _supervise(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> None:
        """Start the driver, serve it, and restart it with back-off whenever it exits."""
        while True:
            started = time.monotonic()
            try:
                await driver.start()
            except OSError as exc:
                code_text = f"cannot be started: {exc.strerror or exc}"
            else:
                self._update_state()
                log.info("started driver %s (pid %d)", driver.label, driver.process.pid, extra=driver.fields)  # type: ignore[union-attr]
                driver.send(Message.get_properties())
                try:
                    await self._serve(driver, inbound)
                except Exception:  # noqa: BLE001 - a fault in serving one driver must not stop the others
                    log.exception("error while serving driver %s; restarting it", driver.label)
                finally:
                    await driver.stop()
                code_text = _exit_text(driver.process.returncode)  # type: ignore[union-attr]
            repeated = code_text == driver.last_failure
            if time.monotonic() - started > STABLE_RUN:
                driver.backoff.reset()
                repeated = False
            driver.last_failure = code_text
            delay = driver.backoff.next()
            driver.restarts += 1
            driver.status = f"{code_text}, restarting in {delay:g} s"
            log.log(
                logging.DEBUG if repeated else logging.WARNING,
                "driver %s %s; restarting in %g s",
                driver.label,
                code_text,
                delay,
                extra=driver.fields | journal_fields(Event.DRIVER_CRASHED),
            )
            await self._report_death(driver, code_text, inbound, announce=not repeated)
            self._update_state()
            await asyncio.sleep(delay)

    async def _report_death(
        self, driver: DriverProcess, code_text: str, inbound: Channel[InboundItem], announce: bool = True
    ) -> None:
        """Delete the driver's devices (delProperty) and, if ``announce``, say so in a system message
        that reaches Redis."""
        stamp = indi_timestamp()
        devices = self.router.forget(driver)
        for device in devices:
            gone = Message.del_property(device, timestamp=stamp)
            await inbound.put(gone)
            self._to_snoopers(gone, None)
        if not announce and not devices:
            return
        text = f"driver {driver.label} {code_text}; restarting"
        if devices:
            text += f" (devices gone until then: {', '.join(devices)})"
        await inbound.put(Message.indi_message(text, timestamp=stamp))

    async def _serve(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> None:
        process = driver.process
        assert process is not None and process.stdout and process.stderr and process.stdin
        parser = IndiStreamParser(self.max_message_size)

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

    @staticmethod
    async def _log_stderr(driver: DriverProcess, stream: asyncio.StreamReader) -> None:
        """Log the driver's stderr line by line (lines cut at 2000 characters)."""
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
            for line in lines:
                text = line.decode("utf-8", "replace").rstrip()
                if text:
                    driver_log.info("%s: %s", driver.label, text[:2000], extra=driver.fields)

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
            self._to_snoopers(message, driver)
        else:
            log.warning("driver %s sent <%s>, which drivers do not send; ignored", driver.label, tag)

    async def _snoop_request(
        self, driver: DriverProcess, message: Message, inbound: Channel[InboundItem]
    ) -> None:
        device = message.device
        if not device or self.router.owner(device) is driver:
            return
        self.router.add_snoop(driver, device, message.name)
        owner = self.router.owner(device)
        if owner is not None:
            owner.send(message)
        else:  # perhaps a driver that has not spoken yet, or another observatory
            for other in self.drivers:
                if other is not driver:
                    other.send(message)
            if self.forward_snoop_requests:
                await inbound.put(message)

    def _to_snoopers(self, message: Message, source: DriverProcess | None) -> None:
        for snooper in self.router.snoopers(message, exclude=source):
            snooper.send(message)

    async def _route_client_traffic(self, outbound: Channel[Message], inbound: Channel[InboundItem]) -> None:
        while True:
            for message in await outbound.get_batch():
                self._from_client(message)

    def _from_client(self, message: Message) -> None:
        tag = message.tag
        if tag == Tag.ENABLE_BLOB:
            self.client_blobs.update(message)
            return
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
                self._to_snoopers(message, None)

    def child_pids(self) -> list[int]:
        """Pids of the running drivers (for tests and status)."""
        return [d.process.pid for d in self.drivers if d.running and d.process is not None]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DriverPool({[d.label for d in self.drivers]!r})"
