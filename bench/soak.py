#!/usr/bin/env python3
"""Soak bench: weeks of an observatory's use compressed into minutes, with faults, and every frame counted.

    sudo .venv/bin/python bench/soak.py [--chain inditoredis|mqtt|all] [--minutes 20] [--viewers 3]

Real programs, each a process of its own: indiserver with ``indi_simulator_ccd`` and
``indi_simulator_telescope``, redis-server, mosquitto (default configuration), the bridges of one
chain at a time run as the services run (``indiredis-<service> --config <ini>``: ``inditoredis``;
or ``inditomqtt`` -> ``mqtttoredis``), and ``indiredis-web`` polled by a few logged-in viewers.
``--chain all`` runs each chain for ``--minutes``.  Needs root: the blob folder is on a small tmpfs
the bench mounts (and unmounts, whatever happens) itself.

The bench's own INDI client keeps the CCD exposing (binning 4x4, alternating bursts of 0.05 s
exposures and exposures of 0.1-0.5 s; it reconnects the CCD when its driver comes back), keeps the
mount tracking and slews it now and then.  Every ``--fault-every`` seconds (by default a fifth of
the run, at most 3 minutes) it injects the next fault, cycling:

- ``redis``: redis-server killed (SIGKILL) and restarted empty on its port;
- ``broker``: mosquitto killed and restarted (mqtt chain only);
- ``driver``: ``indi_simulator_ccd`` killed with SIGKILL (indiserver restarts it);
- ``disk``: the blob folder's filesystem kept full by another file (what the bridge frees is taken
  again within 0.1 s, as by a disk filled by something else), then that file removed;
- ``clock``: the wall clock seen by the bridges stepped back an hour, held, then forward again
  (``bench/soakclock.py``: their ``time.time()`` and ``datetime.now()``; the kernel's file times and
  the monotonic clock are not touched, nor the drivers' clocks).

Counting frames
---------------
*Reported*: every ``setBLOBVector`` of the CCD's ``CCD1`` that indiserver sends to a separate plain
INDI client of the bench (``enableBLOB Also``), its decoded (and, for ``.z``, decompressed) bytes
hashed with SHA-256.

*Stored*: the blob folder is watched with inotify.  Every temporary file is opened as soon as it is
created, so its inode (its bytes) stays readable whatever happens to its name later; a name that
appears in the folder (renamed or linked into place, or created directly) is a *version* of that
name, hashed from the held descriptor a second after it appeared (a file created under its final
name and written there: once closed).  The watch runs in a process of its own at a higher
priority; when it could not open a temporary file before its rename (it then opens the final name),
it notices whether that name was replaced or removed first and prints those counts (the accounting
is exact when they are 0).  A version ends *deleted*
(unlinked: retention or the free-space policy removed it after it was stored), *overwritten*
(another file renamed over the name: its bytes were never kept anywhere) or *present* at the end.

A reported frame is **stored** when a version with its bytes ended deleted or present; it is
**overwritten** (lost) when its bytes only ever existed under a name that was later replaced; it is
**missing** (lost) when no file in the folder ever held its bytes.  A frame reported while the disk
was full (from filling until 10 s after the next frame stored once it was freed) and missing is
**refused**, to be compared with what the bridge's log says it refused.  *Lost* = overwritten
(in any phase) + missing outside the full-disk phase; printed per phase (steady, or the fault it
was reported in, up to 10 s after the next frame stored once the part recovered).
Stored files whose bytes the driver never reported are printed too (wrong bytes).  Frames reported
in the first seconds, before the chain stored its first frame, and after the exposures stop are not
counted.

Printed per chain: those counts; RSS of every bridge process at start (after warm-up), middle and
end; open descriptors at start and end; the blob folder's high-water (bytes of its files, sampled
every 0.25 s) against its bound (``blob_keep_mb``, or the filesystem size less ``blob_min_free_mb``
when smaller and the bridge accepts that key, plus two frames in flight); log lines per minute in
steady state (between faults); the
viewers' answers; how often the store's ``filepath`` of CCD1 named a missing file; the bridges'
warning and error lines grouped by kind; and the faults with their recovery times.

The bridges get ``blob_keep_mb`` (``--keep-mb``) and ``blob_min_free_mb`` (``--min-free-mb``); a
bridge whose ``--check`` refuses ``blob_min_free_mb`` (a version without it) runs without it, with a
printed note.  A bridge that exits is restarted, as systemd would, and counted.  Exit status 0 when
no frame was lost, no file held bytes the driver never sent, the folder stayed within its bound and
the store never named a missing file; 1 otherwise; 130 when interrupted.  Ctrl-C or SIGTERM stop
everything the bench started and unmount its tmpfs.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import errno
import hashlib
import http.client
import multiprocessing
import os
import random
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode
from xml.etree import ElementTree

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from tests.support.bridgeprocess import BridgeProcess  # noqa: E402
from tests.support.notifysocket import NotifySocket  # noqa: E402
from tests.support.servers import (  # noqa: E402
    IndiServerProcess,
    MosquittoProcess,
    RedisProcess,
    free_port,
    port_open,
    wait_for,
)

CCD = "CCD Simulator"
MOUNT = "Telescope Simulator"
PASSWORD = "soak bench password"
GRACE = 10.0  # seconds after a fault's recovery still counted in its phase
SCRIPTS = Path(sys.executable).parent

# --------------------------------------------------------------------------------------------------
# a plain INDI client (no indiredis code: the reference the bridges are measured against)


class IndiConnection:
    """A blocking connection to indiserver yielding each top-level INDI element once it has ended."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.sock.settimeout(0.2)
        self.parser = ElementTree.XMLPullParser(events=("start", "end"))
        self.parser.feed(b"<stream>")
        self.depth = 0
        self.root: ElementTree.Element | None = None
        self.lock = threading.Lock()

    def send(self, xml: str) -> None:
        with self.lock:
            self.sock.sendall(xml.encode())

    def receive(self) -> list[ElementTree.Element]:
        """The elements completed by what arrived within 0.2 s ([] if nothing)."""
        try:
            data = self.sock.recv(1 << 20)
        except TimeoutError:
            return []
        if not data:
            raise ConnectionError("indiserver closed the connection")
        self.parser.feed(data)
        done = []
        for event, element in self.parser.read_events():
            if event == "start":
                self.depth += 1
                if self.depth == 1:
                    self.root = element
            else:
                self.depth -= 1
                if self.depth == 1:
                    done.append(element)
        if done and self.root is not None:
            self.root.clear()
        return done

    def close(self) -> None:
        self.sock.close()


