"""One driver executable as a child process: its command line, its stdin queue, starting and stopping it.

No routing and no policy here: :mod:`.supervisor` decides when a driver starts again, :mod:`.drivers`
what its messages are for.
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ...core.channel import Channel
from ...core.tasks import cancel_and_wait
from ...errors import DriverMissing
from ...events import Event, journal_fields
from ...protocol.messages import Message
from .manager import STDERR_LINES, DriverReport, DriverState, driver_key

log = logging.getLogger("indiredis.links.indi_side.drivers")  # the pool's logger, as before the split

STOP_GRACE = 3.0  # seconds between SIGTERM and SIGKILL at shutdown
DRIVER_BUFFER = 1000  # messages queued for one driver's stdin


def _command(executable: str) -> list[str]:
    """The driver's command line: under ``setpriv --pdeathsig KILL`` (util-linux) when available, so the
    kernel kills the driver if this process dies without stopping it.  (Not a ``preexec_fn``: running
    Python between fork and exec can deadlock in a process with threads.)"""
    path = shutil.which(executable)
    if path is None:  # said here: under setpriv it would only be an exit status
        raise DriverMissing(errno.ENOENT, "no such executable on PATH", executable)
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "KILL", "--", path] if setpriv else [path]


def exit_text(code: int | None) -> str:
    """How a process ended, in words ("exit status 1", "killed by SIGSEGV")."""
    if code is None:
        return "still running"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit status {code}"


@dataclass(frozen=True)
class Phase:
    """What a driver is doing (its :class:`DriverState`, as the Driver Manager shows it) and the words the
    bridge's status gives it ("exit status 1, restarting in 2 s"): one value, so they never disagree."""

    state: DriverState
    text: str


class DriverProcess:
    """One driver executable: its process, its stdin queue, its restarts and what the manager shows."""

    def __init__(self, executable: str, key: str = "") -> None:
        self.executable = executable
        self.label = Path(executable).name
        self.fields = journal_fields(link="driver", driver=self.label)  # for its log lines
        self.key = key or driver_key(self.label)
        self.stdin: Channel[Message] = Channel(DRIVER_BUFFER, f"to {self.label}")
        self.process: asyncio.subprocess.Process | None = None
        self.restarts = 0
        self.phase = Phase(DriverState.RESTARTING, "starting")  # until the first start
        self.busy = False  # a client's action on it is under way
        self.last_exit = ""
        self.last_exit_time = ""
        self.stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES)

    @property
    def state(self) -> DriverState:
        """What the driver is doing (the state of :attr:`phase`)."""
        return self.phase.state

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
        return self.process

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL to the driver's process group after a grace period; reaps the process.

        The driver's output is read and discarded meanwhile: asyncio reports a process as finished
        only once its pipes have reached end of file, and a pipe nobody reads (the serving tasks are
        gone by now) fills up and is never read to its end.  Cancelled meanwhile, it kills the group
        and waits (a grace period at most) for the process to be reaped, then cancels what it started:
        nothing of it is left pending when the event loop closes.
        """
        process = self.process
        if process is None or process.returncode is not None:
            return
        waiter = asyncio.ensure_future(process.wait())  # one waiter, cancelled if stop() is
        drains: list[asyncio.Future[Any]] = [
            asyncio.ensure_future(_discard(stream)) for stream in (process.stdout, process.stderr) if stream
        ]
        try:
            _signal(process, signal.SIGTERM)
            if not await _ended(waiter):
                _signal(process, signal.SIGKILL)  # the whole group: nothing left holding the pipes
                if not await _ended(waiter):
                    log.error(
                        "driver %s (pid %d) did not end after SIGKILL; leaving it",
                        self.label,
                        process.pid,
                        extra=self.fields,
                    )
        finally:
            await _reap_on_cancel(process, waiter)
            await cancel_and_wait([waiter, *drains])


class CrashCount:
    """The times of a driver's recent crashes, to count them within a window."""

    def __init__(self) -> None:
        self.times: collections.deque[float] = collections.deque()  # monotonic times

    def add(self, window: float) -> int:
        """Note a crash now; the number of crashes within the last ``window`` seconds, this one included."""
        now = time.monotonic()
        self.times.append(now)
        while self.times and self.times[0] < now - window:
            self.times.popleft()
        return len(self.times)

    def clear(self) -> None:
        self.times.clear()


async def _ended(waiter: asyncio.Future[int]) -> bool:
    """Whether the process ``waiter`` waits for ended within :data:`STOP_GRACE` seconds (the waiter
    goes on waiting otherwise)."""
    done, _ = await asyncio.wait([waiter], timeout=STOP_GRACE)
    return bool(done)


async def _reap_on_cancel(process: asyncio.subprocess.Process, waiter: asyncio.Future[int]) -> None:
    """The stop was cut short (cancelled) before the process ended: kill its group and give it a grace
    period to be reaped, so that its transport closes before the event loop does."""
    if waiter.done() or process.returncode is not None:
        return
    _signal(process, signal.SIGKILL)
    await asyncio.wait([waiter], timeout=STOP_GRACE)


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
