"""Fault injection on real chains: shared by ``tests/faults`` and ``bench/chaos.py``.

A *chain* is the real servers (redis-server, mosquitto, indiserver) plus the
bridges under test, each bridge its real daemon (``indiredis-<service>``) in its own process, fed by
``standin_driver.py`` streaming numbered setNumberVector messages.  A *watcher*
at the far end (a Redis pub/sub subscriber, or an INDI client on mqtttoport's
port) records every numbered message it sees.  :meth:`Chain.fault` kills one
part with SIGKILL, restarts it, and measures the time until fresh messages flow
again end to end.

Loss accounting (:func:`account`): within one run of the stand-in driver the
numbers are dense, and each message carries its send time.  A number that never
arrived, whose nearest received neighbours were both sent while every part was
up, was *lost while up*: the one figure that must be zero.  Numbers missing
across a fault window are *outage gaps*; the bridges must either deliver them
later or count them in their log ("dropped N messages ...").
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import redis

import indiredis
from indiredis import tools
from tests.support.notifysocket import NotifySocket
from tests.support.servers import (
    IndiServerProcess,
    MosquittoProcess,
    RedisProcess,
    free_port,
    port_open,
    wait_for,
)

HERE = Path(__file__).resolve().parent
STANDIN = str(HERE / "standin_driver.py")

#: Before a kill, messages sent this close to it may be in flight inside the killed part.
IN_FLIGHT_MARGIN = 0.25

_MESSAGE = re.compile(rb"<setNumberVector[^>]*>.*?</setNumberVector>", re.S)
_TIMESTAMP = re.compile(rb'timestamp="([^"]+)"')
_RUN = re.compile(rb'name="RUN"\s*>\s*([0-9.]+)')
_SEQ = re.compile(rb'name="N"\s*>\s*([0-9.]+)')


@dataclass(frozen=True)
class Arrival:
    """One numbered message seen by the watcher."""

    run: int
    number: int
    sent: float  # epoch seconds, from the INDI timestamp
    arrived: float  # epoch seconds


def parse_arrivals(data: bytes, now: float) -> list[Arrival]:
    """The numbered stand-in messages in ``data`` (whole messages only)."""
    arrivals = []
    for match in _MESSAGE.finditer(data):
        text = match.group(0)
        stamp, run, number = _TIMESTAMP.search(text), _RUN.search(text), _SEQ.search(text)
        if not (stamp and run and number):
            continue
        sent = datetime.fromisoformat(stamp.group(1).decode()).replace(tzinfo=UTC).timestamp()
        arrivals.append(Arrival(int(float(run.group(1))), int(float(number.group(1))), sent, now))
    return arrivals


class Watcher:
    """Records arrivals in a background thread, reconnecting as needed."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Watcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)

    def _record(self, arrivals: list[Arrival]) -> None:
        if arrivals:
            with self._lock:
                self.arrivals.extend(arrivals)

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def fresh_since(self, moment: float) -> bool:
        """True once a message sent after ``moment`` has arrived."""
        with self._lock:
            return any(a.sent > moment for a in reversed(self.arrivals[-50:]))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.watch()
            except Exception:  # noqa: BLE001 - the far end is down during faults; retry
                pass
            self._stop.wait(0.05)

    def watch(self) -> None:
        raise NotImplementedError


class RedisWatcher(Watcher):
    """Subscribes to the from_indi channel of a Redis server."""

    def __init__(self, port: int, channel: str = "from_indi") -> None:
        super().__init__()
        self.port, self.channel = port, channel

    def watch(self) -> None:
        conn = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        pubsub = conn.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        try:
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message:
                    self._record(parse_arrivals(message["data"], time.time()))
        finally:
            pubsub.close()
            conn.close()