@dataclass
class Frame:
    """One CCD1 BLOB as the driver sent it."""

    at: float  # monotonic
    digest: str
    size: int


class IndiClientThread(threading.Thread):
    """An INDI client of indiserver in a thread of its own, connected again whenever it loses the
    connection (indiserver restarted, a driver killed), until :attr:`stopping` is set."""

    def __init__(self, port: int, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.port = port
        self.stopping = threading.Event()
        self.errors: list[str] = []

    def run(self) -> None:
        while not self.stopping.is_set():
            try:
                conn = IndiConnection(self.port)
            except OSError:
                time.sleep(0.5)
                continue
            try:
                self.hello(conn)
                while not self.stopping.is_set():
                    for element in conn.receive():
                        self.handle(conn, element)
                    self.tick(conn)
            except (OSError, ConnectionError, ElementTree.ParseError) as exc:
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                conn.close()

    def hello(self, conn: IndiConnection) -> None:
        """What the client says first on each connection."""
        conn.send('<getProperties version="1.7"/>')

    def handle(self, conn: IndiConnection, element: ElementTree.Element) -> None:
        """One INDI message received."""

    def tick(self, conn: IndiConnection) -> None:
        """After each read (at least every read timeout)."""


class FrameCounter(IndiClientThread):
    """Counts and hashes every CCD1 frame indiserver sends (``enableBLOB Also``)."""

    def __init__(self, port: int) -> None:
        super().__init__(port, "frame-counter")
        self.frames: list[Frame] = []

    def hello(self, conn: IndiConnection) -> None:
        super().hello(conn)
        conn.send(f'<enableBLOB device="{CCD}">Also</enableBLOB>')

    def handle(self, conn: IndiConnection, element: ElementTree.Element) -> None:
        if element.get("device") != CCD:
            return
        if element.tag == "defBLOBVector":
            conn.send(f'<enableBLOB device="{CCD}">Also</enableBLOB>')
        if element.tag != "setBLOBVector" or element.get("name") != "CCD1":
            return
        for blob in element:
            data = base64.b64decode("".join((blob.text or "").split()))
            if blob.get("format", "").endswith(".z"):
                data = zlib.decompress(data)
            self.frames.append(Frame(time.monotonic(), hashlib.sha256(data).hexdigest(), len(data)))


class Controller(IndiClientThread):
    """Keeps the CCD exposing and the mount tracking, as an observer's INDI client would."""

    def __init__(self, port: int) -> None:
        super().__init__(port, "controller")
        self.exposing = threading.Event()
        self.exposing.set()
        self.requested = 0.0  # monotonic time of the last exposure request (0: none running)
        self.exposure = 0.05
        self.requests = 0
        self.next_slew = time.monotonic() + 20

    @staticmethod
    def switch(device: str, name: str, on: str, off: str) -> str:
        return (
            f'<newSwitchVector device="{device}" name="{name}"><oneSwitch name="{on}">On</oneSwitch>'
            f'<oneSwitch name="{off}">Off</oneSwitch></newSwitchVector>'
        )

    @staticmethod
    def number(device: str, name: str, values: dict[str, float]) -> str:
        ones = "".join(f'<oneNumber name="{k}">{v}</oneNumber>' for k, v in values.items())
        return f'<newNumberVector device="{device}" name="{name}">{ones}</newNumberVector>'

    def handle(self, conn: IndiConnection, element: ElementTree.Element) -> None:
        device, name, tag = element.get("device"), element.get("name"), element.tag
        values = {one.get("name"): (one.text or "").strip() for one in element}
        if name == "CONNECTION" and values.get("CONNECT") == "Off" and device in (CCD, MOUNT):
            conn.send(self.switch(device, "CONNECTION", "CONNECT", "DISCONNECT"))
        elif device == CCD and name == "CCD_BINNING" and tag == "defNumberVector":
            conn.send(self.number(CCD, "CCD_BINNING", {"HOR_BIN": 4, "VER_BIN": 4}))
        elif device == CCD and name == "CCD_EXPOSURE":
            if tag == "defNumberVector" or element.get("state") in ("Ok", "Idle", "Alert"):
                self.requested = 0.0  # ready for the next one
        elif device == MOUNT and name == "TELESCOPE_PARK" and tag == "defSwitchVector":
            conn.send(self.switch(MOUNT, "TELESCOPE_PARK", "UNPARK", "PARK"))
        elif device == MOUNT and name == "TELESCOPE_TRACK_STATE" and values.get("TRACK_ON") == "Off":
            conn.send(self.switch(MOUNT, "TELESCOPE_TRACK_STATE", "TRACK_ON", "TRACK_OFF"))

    def tick(self, conn: IndiConnection) -> None:
        now = time.monotonic()
        stuck = self.requested and now - self.requested > self.exposure + 15
        if self.exposing.is_set() and (not self.requested or stuck):
            # bursts of the shortest exposures (several frames a second), then longer ones
            self.exposure = 0.05 if int(now / 20) % 2 == 0 else round(random.uniform(0.1, 0.5), 2)
            conn.send(self.number(CCD, "CCD_EXPOSURE", {"CCD_EXPOSURE_VALUE": self.exposure}))
            self.requested, self.requests = now, self.requests + 1
        if now > self.next_slew:
            self.next_slew = now + 30
            conn.send(self.switch(MOUNT, "ON_COORD_SET", "TRACK", "SLEW"))
            conn.send(
                self.number(
                    MOUNT,
                    "EQUATORIAL_EOD_COORD",
                    {"RA": random.uniform(0, 24), "DEC": random.uniform(-10, 80)},
                )
            )


# --------------------------------------------------------------------------------------------------
# the blob folder, watched with inotify

IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE, IN_Q_OVERFLOW = (
    0x8,
    0x40,
    0x80,
    0x100,
    0x200,
    0x4000,
)
EVENT = struct.Struct("iIII")


@dataclass
class Version:
    """One file that appeared under a name in the blob folder."""

    name: str
    fd: int
    ino: int
    appeared: float
    digest: str = ""  # '' while not hashed, or when its bytes could not be seen (unseen)
    size: int = 0
    end: str = "present"  # deleted, overwritten or present
    unseen: bool = False
    in_place: bool = False  # created under its name (not renamed or linked there): hashed once closed
    closed: bool = False


class FolderWatch:
    """Every version of every file in the blob folder, with its bytes' hash (see the module docstring).

    Runs in a process of its own (forked, at a higher priority) so that it opens each new file as
    soon as inotify reports it, whatever the bench's other threads do; :meth:`collect` stops it
    and returns what it saw."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        context = multiprocessing.get_context("fork")
        self.count = context.Value("i", 0)  # versions so far
        self.stopping = context.Event()
        self.receiver, self.sender = context.Pipe(duplex=False)
        self.process = context.Process(target=self._main, daemon=True, name="folder-watch")
        self.held: dict[str, int] = {}  # temporary name -> descriptor of its inode
        self.moving: dict[int, int] = {}  # rename cookie -> descriptor
        self.current: dict[str, Version] = {}
        self.versions: list[Version] = []
        self.unhashed: list[Version] = []
        self.overflows = self.late = self.vanished = 0

    def start(self) -> None:
        self.process.start()

    def collect(self) -> None:
        """Stop the watching process and take its versions and counts."""
        self.stopping.set()
        deadline = time.monotonic() + 60
        while self.process.is_alive() and time.monotonic() < deadline and not self.receiver.poll(0.2):
            pass
        if self.receiver.poll(0):
            self.versions, self.overflows, self.late, self.vanished = self.receiver.recv()
        self.process.join(10)
        if self.process.is_alive():
            self.process.kill()

    def _open(self, name: str) -> int | None:
        try:
            return os.open(self.folder / name, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None

    def _main(self) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the bench stops it (Ctrl-C reaches the group)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        parent = os.getppid()
        try:
            os.nice(-10)
        except OSError:
            pass
        libc = ctypes.CDLL(None, use_errno=True)
        inotify = libc.inotify_init1(os.O_CLOEXEC)
        if inotify < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        mask = IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
        if libc.inotify_add_watch(inotify, str(self.folder).encode(), mask) < 0:
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {self.folder}")
        while not self.stopping.is_set() and os.getppid() == parent:
            ready, _, _ = select.select([inotify], [], [], 0.1)
            if ready:
                data = os.read(inotify, 1 << 16)
                offset = 0
                while offset < len(data):
                    _wd, event_mask, cookie, length = EVENT.unpack_from(data, offset)
                    raw = data[offset + EVENT.size : offset + EVENT.size + length]
                    offset += EVENT.size + length
                    self.event(event_mask, cookie, raw.split(b"\0", 1)[0].decode(errors="replace"))
                self.count.value = len(self.versions)
            self.hash_due(time.monotonic() - 1.0)
        self.hash_due(float("inf"))
        for version in self.versions:
            version.fd = -1
        self.sender.send((self.versions, self.overflows, self.late, self.vanished))

    def event(self, mask: int, cookie: int, name: str) -> None:
        if mask & IN_Q_OVERFLOW:
            self.overflows += 1
            return
        temporary = name.startswith(".")
        if mask & IN_CREATE:
            fd = self._open(name)
            if fd is None:
                self.vanished += not temporary
                return
            if temporary:
                self.held[name] = fd
            else:
                self.bind(name, fd).in_place = os.fstat(fd).st_nlink == 1
        elif mask & IN_CLOSE_WRITE:
            if name in self.current:
                self.current[name].closed = True
        elif mask & IN_MOVED_FROM:
            fd = self.held.pop(name, None)
            if fd is not None:
                self.moving[cookie] = fd
            elif name in self.current:  # a stored file renamed away: its version ends
                self.finish(name, "deleted")
        elif mask & IN_MOVED_TO:
            fd = self.moving.pop(cookie, None)
            if temporary:
                if fd is not None:
                    self.held[name] = fd
                return
            if fd is None:
                fd = self._open(name)  # its temporary file was renamed before it could be opened
                self.late += 1
                if fd is None:
                    self.vanished += 1
                    return
            self.bind(name, fd)
        elif mask & IN_DELETE:
            if temporary:
                fd = self.held.pop(name, None)
                if fd is not None:
                    os.close(fd)
            elif name in self.current:
                self.finish(name, "deleted")

    def bind(self, name: str, fd: int) -> Version:
        ino = os.fstat(fd).st_ino
        previous = self.current.get(name)
        if previous is not None:
            self.finish(name, "overwritten")
            if previous.ino == ino:  # opened late: it holds the newer file, its own bytes were never seen
                previous.unseen = True
        version = Version(name, fd, ino, time.monotonic())
        self.current[name] = version
        self.versions.append(version)
        self.unhashed.append(version)
        return version

    def finish(self, name: str, end: str) -> None:
        self.current.pop(name).end = end

    def hash_due(self, before: float) -> None:
        keep = []
        for version in self.unhashed:
            waiting = version.in_place and not version.closed and version.appeared > before - 9
            if version.appeared > before or waiting:
                keep.append(version)
                continue
            if not version.unseen:
                digest = hashlib.sha256()
                position = 0
                while chunk := os.pread(version.fd, 1 << 20, position):
                    digest.update(chunk)
                    position += len(chunk)
                version.digest, version.size = digest.hexdigest(), position
            os.close(version.fd)
        self.unhashed = keep


class FolderSampler(threading.Thread):
    """The blob folder's bytes (its files, temporary ones included) every 0.25 s: the high-water; and
    whether the file the store's ``filepath`` of CCD1 names exists (a dangling pointer)."""

    def __init__(self, folder: Path) -> None:
        super().__init__(daemon=True, name="folder-sampler")
        self.folder = folder
        self.high = 0
        self.checks = self.dangling = 0
        self.redis_port = 0
        self.stopping = threading.Event()

    def pointer(self) -> None:
        import redis

        import indiredis
        from indiredis import tools

        if not self.redis_port:
            return
        try:
            rconn = redis.Redis(host="127.0.0.1", port=self.redis_port, socket_timeout=2)
            server = indiredis.redis_server("127.0.0.1", self.redis_port)

            def filepath() -> str:
                return tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD).get("filepath", "")

            path = filepath()
            if path:
                self.checks += 1
                # a file missing while the key still names it after a second look is dangling (not a
                # key read just before a newer frame's file replaced it)
                if not os.path.exists(path) and filepath() == path and not os.path.exists(path):
                    self.dangling += 1
            rconn.close()
        except redis.RedisError:
            return

    def run(self) -> None:
        tick = 0
        while not self.stopping.wait(0.25):
            tick += 1
            if tick % 4 == 0:
                self.pointer()
            total = 0
            try:
                with os.scandir(self.folder) as entries:
                    for entry in entries:
                        try:
                            total += entry.stat(follow_symlinks=False).st_size
                        except FileNotFoundError:
                            pass
            except FileNotFoundError:
                continue
            self.high = max(self.high, total)


