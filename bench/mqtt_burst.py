"""A burst of the mount stream through the MQTT chains, on a stock mosquitto.

    .venv/bin/python bench/mqtt_burst.py [--messages 20000] [--chains inditomqtt,driverstomqtt]
                                         [--no-batching] [--broker-config 'max_queued_messages 1000000']

Chains, each bridge a process of its own, the broker mosquitto in its default
configuration (``mosquitto -p PORT``) unless ``--broker-config`` is given:

* ``inditomqtt``: a stand-in indiserver -> inditomqtt -> mosquitto -> mqtttoredis -> Redis;
* ``driverstomqtt``: a stand-in driver run by driverstomqtt -> mosquitto -> mqtttoredis -> Redis.

The source sends ``--messages`` ``setNumberVector`` of the realistic mount stream (10 properties,
6 numbers each in ``%010.6m`` sexagesimal, ``tests/support/mountstream.py``) at once, when a
client asks for it through Redis; a subscriber to Redis's ``from_indi`` channel counts the
distinct numbered messages that arrive.  Prints per chain: delivered/sent, the rate (delivered
messages over the time from the request to the last arrival), and the messages mqtttoredis
reported lost ("lost N messages" log lines), and the CPU time per delivered message of mqtttoredis
and of redis-server in the same run, with their ratio (the goal: at most 1, Redis the limit).
``--no-batching`` sends one INDI message per MQTT message, as the original 0.1.4 bridges do.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import bridge_python, cpu_per_message, cpu_seconds, stack, start_bridge  # noqa: E402

from tests.support.mountstream import STANDIN, StandinServers, StreamWatcher  # noqa: E402
from tests.support.servers import MosquittoProcess, RedisProcess, wait_for  # noqa: E402

STALL = 15.0  # seconds without a new arrival before the burst is taken as over
BURST_REQUEST = (
    b'<newSwitchVector device="{device}" name="BURST"><oneSwitch name="GO">On</oneSwitch></newSwitchVector>'
)


def run_chain(chain: str, count: int, batching: bool, broker_config: str, profile: str | None = None) -> None:
    """Run one burst through ``chain`` and print its figures (with ``profile``, mqtttoredis runs under
    cProfile and writes its statistics to that file)."""
    env = {**os.environ, "MOUNT_BURST": str(count), "MOUNT_DEVICE": "Mount"}
    with (
        RedisProcess(extra=["--client-output-buffer-limit", "pubsub 0 0 0"]) as redis_proc,
        MosquittoProcess(extra_config=broker_config) as broker,
        tempfile.TemporaryDirectory(prefix="mqtt-burst-") as workdir,
    ):
        mqtt = f"indiredis.mqtt_server('127.0.0.1', {broker.port})"
        redis_host = f"indiredis.redis_server('127.0.0.1', {redis_proc.port})"
        logs = {name: open(Path(workdir) / f"{name}.log", "w+b") for name in ("instrument", "gui")}
        processes = []
        try:
            if chain == "inditomqtt":
                standin = StandinServers(1, 0, count)
                processes.append(standin.proc)
                port = standin.ports[0]
                device = "Site00"
                processes.append(
                    start_bridge(
                        "make_inditomqtt",
                        f"indiredis.indi_server('127.0.0.1', {port}), 'obs', {mqtt}, "
                        f"mqtt_batching={batching}",
                        logs["instrument"],
                    )
                )
            else:
                device = "Mount"
                processes.append(
                    start_bridge(
                        "make_driverstomqtt",
                        f"[{str(STANDIN)!r}], 'obs', {mqtt}, mqtt_batching={batching}",
                        logs["instrument"],
                        env,
                    )
                )
            processes.append(
                start_bridge(
                    "make_mqtttoredis",
                    f"'gui', {mqtt}, {redis_host}, mqtt_batching={batching}",
                    logs["gui"],
                    profile=profile,
                )
            )
            rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
            watcher = StreamWatcher(redis_proc.port).start()
            wait_for(
                lambda: rconn.sismember("indi_properties:" + device, "BURST"),
                timeout=60,
                what="the definitions",
            )
            servers = [redis_proc.proc.pid, broker.proc.pid]  # type: ignore[union-attr]
            cpu_before = [cpu_seconds(pid) for pid in [p.pid for p in processes] + servers]
            start = time.monotonic()
            rconn.publish("to_indi", BURST_REQUEST.replace(b"{device}", device.encode()))
            last_count, last_change = 0, time.monotonic()
            while watcher.count(device) < count and time.monotonic() - last_change < STALL:
                time.sleep(0.05)
                if watcher.count(device) != last_count:
                    last_count, last_change = watcher.count(device), time.monotonic()
            delivered = watcher.count(device)
            elapsed = (last_change if delivered < count else time.monotonic()) - start
            pids = [p.pid for p in processes] + servers
            cpu = [cpu_seconds(pid) - before for pid, before in zip(pids, cpu_before, strict=True)]
            watcher.stop()
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(15)
        logs["gui"].seek(0)
        reported = sum(int(n) for n in re.findall(rb"lost (\d+) messages", logs["gui"].read()))
        for log in logs.values():
            log.close()
    framing = "batched" if batching else "one INDI message per MQTT message"
    broker = f"mosquitto with {broker_config!r}" if broker_config else "stock mosquitto"
    print(
        f"{chain} -> {broker} -> mqtttoredis, {framing}: delivered {delivered}/{count} "
        f"({delivered / count:.1%}), {delivered / elapsed:,.0f} msg/s, lost {count - delivered}, "
        f"reported lost by mqtttoredis {reported}; CPU seconds: instrument side {cpu[-4]:.1f}, "
        f"mqtttoredis {cpu[-3]:.1f}, redis-server {cpu[-2]:.1f}, mosquitto {cpu[-1]:.1f}"
    )
    if delivered:
        print(cpu_per_message("mqtttoredis", cpu[-3], cpu[-2], delivered))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages in the burst (default 20 000)")
    parser.add_argument("--chains", default="inditomqtt,driverstomqtt", help="comma-separated chains")
    parser.add_argument("--no-batching", action="store_true", help="the original framing: no batching")
    parser.add_argument("--broker-config", default="", help="mosquitto configuration lines (default: none)")
    parser.add_argument("--profile", metavar="FILE", help="run mqtttoredis under cProfile, stats to FILE")
    args = parser.parse_args()
    print(f"bridges: {stack(bridge_python())}")
    for chain in args.chains.split(","):
        config = args.broker_config.replace("\\n", "\n")
        run_chain(chain, args.messages, not args.no_batching, config, args.profile)


if __name__ == "__main__":
    main()