class IndiClientWatcher(Watcher):
    """An INDI client on a TCP port (mqtttoport's), as KStars would be."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def watch(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b'<getProperties version="1.7"/>\n')
            sock.settimeout(0.2)
            pending = b""
            while not self._stop.is_set():
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    return
                pending += data
                cut = pending.rfind(b"</setNumberVector>")
                if cut >= 0:
                    cut += len(b"</setNumberVector>")
                    self._record(parse_arrivals(pending[:cut], time.time()))
                    pending = pending[cut:]


SERVICE_OF = {
    "make_inditoredis": "inditoredis",
    "make_driverstoredis": "driverstoredis",
    "make_inditomqtt": "inditomqtt",
    "make_driverstomqtt": "driverstomqtt",
    "make_mqtttoredis": "mqtttoredis",
    "make_mqtttoport": "mqtttoport",
}
HOST_SECTIONS = {"indi_host": "indi", "redis_host": "redis", "mqtt_host": "mqtt"}
SERVICE_KEYS = {"port": "listen_port", "host": "listen_host"}


class BridgeProcess:
    """One bridge run as its real daemon (``indiredis-<service>``) with a configuration folder of its own,
    telling a stand-in systemd notification socket what it does."""

    def __init__(self, factory: str, kwargs: dict, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.factory, self.kwargs = factory, kwargs
        self.service = SERVICE_OF[factory]
        self.folder = workdir / f"{self.service}-{free_port()}"
        self.folder.mkdir(parents=True)
        self.log_path = self.folder / "daemon.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifySocket | None = None

    def write_config(self) -> Path:
        lines = (
            ["[service]", f"blob_folder = {self.folder / 'blobs'}"]
            if self.service in ("inditoredis", "driverstoredis", "mqtttoredis")
            else ["[service]"]
        )
        sections: list[str] = []
        for key, value in self.kwargs.items():
            if key in HOST_SECTIONS:
                sections += [f"[{HOST_SECTIONS[key]}]"] + [f"{k} = {v}" for k, v in value.items()]
            elif key == "drivers":
                lines.append(f"drivers = {' '.join(value)}")
            else:
                lines.append(f"{SERVICE_KEYS.get(key, key)} = {value}")
        path = self.folder / f"{self.service}.ini"
        path.write_text("\n".join(lines + sections) + "\n")
        return path

    def start(self) -> BridgeProcess:
        config = self.write_config()
        self.notify = NotifySocket(self.folder)
        env = {**self.env, "NOTIFY_SOCKET": str(self.notify.path), "WATCHDOG_USEC": "2000000"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / f"indiredis-{self.service}"), "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def statuses(self) -> list[str]:
        """Every STATUS= the daemon sent."""
        lines = self.notify.snapshot() if self.notify else []
        return [line[len("STATUS=") :] for line in lines if line.startswith("STATUS=")]

    @property
    def ready(self) -> bool:
        """READY=1 was sent, and the latest status says both sides are connected."""
        statuses = self.statuses()
        return (
            self.notify is not None
            and self.notify.has("READY=1")
            and bool(statuses)
            and "waiting for" not in statuses[-1]
            and "connecting to" not in statuses[-1]
        )

    def dropped(self) -> int:
        """Messages the bridge said it dropped during outages."""
        return sum(int(m) for m in re.findall(r"dropped (\d+) messages", self.log))

    def children(self) -> list[int]:
        """Pids of this bridge's child processes (its drivers)."""
        if not self.proc:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.notify:
            self.notify.close()


@dataclass
class Fault:
    """One kill/restart cycle and what it measured."""

    part: str
    killed: float
    restarted: float = 0.0
    recovered: float = 0.0

    @property
    def recovery_seconds(self) -> float:
        """From the part accepting connections again to fresh messages arriving end to end."""
        return self.recovered - self.restarted


@dataclass
class Chain:
    """Servers, bridges and a watcher for one bridge composition."""

    name: str
    workdir: Path
    rate: float = 2000
    redis: RedisProcess | None = None
    mosquitto: MosquittoProcess | None = None
    indiserver: IndiServerProcess | None = None
    bridges: list[BridgeProcess] = field(default_factory=list)
    driver_bridge: BridgeProcess | None = None
    watcher: Watcher | None = None
    faults: list[Fault] = field(default_factory=list)
    started: float = 0.0

    # -- parts -------------------------------------------------------------------------------
    def part_names(self) -> list[str]:
        names = [n for n in ("redis", "mosquitto", "indiserver") if getattr(self, n) is not None]
        if self.driver_bridge is not None:
            names.append("driver")
        return names

    def stop(self) -> None:
        if self.watcher:
            self.watcher.stop()
        for bridge in reversed(self.bridges):
            bridge.stop()
        for server in (self.indiserver, self.mosquitto, self.redis):
            if server is not None:
                server.__exit__(None, None, None)

    def bridges_alive(self) -> bool:
        return all(b.alive for b in self.bridges)

    def wait_flowing(self, since: float, timeout: float = 30) -> float:
        """Wait until a message sent after ``since`` arrives; return the time it did."""
        assert self.watcher is not None
        wait_for(
            lambda: self.watcher.fresh_since(since),
            timeout=timeout,
            interval=0.02,
            what=f"{self.name}: fresh messages end to end",
        )
        return time.time()

    def fault(self, part: str) -> Fault:
        """Kill ``part`` with SIGKILL, restart it, and measure the recovery."""
        fault = Fault(part, killed=time.time())
        if part == "driver":
            assert self.driver_bridge is not None
            children = self.driver_bridge.children()
            assert children, "the driver bridge has no driver process"
            os.kill(children[0], signal.SIGKILL)
            # the bridge restarts the driver itself: "restarted" is the kill time
            fault.restarted = fault.killed
        else:
            server = getattr(self, part)
            server.kill()
            server.start()  # returns once it accepts connections
            fault.restarted = time.time()
        fault.recovered = self.wait_flowing(fault.restarted)
        self.faults.append(fault)
        return fault

    def store_problem(self, devices: Sequence[str] = ("Stream",)) -> str:
        """Why the Redis store is not whole (devices, the SEQ property, a fresh value), or ''."""
        if self.redis is None:
            return ""
        server = indiredis.redis_server("127.0.0.1", self.redis.port)
        conn = redis.Redis(host="127.0.0.1", port=self.redis.port, socket_timeout=2)
        try:
            if tools.devices(conn, server) != sorted(devices):
                return f"devices are {tools.devices(conn, server)}, expected {sorted(devices)}"
            if tools.attributes_dict(conn, server, "SEQ", "Stream").get("vector") != "NumberVector":
                return "SEQ property attributes missing"
            if tools.elements(conn, server, "SEQ", "Stream") != ["N", "RUN"]:
                return f"SEQ elements are {tools.elements(conn, server, 'SEQ', 'Stream')}"
            latest = max((a for a in self.watcher.snapshot()[-20:]), key=lambda a: a.arrived)  # type: ignore[union-attr]
            stored = float(tools.elements_dict(conn, server, "N", "SEQ", "Stream").get("value", "-1"))
            if (
                stored < latest.number
                and int(float(tools.elements_dict(conn, server, "RUN", "SEQ", "Stream").get("value", "0")))
                == latest.run
            ):
                return f"stored N={stored} is behind the latest delivered {latest.number}"
            return ""
        finally:
            conn.close()

    def outage_windows(self) -> list[tuple[float, float]]:
        return [(f.killed - IN_FLIGHT_MARGIN, f.recovered) for f in self.faults]