# --------------------------------------------------------------------------------------------------
# processes


class SoakIndiServer(IndiServerProcess):
    """indiserver that restarts a driver that dies (the tests' one is started with ``-r 0``)."""

    def command(self) -> list[str]:
        command = list(super().command())
        command[command.index("-r") + 1] = "1000"
        return command


class SoakBridge(BridgeProcess):
    """A bridge daemon with the bench's INI, its wall clock steppable (``bench/soakclock.py``)."""

    def __init__(self, service: str, ini: str, workdir: Path, clock_file: Path) -> None:
        factory = f"make_{service}"
        super().__init__(factory, {}, workdir)
        self.ini, self.clock_file = ini, clock_file
        self.restarts = 0

    def write_config(self) -> Path:
        path = self.folder / f"{self.service}.ini"
        path.write_text(self.ini)
        return path

    def check(self) -> str:
        """The error ``--check`` gives for the configuration ('' when it passes)."""
        config = self.write_config()
        done = subprocess.run(
            [str(SCRIPTS / f"indiredis-{self.service}"), "--config", str(config), "--check"],
            capture_output=True,
            text=True,
        )
        return "" if done.returncode == 0 else (done.stderr or done.stdout).strip()

    def start(self) -> SoakBridge:
        config = self.write_config()
        self.notify = NotifySocket(self.folder)
        env = {**self.env, "NOTIFY_SOCKET": str(self.notify.path), "WATCHDOG_USEC": "10000000"}
        command = [sys.executable, str(ROOT / "bench" / "soakclock.py"), str(self.clock_file)]
        command += [str(SCRIPTS / f"indiredis-{self.service}"), "--config", str(config)]
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return self

    def log_lines(self) -> int:
        try:
            with open(self.log_path, "rb") as handle:
                return sum(1 for _ in handle)
        except OSError:
            return 0


