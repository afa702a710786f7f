"""The driver link: runs INDI driver executables as child processes and routes as indiserver does.

The INDI side of ``driverstoredis`` and ``driverstomqtt``.  Each driver speaks
INDI on its stdin/stdout; its stderr goes to the log line by line.  Routing
(:mod:`.routing`):

- client traffic from ``outbound``: ``new*Vector`` and ``getProperties`` go to
  the driver that owns the device (``getProperties`` for no device or an
  unknown one goes to every driver); ``enableBLOB`` sets the client's BLOB
  policy (default ``Never``, as indiserver);
- driver traffic (``def``/``set``/``message``/``delProperty``) goes to
  ``inbound`` when the client's BLOB policy lets it, and to every driver that
  snoops the device;
- snooping: a driver's ``getProperties`` for a device it does not own is
  recorded and passed to the owner, so its answer reaches the snooper.  With
  ``forward_snoop_requests`` (the MQTT instrument side), that getProperties is
  also put on ``inbound``, and ``def``/``set``/... messages arriving on
  ``outbound`` for devices no local driver owns (snoop data from other
  observatories) are delivered to the drivers that snoop them.

A driver that exits is reported (a log line and an INDI ``message`` that
reaches Redis), its devices are deleted (``delProperty``) until it is back,
and it is restarted with capped exponential back-off.  Cancelling
:meth:`DriverPool.run` stops every child (SIGTERM, then SIGKILL) and reaps
it; children also get SIGKILL from the kernel if this process dies
(``setpriv --pdeathsig``).
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import signal
import time
from pathlib import Path

from ..channel import Channel
from ..protocol.messages import Message
from ..protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser, parse_message
from ..protocol.xmlout import element_xml, getproperties_xml, indi_timestamp
from .base import Backoff, InboundItem, LinkState, Reset
from .routing import BlobPolicy, Router
from .streams import cancel_and_wait, pump_messages, run_until_first_done, write_messages

log = logging.getLogger("indiredis")

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL at shutdown
STABLE_RUN = 10.0  # a driver that ran this long restarts from the shortest back-off
DRIVER_BUFFER = 1000  # messages queued for one driver's stdin
FROM_DRIVER_TAGS = frozenset({"message", "delProperty"})


def _command(executable: str) -> list[str]:
    """The driver's command line: under ``setpriv --pdeathsig KILL`` (util-linux) when available, so the
    kernel kills the driver if this process dies without stopping it.  (Not a ``preexec_fn``: running
    Python between fork and exec can deadlock in a process with threads.)"""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", executable] if setpriv else [executable]


def _generated(xml: bytes) -> Message:
    message = parse_message(xml)
    assert isinstance(message, Message)
    return message


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
        self.stdin: Channel[Message] = Channel(DRIVER_BUFFER, f"to {self.label}")
        self.process: asyncio.subprocess.Process | None = None
        self.backoff = Backoff()
        self.restarts = 0
        self.status = "starting"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    def send(self, message: Message) -> None:
        """Queue a message for the driver (dropped, oldest first, if it stops reading)."""
        if self.running:
            self.stdin.put_nowait(message)

    async def start(self) -> None:
        self.stdin = Channel(DRIVER_BUFFER, f"to {self.label}")  # nothing stale for a new process
        self.process = await asyncio.create_subprocess_exec(
            *_command(self.executable), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, start_new_session=True,
        )
        self.status = "running"

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; always reaps the process."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        try:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), STOP_GRACE)
            except asyncio.TimeoutError:
                process.kill()
                await process.wait()
        except ProcessLookupError:
            pass


class DriverPool:
    """The INDI side of a bridge that runs drivers itself (see the module docstring)."""

    what = "drivers"

    def __init__(self, drivers: list[str], max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
                 forward_snoop_requests: bool = False) -> None:
        if not drivers:
            raise ValueError("driverstoredis needs at least one driver executable")
        self.drivers = [DriverProcess(executable) for executable in drivers]
        self.max_message_size = max_message_size
        self.forward_snoop_requests = forward_snoop_requests
        self.router: Router[DriverProcess] = Router()
        self.client_blobs = BlobPolicy()
        self.state = LinkState("drivers")

    # -- status ----------------------------------------------------------------------------
    def _update_state(self) -> None:
        running = [d for d in self.drivers if d.running]
        if len(running) == len(self.drivers):
            self.state.up(f"running {len(running)} drivers: {', '.join(d.label for d in running)}")
        else:
            trouble = "; ".join(f"{d.label} {d.status}" for d in self.drivers if not d.running)
            text = f"{len(running)} of {len(self.drivers)} drivers running; {trouble}"
            if running:
                self.state.connected = True  # the bridge still serves the others
                self.state.text = text
            else:
                self.state.down(text, "no driver running")

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
                log.info("started driver %s (pid %d)", driver.label, driver.process.pid)  # type: ignore[union-attr]
                driver.send(_generated(getproperties_xml()))
                try:
                    await self._serve(driver, inbound)
                except Exception:  # noqa: BLE001 - a fault in serving one driver must not stop the others
                    log.exception("error while serving driver %s; restarting it", driver.label)
                finally:
                    await driver.stop()
                code_text = _exit_text(driver.process.returncode)  # type: ignore[union-attr]
            if time.monotonic() - started > STABLE_RUN:
                driver.backoff.reset()
            delay = driver.backoff.next()
            driver.restarts += 1
            driver.status = f"{code_text}, restarting in {delay:g} s"
            log.warning("driver %s %s; restarting in %g s", driver.label, code_text, delay)
            await self._report_death(driver, code_text, inbound)
            self._update_state()
            await asyncio.sleep(delay)

    async def _report_death(self, driver: DriverProcess, code_text: str, inbound: Channel[InboundItem]) -> None:
        """Delete the driver's devices (delProperty) and say so in a system message that reaches Redis."""
        stamp = indi_timestamp()
        devices = self.router.forget(driver)
        for device in devices:
            gone = _generated(element_xml("delProperty", {"device": device, "timestamp": stamp}))
            await inbound.put(gone)
            self._to_snoopers(gone, None)
        text = f"driver {driver.label} {code_text}; restarting"
        if devices:
            text += f" (devices gone until then: {', '.join(devices)})"
        await inbound.put(_generated(element_xml("message", {"message": text, "timestamp": stamp})))

    async def _serve(self, driver: DriverProcess, inbound: Channel[InboundItem]) -> None:
        process = driver.process
        assert process is not None and process.stdout and process.stderr and process.stdin
        parser = IndiStreamParser(self.max_message_size)

        async def accept(message: Message) -> None:
            await self._from_driver(driver, message, inbound)

        async def wait_exit() -> None:
            await process.wait()

        await run_until_first_done(
            pump_messages(process.stdout, parser, inbound, f"driver {driver.label}", accept),  # type: ignore[arg-type]
            write_messages(process.stdin, driver.stdin),  # type: ignore[arg-type]
            self._log_stderr(driver, process.stderr),  # type: ignore[arg-type]
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
                    driver_log.info("%s: %s", driver.label, text[:2000])

    # -- routing -----------------------------------------------------------------------------
    async def _from_driver(self, driver: DriverProcess, message: Message, inbound: Channel[InboundItem]) -> None:
        tag = message.tag
        if tag == "getProperties":
            await self._snoop_request(driver, message, inbound)
        elif tag == "pingRequest":  # drivers wait for the reply before sending more BLOB data
            driver.send(_generated(element_xml("pingReply", {"uid": message.attrs.get("uid", "")})))
        elif tag == "enableBLOB":
            self.router.set_snoop_blobs(driver, message)
        elif message.action in ("def", "set") or tag in FROM_DRIVER_TAGS:
            self.router.learn(driver, message)
            self.router.drop_snoops(message)
            if self.client_blobs.passes(message):
                await inbound.put(message)
            self._to_snoopers(message, driver)
        else:
            log.warning("driver %s sent <%s>, which drivers do not send; ignored", driver.label, tag)

    async def _snoop_request(self, driver: DriverProcess, message: Message, inbound: Channel[InboundItem]) -> None:
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
        if tag == "enableBLOB":
            self.client_blobs.update(message)
            return
        owner = self.router.owner(message.device) if message.device else None
        if tag == "getProperties" or message.action == "new":
            targets = [owner] if owner is not None else (self.drivers if tag == "getProperties" else [])
            if not targets:
                log.warning("no driver owns device %r; <%s %s> dropped", message.device, tag, message.name)
            for driver in targets:
                driver.send(message)
        elif message.action in ("def", "set") or tag in FROM_DRIVER_TAGS:
            if owner is None:  # snoop data from elsewhere
                self.router.drop_snoops(message)
                self._to_snoopers(message, None)

    def child_pids(self) -> list[int]:
        """Pids of the running drivers (for tests and status)."""
        return [d.process.pid for d in self.drivers if d.running and d.process is not None]

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"DriverPool({[d.label for d in self.drivers]!r})"