def _in_outage(moment: float, windows: Sequence[tuple[float, float]]) -> bool:
    return any(start <= moment <= end for start, end in windows)


@dataclass
class Account:
    """What the watcher's record says about loss and order."""

    received: int = 0
    runs: int = 0
    lost_while_up: int = 0
    outage_gap: int = 0
    reordered: int = 0
    duplicates: int = 0
    lost_examples: list[tuple[int, int]] = field(default_factory=list)


def account(arrivals: Sequence[Arrival], windows: Sequence[tuple[float, float]]) -> Account:
    """Count losses while every part was up, outage gaps, reorderings and duplicates."""
    result = Account(received=len(arrivals))
    by_run: dict[int, list[Arrival]] = {}
    for arrival in arrivals:
        by_run.setdefault(arrival.run, []).append(arrival)
    result.runs = len(by_run)
    for run, items in by_run.items():
        highest = 0
        for item in items:  # arrival order
            if item.number < highest and not _in_outage(item.sent, windows):
                result.reordered += 1
            highest = max(highest, item.number)
        sent_at: dict[int, float] = {}
        for item in items:
            if item.number in sent_at:
                result.duplicates += 1
            sent_at[item.number] = item.sent
        numbers = sorted(sent_at)
        for low, high in zip(numbers, numbers[1:]):
            missing = high - low - 1
            if missing <= 0:
                continue
            start, end = sent_at[low], sent_at[high]
            crosses_outage = any(s <= end and start <= e for s, e in windows)
            if crosses_outage:
                result.outage_gap += missing
            else:
                result.lost_while_up += missing
                if len(result.lost_examples) < 5:
                    result.lost_examples.append((run, low + 1))
    return result


# -- chain builders ----------------------------------------------------------------------------


def _redis_kwargs(chain: Chain) -> dict:
    assert chain.redis
    return {"host": "127.0.0.1", "port": chain.redis.port}


def _mqtt_kwargs(chain: Chain) -> dict:
    assert chain.mosquitto
    return {"host": "127.0.0.1", "port": chain.mosquitto.port}


def _indi_kwargs(chain: Chain) -> dict:
    assert chain.indiserver
    return {"host": "127.0.0.1", "port": chain.indiserver.port}


def _standin_env(rate: float) -> dict[str, str]:
    return {"STANDIN_RATE": str(rate)}


def build_chain(name: str, workdir: Path, rate: float = 2000) -> Chain:
    """Start the servers, bridges and watcher of chain ``name`` (see :data:`CHAINS`)."""
    chain = Chain(name, workdir, rate)
    env = _standin_env(rate)
    os.environ.update(env)  # indiserver passes its environment to the drivers it runs
    try:
        CHAINS[name](chain, env)
        chain.started = time.time()
        chain.watcher.start()  # type: ignore[union-attr]
        chain.wait_flowing(chain.started, timeout=60)
    except BaseException:
        chain.stop()
        raise
    return chain


