"""Fault injection on real chains: shared by ``tests/faults`` and ``bench/chaos.py``.

A *chain* is the real servers (redis-server, mosquitto, indiserver) plus the bridges under test, each
bridge its real daemon in its own process (:mod:`tests.support.bridgeprocess`), fed by
``standin_driver.py`` streaming numbered setNumberVector messages.  A *watcher* at the far end
(:mod:`tests.support.watchers`) records every numbered message it sees.  :meth:`Chain.fault` kills one
part with SIGKILL, restarts it, and measures the time until fresh messages flow again end to end;
:func:`tests.support.accounting.account` then counts what was lost.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis

import indiredis
from indiredis import tools
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE
from tests.support.accounting import Arrival, in_flight_since
from tests.support.bridgeprocess import STANDIN, BridgeProcess
from tests.support.servers import (
    IndiServerProcess,
    MosquittoProcess,
    RedisProcess,
    free_port,
    port_open,
    wait_for,
)
from tests.support.watchers import IndiClientWatcher, RedisWatcher, Watcher


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
            self.record()
        for bridge in reversed(self.bridges):
            bridge.stop()
        for server in (self.indiserver, self.mosquitto, self.redis):
            if server is not None:
                server.__exit__(None, None, None)

    def record(self) -> Path:
        """Write what the watcher saw and the faults to ``arrivals.tsv`` and ``faults.tsv`` in the
        chain's folder (next to the bridges' logs), to read after a failed run."""
        assert self.watcher is not None
        with open(self.workdir / "arrivals.tsv", "w") as out:
            out.write("run\tnumber\tsent\tarrived\n")
            for a in self.watcher.snapshot():
                out.write(f"{a.run}\t{a.number}\t{a.sent:.3f}\t{a.arrived:.3f}\n")
        with open(self.workdir / "faults.tsv", "w") as out:
            out.write("part\tkilled\trestarted\trecovered\n")
            out.write(f"start\t{self.started:.3f}\t{self.started:.3f}\t{self.started:.3f}\n")
            for f in self.faults:
                out.write(f"{f.part}\t{f.killed:.3f}\t{f.restarted:.3f}\t{f.recovered:.3f}\n")
        return self.workdir / "arrivals.tsv"

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
            if part == "redis":
                self._until_redis_holds_no_publication()
                fault.killed = time.time()
            server.kill()
            server.start()  # returns once it accepts connections
            fault.restarted = time.time()
        fault.recovered = self.wait_flowing(fault.restarted)
        self.faults.append(fault)
        return fault

    def _until_redis_holds_no_publication(self, timeout: float = 10) -> None:
        """Wait until Redis has written every publication to its subscribers' sockets (the watcher's
        above all), so that a kill takes nothing from them: what Redis still holds in a subscriber's
        output buffer dies with it, though the bridge wrote it and Redis confirmed it (pub/sub delivers
        at most once).  While the chain catches up, Redis publishes a batch of hundreds of messages at
        once, more than a socket takes, and a kill then would count, as the bridges' loss, messages
        that the test's own subscriber had not read yet.  What the bridges hold is not waited for."""
        assert self.redis is not None
        conn = redis.Redis(host="127.0.0.1", port=self.redis.port, socket_timeout=2)
        try:
            wait_for(
                lambda: all(
                    int(client["obl"]) == 0 and int(client["oll"]) == 0
                    for client in conn.client_list(_type="pubsub")
                ),
                timeout=timeout,
                interval=0.002,
                what="Redis to write its publications to the subscribers' sockets",
            )
        finally:
            conn.close()

    def store_problem(self, devices: Sequence[str] = ("Stream",)) -> str:
        """Why the Redis store is not whole (devices, the SEQ property, a fresh value), or ''."""
        if self.redis is None:
            return ""
        server = indiredis.redis_server("127.0.0.1", self.redis.port)
        conn = redis.Redis(host="127.0.0.1", port=self.redis.port, socket_timeout=2)
        try:
            found = [d for d in tools.devices(conn, server) if not d.startswith(DEFAULT_MANAGER_DEVICE)]
            if found != sorted(devices):  # the driver bridges' own Driver Manager aside
                return f"devices are {found}, expected {sorted(devices)}"
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

    def outage_windows(self, arrivals: Sequence[Arrival] | None = None) -> list[tuple[float, float]]:
        """For each fault, from when the oldest message in flight at the kill was sent
        (:func:`~tests.support.accounting.in_flight_since`, from ``arrivals``, the watcher's by default)
        to the recovery."""
        if arrivals is None:
            assert self.watcher is not None
            arrivals = self.watcher.snapshot()
        return [(in_flight_since(arrivals, f.killed), f.recovered) for f in self.faults]


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


def _indiserver_to_mqtt(chain: Chain) -> None:
    """indiserver running the stand-in driver, and inditomqtt (id ``obs``) on the chain's broker."""
    chain.indiserver = IndiServerProcess([STANDIN]).start()
    chain.bridges.append(
        BridgeProcess(
            "make_inditomqtt",
            {"indi_host": _indi_kwargs(chain), "mqtt_id": "obs", "mqtt_host": _mqtt_kwargs(chain)},
            chain.workdir,
        ).start()
    )


def _inditomqtt_mqtttoredis(chain: Chain, env: dict[str, str]) -> None:
    chain.redis = RedisProcess().start()
    chain.mosquitto = MosquittoProcess().start()
    _indiserver_to_mqtt(chain)
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
    _indiserver_to_mqtt(chain)
    port = free_port()
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
