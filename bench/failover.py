#!/usr/bin/env python3
"""Benchmark: how long a Redis Sentinel failover interrupts inditoredis, beside a Redis restart.

A real indiserver with the telescope and CCD simulators feeds an ``inditoredis`` process (of its own)
writing to Redis through three real sentinels (a master and one replica, Debian's ``redis-server``).
The master is killed with SIGKILL; printed, from the promotion the sentinels report:

* the first write of the bridge on the new master (its heartbeat, rewritten at once on connecting);
* the store whole again: every property the store held before, read through ``tools`` (the client
  made before the failover) from the new master.  The replica held what was replicated before the
  kill, so this is mostly ``tools`` finding the new master; the bridge's ``getProperties`` then
  rewrites every property (after a restart, the reference, the store is rebuilt from nothing);
* the outage as the web client sees it: from the kill to ``/api/devices`` answering again.

The reference, measured in the same run: the same bridge on a plain TCP Redis killed and restarted
(empty), from the restart to the first write and to the store whole again.  The sentinels' own delay
(``down-after-milliseconds`` 1000 ms, a setting of this topology) is printed apart, as "promotion".
Times are polled every 10 ms, so they are good to about that.
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import sys
import time
from datetime import datetime
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import start_bridge  # noqa: E402

import indiredis  # noqa: E402
from indiredis import tools  # noqa: E402
from indiredis.indiwsgi import make_wsgi_app  # noqa: E402
from tests.support.sentinel import sentinel_topology  # noqa: E402
from tests.support.servers import IndiServerProcess, RedisProcess, wait_for  # noqa: E402
from tests.support.webworld import Client  # noqa: E402

DEVICES = ("Telescope Simulator", "CCD Simulator")
POLL = 0.01


def store(rconn: redis.Redis, server) -> set[tuple[str, str]]:
    return {(device, name) for device in DEVICES for name in tools.properties(rconn, server, device)}


def beat_time(port: int) -> float | None:
    """The time (epoch seconds) of the heartbeat on the Redis at ``port``, or None."""
    try:
        with redis.Redis(host="127.0.0.1", port=port, socket_timeout=1) as conn:
            value = conn.get("indi_heartbeat")
    except redis.RedisError:
        return None
    return datetime.fromisoformat(json.loads(value)["time"]).timestamp() if value else None


def until(condition, timeout: float = 60.0) -> float:
    """Poll ``condition`` every POLL seconds; the monotonic time it first held."""
    return wait_for(lambda: condition() and time.monotonic(), timeout=timeout, interval=POLL)


def settle(rconn: redis.Redis, server) -> set[tuple[str, str]]:
    """The store once it stopped growing for a second (the simulators define all they will)."""
    seen: set[tuple[str, str]] = set()
    stable_since = time.monotonic()
    while time.monotonic() - stable_since < 1.0:
        now = store(rconn, server)
        if now != seen:
            seen, stable_since = now, time.monotonic()
        time.sleep(0.05)
    return seen


def one_failover(simulators: IndiServerProcess) -> dict[str, float]:
    with sentinel_topology() as topology:
        server = topology.server
        rconn = tools.open_redis(server)
        assert rconn is not None
        web = Client(make_wsgi_app(server))
        args = (
            f"indiredis.indi_server('127.0.0.1', {simulators.port}),"
            f" indiredis.redis_server(sentinels={server.sentinels!r}, service_name={server.service_name!r})"
        )
        bridge = start_bridge("make_inditoredis", args)
        try:
            wait_for(lambda: {d for d, _ in store(rconn, server)} == set(DEVICES), timeout=30)
            before = settle(rconn, server)
            new = topology.replica.port
            killed = time.monotonic()
            topology.master.kill(signal.SIGKILL)
            promoted = until(lambda: topology.master_port() == new)
            wall_promoted = time.time() - (time.monotonic() - promoted)
            first_write = until(lambda: (beat_time(new) or 0) > wall_promoted)
            whole = until(lambda: before <= store(rconn, server))
            web_back = until(lambda: web.get("/api/devices")[0].startswith("200"))
        finally:
            bridge.terminate()
            bridge.wait(20)
            web.app.close()
            rconn.close()
    return {
        "promotion (sentinels, from the kill)": promoted - killed,
        "first write on the new master, from the promotion": first_write - promoted,
        "store whole on the new master, from the promotion": whole - promoted,
        "web client outage, from the kill": web_back - killed,
    }


def one_restart(simulators: IndiServerProcess) -> dict[str, float]:
    with RedisProcess() as proc:
        server = indiredis.redis_server("127.0.0.1", proc.port)
        rconn = redis.Redis(host="127.0.0.1", port=proc.port, socket_timeout=5)
        args = (
            f"indiredis.indi_server('127.0.0.1', {simulators.port}),"
            f" indiredis.redis_server('127.0.0.1', {proc.port})"
        )
        bridge = start_bridge("make_inditoredis", args)
        try:
            wait_for(lambda: {d for d, _ in store(rconn, server)} == set(DEVICES), timeout=30)
            before = settle(rconn, server)
            proc.kill(signal.SIGKILL)
            restarted_wall = time.time()
            proc.start()
            restarted = time.monotonic()
            first_write = until(lambda: (beat_time(proc.port) or 0) > restarted_wall)
            whole = until(lambda: before <= store(rconn, server))
        finally:
            bridge.terminate()
            bridge.wait(20)
            rconn.close()
    return {
        "first write, from the restart": first_write - restarted,
        "store whole, from the restart": whole - restarted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="failovers (and restarts) measured")
    args = parser.parse_args()
    results: dict[str, list[float]] = {}
    with IndiServerProcess(("indi_simulator_telescope", "indi_simulator_ccd")) as simulators:
        for _ in range(args.runs):
            for name, value in (one_restart(simulators) | one_failover(simulators)).items():
                results.setdefault(name, []).append(value)
    print(f"{args.runs} runs; median (min-max), seconds")
    for name, values in results.items():
        print(f"  {name:55} {statistics.median(values):6.2f} ({min(values):.2f}-{max(values):.2f})")


if __name__ == "__main__":
    main()