def _inditoredis(chain: Chain, env: dict[str, str]) -> None:
    chain.redis = RedisProcess().start()
    chain.indiserver = IndiServerProcess([STANDIN]).start()
    chain.bridges.append(
        BridgeProcess(
            "make_inditoredis",
            {"indi_host": _indi_kwargs(chain), "redis_host": _redis_kwargs(chain)},
            chain.workdir,
        ).start()
    )
    chain.watcher = RedisWatcher(chain.redis.port)


def _driverstoredis(chain: Chain, env: dict[str, str]) -> None:
    chain.redis = RedisProcess().start()
    bridge = BridgeProcess(
        "make_driverstoredis", {"drivers": [STANDIN], "redis_host": _redis_kwargs(chain)}, chain.workdir, env
    ).start()
    chain.bridges.append(bridge)
    chain.driver_bridge = bridge
    chain.watcher = RedisWatcher(chain.redis.port)


def _mqtt_to_redis(chain: Chain) -> None:
    chain.bridges.append(
        BridgeProcess(
            "make_mqtttoredis",
            {"mqtt_id": "gui", "mqtt_host": _mqtt_kwargs(chain), "redis_host": _redis_kwargs(chain)},
            chain.workdir,
        ).start()
    )
    chain.watcher = RedisWatcher(chain.redis.port)  # type: ignore[union-attr]


def _inditomqtt_mqtttoredis(chain: Chain, env: dict[str, str]) -> None:
    chain.redis = RedisProcess().start()
    chain.mosquitto = MosquittoProcess().start()
    chain.indiserver = IndiServerProcess([STANDIN]).start()
    chain.bridges.append(
        BridgeProcess(
            "make_inditomqtt",
            {"indi_host": _indi_kwargs(chain), "mqtt_id": "obs", "mqtt_host": _mqtt_kwargs(chain)},
            chain.workdir,
        ).start()
    )
    _mqtt_to_redis(chain)


def _driverstomqtt_mqtttoredis(chain: Chain, env: dict[str, str]) -> None:
    chain.redis = RedisProcess().start()
    chain.mosquitto = MosquittoProcess().start()
    bridge = BridgeProcess(
        "make_driverstomqtt",
        {"drivers": [STANDIN], "mqtt_id": "obs", "mqtt_host": _mqtt_kwargs(chain)},
        chain.workdir,
        env,
    ).start()
    chain.bridges.append(bridge)
    chain.driver_bridge = bridge
    _mqtt_to_redis(chain)


def _inditomqtt_mqtttoport(chain: Chain, env: dict[str, str]) -> None:
    chain.mosquitto = MosquittoProcess().start()
    chain.indiserver = IndiServerProcess([STANDIN]).start()
    port = free_port()
    chain.bridges.append(
        BridgeProcess(
            "make_inditomqtt",
            {"indi_host": _indi_kwargs(chain), "mqtt_id": "obs", "mqtt_host": _mqtt_kwargs(chain)},
            chain.workdir,
        ).start()
    )
    chain.bridges.append(
        BridgeProcess(
            "make_mqtttoport",
            {"mqtt_id": "kstars", "mqtt_host": _mqtt_kwargs(chain), "port": port, "host": "127.0.0.1"},
            chain.workdir,
        ).start()
    )
    wait_for(lambda: port_open(port), timeout=20, what="mqtttoport listening")
    chain.watcher = IndiClientWatcher(port)


#: chain name -> builder; the faults each chain is put through are its part_names()
CHAINS: dict[str, Callable[[Chain, dict[str, str]], None]] = {
    "inditoredis": _inditoredis,
    "driverstoredis": _driverstoredis,
    "inditomqtt-mqtttoredis": _inditomqtt_mqtttoredis,
    "driverstomqtt-mqtttoredis": _driverstomqtt_mqtttoredis,
    "inditomqtt-mqtttoport": _inditomqtt_mqtttoport,
}


#: the bridge factories each chain needs (a chain whose bridges are missing cannot run)
NEEDS: dict[str, list[str]] = {
    "inditoredis": ["make_inditoredis"],
    "driverstoredis": ["make_driverstoredis"],
    "inditomqtt-mqtttoredis": ["make_inditomqtt", "make_mqtttoredis"],
    "driverstomqtt-mqtttoredis": ["make_driverstomqtt", "make_mqtttoredis"],
    "inditomqtt-mqtttoport": ["make_inditomqtt", "make_mqtttoport"],
}


def cycle_parts(chain: Chain, cycles: int) -> Iterator[str]:
    """The parts to kill, round robin, ``cycles`` times in all."""
    parts = chain.part_names()
    for index in range(cycles):
        yield parts[index % len(parts)]
