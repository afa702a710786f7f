"""Real servers for the tests: redis-server, mosquitto and indiserver on free loopback ports.

Each class starts the real Debian program as a child process in its own
process group, waits (on a condition, with a timeout) until it accepts
connections, and stops it, children included.
"""

from __future__ import annotations

import getpass
import os
import random
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

#: the test ports: below Linux's ephemeral range (32768-60999 by default), from which the kernel gives
#: every client connection its local port and ``bind(0)`` its port, so that a port handed out here is not
#: taken by some connection before the server it is for binds it
TEST_PORTS = range(20000, 32000)
#: each pytest-xdist worker picks from a slice of its own, so that two workers never pick the same port
_SLICE = 6000
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw") or 0)
_random = random.Random()  # seeded from the system: processes started by tests pick apart


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, picked at random from this worker's
    slice of :data:`TEST_PORTS`."""
    start = TEST_PORTS.start + (_WORKER * _SLICE) % len(TEST_PORTS)
    for _ in range(100):
        port = start + _random.randrange(_SLICE)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise OSError(f"no free port found in {start}-{start + _SLICE - 1}")


def wait_for(
    condition: Callable[[], object], timeout: float = 10.0, interval: float = 0.05, what: str = "condition"
):
    """Poll ``condition`` until it returns something truthy; raise after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # noqa: BLE001 - retried until the deadline
            last_error = exc
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"timed out after {timeout} s waiting for {what}"
                + (f" (last error: {last_error})" if last_error else "")
            )
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """True when something accepts TCP connections on ``host``:``port``."""
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class ServerProcess:
    """A child process in its own session, stopped with its whole process group."""

    program = ""

    def __init__(self, port: int | None = None) -> None:
        if not shutil.which(self.program):
            raise RuntimeError(f"{self.program} is not installed (run `make test`, which installs it)")
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix=f"indiredis-{self.program}-"))
        self.proc: subprocess.Popen[bytes] | None = None

    def command(self) -> Sequence[str]:
        raise NotImplementedError

    def start(self) -> ServerProcess:
        log = open(self.workdir / "output.log", "ab")
        self.proc = subprocess.Popen(
            list(self.command()),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            start_new_session=True,
        )
        log.close()
        wait_for(lambda: port_open(self.port), timeout=15, what=f"{self.program} on port {self.port}")
        return self

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Stop the process group (SIGKILL by default, as a crash would)."""
        if self.proc and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        wait_for(
            lambda: not port_open(self.port), timeout=10, what=f"{self.program} to release port {self.port}"
        )

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> None:
        self.kill()
        self.start()

    def output(self) -> str:
        return (self.workdir / "output.log").read_text(errors="replace")

    def __enter__(self) -> ServerProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


class RedisProcess(ServerProcess):
    """redis-server on 127.0.0.1 with no persistence (a restart comes back empty)."""

    program = "redis-server"

    def __init__(self, port: int | None = None, extra: Sequence[str] = ()) -> None:
        super().__init__(port)
        self.extra = list(extra)

    def command(self) -> Sequence[str]:
        return [
            "redis-server",
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self.workdir),
            *self.extra,
        ]


class MosquittoProcess(ServerProcess):
    """mosquitto in its default configuration (``mosquitto -p PORT``: loopback only, anonymous,
    no persistence, at most 1 000 queued messages per client), as Debian installs it.

    ``extra_config`` or ``anonymous=False`` write a configuration file instead, with only a
    loopback listener, the user to run as and what is given.
    """

    program = "mosquitto"

    def __init__(self, port: int | None = None, extra_config: str = "", anonymous: bool = True) -> None:
        super().__init__(port)
        self.extra_config = extra_config
        self.anonymous = anonymous

    def command(self) -> Sequence[str]:
        if not self.extra_config and self.anonymous:
            return ["mosquitto", "-p", str(self.port)]
        conf = self.workdir / "mosquitto.conf"
        conf.write_text(
            # "user": mosquitto started as root would switch to the mosquitto user, which cannot read test
            # files
            f"user {getpass.getuser()}\n"
            f"listener {self.port} 127.0.0.1\nallow_anonymous {str(self.anonymous).lower()}\n"
            f"{self.extra_config}\n"
        )
        return ["mosquitto", "-c", str(conf)]


class IndiServerProcess(ServerProcess):
    """indiserver running the given drivers (Debian's indi-bin simulators by default)."""

    program = "indiserver"

    def __init__(
        self,
        drivers: Sequence[str] = ("indi_simulator_telescope", "indi_simulator_ccd"),
        port: int | None = None,
    ) -> None:
        super().__init__(port)
        self.drivers = list(drivers)

    def command(self) -> Sequence[str]:
        return [
            "indiserver",
            "-p",
            str(self.port),
            "-u",
            str(self.workdir / "indiserver.sock"),
            "-r",
            "0",
            *self.drivers,
        ]