def rss_mib(pid: int) -> float:
    """Resident memory now (VmRSS), MiB; NaN when the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def open_fds(pid: int) -> int:
    """Open file descriptors of a process (-1 when it is gone)."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def child_pid(parent: int, program: str) -> int | None:
    """The pid of ``parent``'s child running ``program``."""
    try:
        children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    except OSError:
        return None
    for pid in children:
        try:  # argv[0], not comm: comm is cut to 15 characters ("indi_simulator_" is every simulator)
            argv0 = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0", 1)[0].decode()
        except OSError:
            continue
        if Path(argv0).name == program:
            return int(pid)
    return None


class Viewers(threading.Thread):
    """A few logged-in web viewers polling the CCD's and the mount's device JSON every second."""

    def __init__(self, port: int, count: int) -> None:
        super().__init__(daemon=True, name="viewers")
        self.port, self.count = port, count
        self.answers = self.errors = 0
        self.failures: list[tuple[float, str]] = []  #: (monotonic time, status line or exception)
        self.stopping = threading.Event()

    def log_in(self) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        body = urlencode({"user": "soak", "password": PASSWORD})
        connection.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
        answer = connection.getresponse()
        answer.read()
        connection.close()
        return (answer.getheader("Set-Cookie") or "").split(";", 1)[0]

    def viewer(self) -> None:
        cookie = ""
        while not self.stopping.wait(1.0):
            try:
                cookie = cookie or self.log_in()
                for device in (CCD, MOUNT):
                    connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
                    connection.request(
                        "GET", f"/api/device/{quote(device, safe='')}", headers={"Cookie": cookie}
                    )
                    answer = connection.getresponse()
                    answer.read()
                    connection.close()
                    if answer.status == 200:
                        self.answers += 1
                    else:
                        self.errors += 1
                        self.failures.append((time.monotonic(), f"{answer.status} {answer.reason}"))
                        cookie = ""  # a session lost (Redis restarted empty): log in again first
                        break
            except (OSError, http.client.HTTPException) as exc:
                self.errors += 1
                self.failures.append((time.monotonic(), type(exc).__name__))

    def run(self) -> None:
        threads = [threading.Thread(target=self.viewer, daemon=True) for _ in range(self.count)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


# --------------------------------------------------------------------------------------------------
# one chain


@dataclass
class Fault:
    kind: str
    started: float
    recovered: float = 0.0  # monotonic: the part is back (or the disk freed, the clock restored)
    resumed: float = 0.0  # monotonic: the next frame stored after recovery
    note: str = ""

    def window(self) -> tuple[float, float]:
        end = self.recovered or self.started
        return self.started, max(end, self.resumed) + GRACE


@dataclass
class Chain:
    name: str
    services: list[str]
    workdir: Path
    blobfs: Path
    args: argparse.Namespace
    redis: RedisProcess = field(init=False)
    broker: MosquittoProcess | None = field(init=False, default=None)
    indi: SoakIndiServer = field(init=False)
    bridges: list[SoakBridge] = field(init=False, default_factory=list)
    web: subprocess.Popen[bytes] | None = field(init=False, default=None)
    notes: list[str] = field(init=False, default_factory=list)
    problems: list[str] = field(init=False, default_factory=list)
    faults: list[Fault] = field(init=False, default_factory=list)
    min_free_accepted: bool = field(init=False, default=False)

    @property
    def blobs(self) -> Path:
        return self.blobfs / "blobs"

    def ini(self, service: str, min_free: bool) -> str:
        sections = {"service": {"log_level": "info"}}
        if service in ("inditoredis", "mqtttoredis"):
            sections["service"].update(
                blob_folder=str(self.blobs), blob_keep_mb=str(self.args.keep_mb), max_blob_size="104857600"
            )
            if min_free:
                sections["service"]["blob_min_free_mb"] = str(self.args.min_free_mb)
        if service in ("inditomqtt", "mqtttoredis"):
            sections["service"]["mqtt_id"] = f"soak-{service}"  # each its own MQTT client id
            assert self.broker is not None
            sections["mqtt"] = {"host": "127.0.0.1", "port": str(self.broker.port)}
        if service in ("inditoredis", "inditomqtt"):
            sections["indi"] = {"host": "127.0.0.1", "port": str(self.indi.port)}
        if service in ("inditoredis", "mqtttoredis"):
            sections["redis"] = {"host": "127.0.0.1", "port": str(self.redis.port)}
        return "".join(
            f"[{section}]\n" + "".join(f"{key} = {value}\n" for key, value in keys.items())
            for section, keys in sections.items()
        )

    def start(self, clock_file: Path) -> None:
        self.redis = RedisProcess().start()
        if "mqtttoredis" in self.services:
            self.broker = MosquittoProcess().start()
        self.indi = SoakIndiServer().start()
        for service in self.services:
            bridge = SoakBridge(service, self.ini(service, True), self.workdir, clock_file)
            if service.endswith("toredis"):
                problem = bridge.check()
                if problem and "blob_min_free_mb" in problem:
                    self.note_once(
                        f"{service} rejects blob_min_free_mb ({problem.splitlines()[-1]}); left out"
                    )
                    bridge.ini = self.ini(service, False)
                    problem = bridge.check()
                elif not problem:
                    self.min_free_accepted = True
                if problem:
                    raise RuntimeError(f"{service} --check: {problem}")
            self.bridges.append(bridge.start())
        self.start_web()

    def note_once(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def start_web(self) -> None:
        from indiredis.indiwsgi.auth import hash_password

        folder = self.workdir / "web"
        folder.mkdir()
        self.web_port = free_port()
        (folder / "web.ini").write_text(
            f"[service]\nlisten_host = 127.0.0.1\nlisten_port = {self.web_port}\nblob_folder = {self.blobs}\n"
            f"[redis]\nhost = 127.0.0.1\nport = {self.redis.port}\n"
            f"[users]\nsoak = observer:{hash_password(PASSWORD)}\n"
        )
        with open(folder / "web.log", "ab") as log:
            self.web = subprocess.Popen(
                [str(SCRIPTS / "indiredis-web"), "--config", str(folder / "web.ini")],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for(lambda: port_open(self.web_port), timeout=30, what="indiredis-web")

    def keep_alive(self) -> None:
        """Restart a bridge that exited, as systemd's Restart= would, and say so."""
        for bridge in self.bridges:
            if bridge.proc is not None and bridge.proc.poll() is not None:
                self.problems.append(
                    f"{bridge.service} exited with status {bridge.proc.returncode}; restarted"
                )
                if bridge.notify:
                    bridge.notify.close()
                bridge.restarts += 1
                bridge.start()

    def stop(self) -> None:
        for bridge in self.bridges:
            try:
                bridge.stop()
            except Exception as exc:  # noqa: BLE001 - go on stopping the rest
                print(f"  (stopping {bridge.service}: {exc})")
        if self.web and self.web.poll() is None:
            self.web.terminate()
            try:
                self.web.wait(10)
            except subprocess.TimeoutExpired:
                self.web.kill()
        for server in (getattr(self, "indi", None), self.broker, getattr(self, "redis", None)):
            if server is not None:
                try:
                    server.__exit__()
                except Exception as exc:  # noqa: BLE001
                    print(f"  (stopping {server.program}: {exc})")


def fill_disk(filler: Path, seconds: float) -> int:
    """Keep the blob folder's filesystem full for ``seconds`` with another file (``filler``), as a disk
    filled by something else: whatever space the bridge frees is taken again within 0.1 s.  The
    filler's largest size in bytes."""
    until = time.monotonic() + seconds
    with open(filler, "ab", buffering=0) as handle:
        while True:
            chunk = b"\0" * (1 << 20)
            while True:
                try:
                    handle.write(chunk)
                except OSError as exc:
                    if exc.errno != errno.ENOSPC:
                        raise
                    if len(chunk) == 1:
                        break
                    chunk = chunk[: len(chunk) // 16] or b"\0"
            if time.monotonic() >= until:
                return handle.tell()
            time.sleep(0.1)


def run_chain(name: str, services: list[str], args: argparse.Namespace, workdir: Path) -> bool:
    """Run one chain for ``args.minutes`` with faults, print its figures; True when nothing was lost."""
    blobfs = workdir / "blobfs"
    blobfs.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={args.tmpfs_mb}m,mode=0755", f"soak-{name}", str(blobfs)],
        check=True,
    )
    clock_file = workdir / "clock-offset"
    clock_file.write_text("0\n")
    chain = Chain(name, services, workdir, blobfs, args)
    chain.blobs.mkdir()
    watch = FolderWatch(chain.blobs)
    sampler = FolderSampler(chain.blobs)
    counter = controller = viewers = None
    filler: Path | None = None
    try:
        watch.start()
        sampler.start()
        chain.start(clock_file)
        sampler.redis_port = chain.redis.port
        counter, controller = FrameCounter(chain.indi.port), Controller(chain.indi.port)
        counter.start()
        controller.start()
        viewers = Viewers(chain.web_port, args.viewers)
        viewers.start()
        wait_for(lambda: watch.count.value, timeout=90, interval=0.2, what="the first stored frame")
        time.sleep(3)  # warm-up: the first frames, the bridges' start-up allocations
        t0 = time.monotonic()
        duration = args.minutes * 60
        kinds = [k for k in args.faults.split(",") if k != "broker" or chain.broker] or ["redis"]
        every = args.fault_every or min(180.0, duration / (len(kinds) + 1))
        hold = min(30.0, every / 3)
        start = {b.service: (rss_mib(b.proc.pid), open_fds(b.proc.pid)) for b in chain.bridges if b.proc}
        middle: dict[str, float] = {}
        steady: list[tuple[float, float, dict[str, int]]] = []  # (from, to, log lines at from)
        mark = (t0, {b.service: b.log_lines() for b in chain.bridges})
        next_fault, index = t0 + every, 0
        print(f"\n== {name}: {' -> '.join(services)}, {args.minutes:g} min, a fault every {every:.0f} s")
        while time.monotonic() < t0 + duration:
            time.sleep(0.5)
            chain.keep_alive()
            now = time.monotonic()
            if not middle and now > t0 + duration / 2:
                middle = {b.service: rss_mib(b.proc.pid) for b in chain.bridges if b.proc}
            if now < next_fault or now > t0 + duration - hold - GRACE:
                continue
            kind = kinds[index % len(kinds)]
            index += 1
            lines = {b.service: b.log_lines() for b in chain.bridges}
            steady.append((mark[0], now, {s: lines[s] - mark[1].get(s, 0) for s in lines}))
            fault = Fault(kind, now)
            chain.faults.append(fault)
            print(f"  {now - t0:6.0f} s  fault: {kind}", flush=True)
            if kind == "redis":
                chain.redis.restart()
            elif kind == "broker":
                assert chain.broker is not None
                chain.broker.restart()
            elif kind == "driver":
                pid = child_pid(chain.indi.proc.pid, "indi_simulator_ccd") if chain.indi.proc else None
                if pid:
                    os.kill(pid, signal.SIGKILL)
                    wait_for(
                        lambda pid=pid: (
                            child_pid(chain.indi.proc.pid, "indi_simulator_ccd") not in (None, pid)
                        ),
                        timeout=30,
                        what="indiserver to restart the CCD driver",
                    )
                else:
                    fault.note = "CCD driver not found"
            elif kind == "disk":
                filler = blobfs / "filler"
                fault.note = f"filler {fill_disk(filler, hold) / 2**20:.0f} MiB"
                filler.unlink()
                filler = None
            elif kind == "clock":
                clock_file.write_text("-3600\n")
                time.sleep(hold)
                clock_file.write_text("0\n")
            fault.recovered = time.monotonic()
            seen = watch.count.value
            try:
                wait_for(lambda seen=seen: watch.count.value > seen, timeout=60, interval=0.2, what="a frame")
                fault.resumed = time.monotonic()
            except TimeoutError:
                fault.note += " no frame stored within 60 s of recovery"
            time.sleep(GRACE)
            mark = (time.monotonic(), {b.service: b.log_lines() for b in chain.bridges})
            next_fault = time.monotonic() + every - (time.monotonic() - now)
        end_at = time.monotonic()
        lines = {b.service: b.log_lines() for b in chain.bridges}
        steady.append((mark[0], end_at, {s: lines[s] - mark[1].get(s, 0) for s in lines}))
        end = {b.service: (rss_mib(b.proc.pid), open_fds(b.proc.pid)) for b in chain.bridges if b.proc}
        controller.exposing.clear()
        reported_until = time.monotonic()
        time.sleep(5)  # the last frames reach the folder
        for _ in range(10):  # until the folder has settled (nothing new for 2 s)
            stored_at_end = watch.count.value
            time.sleep(2)
            if watch.count.value == stored_at_end:
                break
        logs = {b.service: b.log for b in chain.bridges}
    except BaseException:
        for bridge in chain.bridges:
            print(f"-- {bridge.service}: the end of its log", file=sys.stderr)
            print("\n".join(bridge.log.splitlines()[-15:]), file=sys.stderr)
        raise
    finally:
        for thread in (controller, counter, viewers, sampler):
            if thread is not None:
                thread.stopping.set()
        for thread in (controller, counter, sampler):
            if thread is not None and thread.is_alive():
                thread.join(10)
        if watch.process.pid is not None:
            watch.collect()
        chain.stop()
        if args.keep_logs:
            args.keep_logs.mkdir(parents=True, exist_ok=True)
            for bridge in chain.bridges:
                shutil.copy(bridge.log_path, args.keep_logs / f"{name}-{bridge.service}.log")
            if (workdir / "web" / "web.log").exists():
                shutil.copy(workdir / "web" / "web.log", args.keep_logs / f"{name}-web.log")
        if filler is not None:
            filler.unlink(missing_ok=True)
        subprocess.run(["umount", "-l", str(blobfs)], check=False)

    return report(
        chain, watch, sampler, counter, viewers, t0, reported_until, start, middle, end, steady, logs
    )


#: the refusals a bridge's log admits: a running total ("(12 refused since the bridge started)"), or
#: else counts per line ("3 refused", "3 BLOBs refused")
REFUSED_TOTAL = re.compile(r"\((\d+) (?:refused )?since the bridge started\)")
REFUSED_COUNT = re.compile(r"(\d+) (?:new )?(?:BLOBs? |frames? )?refused\b", re.IGNORECASE)
NOT_STORED = re.compile(r"BLOB \S.* not stored", re.IGNORECASE)


LEVELS = re.compile(r"\b(WARNING|ERROR|CRITICAL)\b")
VARIABLE = re.compile(r"^\S+ \S+ |\d+(\.\d+)?|'[^']*'|\"[^\"]*\"|/\S+")


def log_summary(text: str, limit: int = 8) -> list[tuple[int, str]]:
    """The log's warning and worse lines grouped by kind (numbers, quoted words, paths and the
    time stamp ignored): the most frequent ``limit`` kinds, with the first line of each."""
    kinds: dict[str, list] = {}
    for line in text.splitlines():
        if LEVELS.search(line):
            key = VARIABLE.sub("#", line)
            kinds.setdefault(key, [0, line])[0] += 1
    ranked = sorted(kinds.values(), key=lambda kind: -kind[0])[:limit]
    return [(count, line) for count, line in ranked]


def report(
    chain: Chain,
    watch: FolderWatch,
    sampler: FolderSampler,
    counter: FrameCounter,
    viewers: Viewers,
    t0: float,
    until: float,
    start: dict[str, tuple[float, int]],
    middle: dict[str, float],
    end: dict[str, tuple[float, int]],
    steady: list[tuple[float, float, dict[str, int]]],
    logs: dict[str, str],
) -> bool:
    """Print the chain's figures; True when no frame was lost outside the full-disk phases."""
    kept: set[str] = set()
    overwritten: set[str] = set()
    for version in watch.versions:
        if version.unseen:
            continue
        (overwritten if version.end == "overwritten" else kept).add(version.digest)
    frames = [frame for frame in counter.frames if t0 <= frame.at <= until]
    reported_digests = {frame.digest for frame in counter.frames}

    def phase(at: float) -> str:
        for fault in chain.faults:
            low, high = fault.window()
            if low <= at <= high:
                return fault.kind
        return "steady"

    per_phase: dict[str, dict[str, int]] = {}
    for frame in frames:
        counts = per_phase.setdefault(
            phase(frame.at), {"reported": 0, "stored": 0, "overwritten": 0, "missing": 0}
        )
        counts["reported"] += 1
        if frame.digest in kept:
            counts["stored"] += 1
        elif frame.digest in overwritten:
            counts["overwritten"] += 1
        else:
            counts["missing"] += 1
    total = {
        key: sum(c[key] for c in per_phase.values())
        for key in ("reported", "stored", "overwritten", "missing")
    }
    disk = per_phase.get("disk", {"overwritten": 0, "missing": 0})
    refused = disk["missing"]
    lost = total["overwritten"] + total["missing"] - refused
    wrong = sum(1 for v in watch.versions if v.digest and v.digest not in reported_digests)
    distinct = len({v.digest for v in watch.versions if v.digest})
    print(f"-- {chain.name}: frames")
    print(
        f"  reported by the driver {total['reported']} in {(until - t0) / 60:.1f} min "
        f"({total['reported'] / max(1e-9, until - t0):.1f}/s); stored as distinct files with the right "
        f"bytes {total['stored']}; LOST {lost} (overwritten {total['overwritten']}, "
        f"never in the folder {total['missing'] - disk['missing']}); refused while the disk was full "
        f"{refused}"
    )
    for name, counts in sorted(per_phase.items()):
        print(
            f"    {name:<8} reported {counts['reported']:5d}  stored {counts['stored']:5d}  "
            f"overwritten {counts['overwritten']:4d}  never stored {counts['missing']:4d}"
        )
    print(
        f"  files: {len(watch.versions)} versions in the folder, {distinct} distinct contents; with bytes "
        f"the driver never sent: {wrong}"
    )
    unseen = sum(1 for v in watch.versions if v.unseen)
    print(
        f"  watch: opened by their final name (the temporary file renamed before the watch opened it) "
        f"{watch.late}; of these overwritten before opened {unseen}, gone before opened {watch.vanished}; "
        f"inotify overflows {watch.overflows}"
        + ("" if unseen + watch.vanished + watch.overflows == 0 else "  (ACCOUNTING INEXACT by these)")
    )
    for service, text in logs.items():
        totals = [int(n) for n in REFUSED_TOTAL.findall(text)]
        counted = max(totals) if totals else sum(int(n) for n in REFUSED_COUNT.findall(text))
        lines = len(NOT_STORED.findall(text))
        if service.endswith("toredis"):
            print(
                f"  {service} log: refused frames counted {counted}; 'BLOB ... not stored' lines {lines} "
                f"(bench counted {refused} refused)"
            )
        summary = log_summary(text)
        if summary:
            print(f"  {service} log, warnings and worse (count, first line of each kind):")
            for count, line in summary:
                print(f"    {count:5d} x {line[:150]}")
    print(f"-- {chain.name}: processes")
    for bridge in chain.bridges:
        service = bridge.service
        (rss0, fd0), (rss2, fd2) = (
            start.get(service, (float("nan"), -1)),
            end.get(service, (float("nan"), -1)),
        )
        rss1 = middle.get(service, float("nan"))
        growth = (rss2 - rss1) / rss1 * 100 if rss1 == rss1 and rss1 else float("nan")
        seconds = sum(b - a for a, b, _ in steady)
        lines = sum(counts.get(service, 0) for _, _, counts in steady)
        print(
            f"  {service:<12} RSS start {rss0:.1f} MiB, middle {rss1:.1f}, end {rss2:.1f} MiB "
            f"(end vs middle {growth:+.1f} %); open fds start {fd0}, end {fd2}; "
            f"log lines/min in steady state {lines / max(1e-9, seconds) * 60:.1f} (over {seconds:.0f} s); "
            f"restarts {bridge.restarts}"
        )
    bound = chain.args.keep_mb * 2**20
    if chain.min_free_accepted:
        bound = min(bound, (chain.args.tmpfs_mb - chain.args.min_free_mb) * 2**20)
    # retention counts the frame being written, but never deletes one not recorded yet (docs/datapath.md):
    # the frames on their way to Redis come on top, two in steady state
    in_flight = 2 * max((frame.size for frame in counter.frames), default=0)
    bound += in_flight
    print(
        f"  blob folder high-water {sampler.high / 2**20:.1f} MiB, bound {bound / 2**20:.1f} MiB "
        f"(two frames in flight {in_flight / 2**20:.1f} MiB + blob_keep_mb {chain.args.keep_mb}"
        + (
            f", {chain.args.tmpfs_mb} MiB filesystem less blob_min_free_mb {chain.args.min_free_mb}"
            if chain.min_free_accepted
            else ""
        )
        + f"){'  ABOVE ITS BOUND' if sampler.high > bound else ''}"
    )
    print(
        f"  the store's CCD1 filepath named a missing file in {sampler.dangling} of {sampler.checks} checks "
        "(one a second)"
    )
    failures = Counter(f"{kind} ({phase(at)})" for at, kind in viewers.failures)
    kinds = ", ".join(f"{kind} x{n}" for kind, n in failures.most_common())
    print(f"  web viewers: {viewers.answers} answers, {viewers.errors} errors{': ' + kinds if kinds else ''}")
    print(f"-- {chain.name}: faults (recovered: the part back; resumed: the next frame stored)")
    for fault in chain.faults:
        recovered = fault.recovered - fault.started
        resumed = f"{fault.resumed - fault.recovered:.1f} s" if fault.resumed else "never"
        print(f"  {fault.kind:<7} recovered after {recovered:5.1f} s, resumed {resumed} after  {fault.note}")
    for note in chain.notes:
        print(f"  note: {note}")
    for problem in chain.problems + [f"frame counter: {e}" for e in counter.errors[:3]]:
        print(f"  PROBLEM: {problem}")
    return lost == 0 and wrong == 0 and sampler.high <= bound and not sampler.dangling


CHAINS = {"inditoredis": ["inditoredis"], "mqtt": ["inditomqtt", "mqtttoredis"]}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chain", choices=[*CHAINS, "all"], default="all", help="which chain (default all)")
    parser.add_argument("--minutes", type=float, default=20, help="minutes per chain (default 20)")
    parser.add_argument(
        "--fault-every",
        type=float,
        default=0,
        help="seconds between faults (default: a fifth of the run, at most 180)",
    )
    parser.add_argument(
        "--faults",
        default="redis,broker,driver,disk,clock",
        help="the faults to cycle through, comma-separated (default: all, redis,broker,driver,disk,clock)",
    )
    parser.add_argument("--keep-logs", type=Path, help="copy the bridges' and web's logs into this folder")
    parser.add_argument("--viewers", type=int, default=3, help="web viewers (default 3)")
    parser.add_argument(
        "--tmpfs-mb", type=int, default=96, help="size of the blob folder's tmpfs (default 96)"
    )
    parser.add_argument("--keep-mb", type=int, default=32, help="blob_keep_mb of the bridges (default 32)")
    parser.add_argument(
        "--min-free-mb", type=int, default=16, help="blob_min_free_mb, when accepted (default 16)"
    )
    args = parser.parse_args()
    unknown = set(args.faults.split(",")) - {"redis", "broker", "driver", "disk", "clock"}
    if unknown:
        parser.error(f"unknown fault(s): {', '.join(sorted(unknown))}")
    if os.geteuid() != 0:
        return print("soak.py mounts a tmpfs for the blob folder: run it as root") or 2
    for program in ("indiserver", "indi_simulator_ccd", "redis-server", "mosquitto"):
        if not shutil.which(program):
            return print(f"{program} is not installed (make deps)") or 2

    def terminate(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # also when started with SIGINT ignored
    signal.signal(signal.SIGTERM, terminate)
    signal.signal(signal.SIGHUP, terminate)
    ok = True
    try:
        for name in CHAINS if args.chain == "all" else [args.chain]:
            with tempfile.TemporaryDirectory(prefix=f"soak-{name}-") as workdir:
                try:
                    ok &= run_chain(name, CHAINS[name], args, Path(workdir))
                finally:
                    blobfs = Path(workdir) / "blobfs"
                    subprocess.run(["umount", "-l", str(blobfs)], check=False, capture_output=True)
    except KeyboardInterrupt as exc:
        print(f"\ninterrupted ({exc or 'Ctrl-C'}): everything the bench started is stopped and unmounted")
        return 130
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
