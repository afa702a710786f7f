"""The central side alone: N simulated sites -> one stock mosquitto -> K mqtttoredis -> one Redis.

    .venv/bin/python bench/central.py [--sites 20] [--rate 100] [--processes 1 2] [--step-seconds 8]
                                      [--max-rate 3200]

One light publisher process (this file with ``--publish``) speaks this project's MQTT framing
(:mod:`indiredis.protocol.mqttframing`) for ``--sites`` sites, one MQTT client each (QoS 2, as the
instrument sides publish), so that the machine's cores go to the central side rather than to
twenty instrument bridges: every 50 ms each site publishes one sequenced payload of the realistic
mount stream (``setNumberVector``, 10 properties of 6 numbers in ``%010.6m`` sexagesimal), and
answers a client side's ``getProperties`` with its definitions.  The sites are shared between K
``mqtttoredis`` processes by ``subscribe_list`` (site i to process i mod K), each writing under its
own key prefix and channels into one Redis, where subscribers count every numbered message and its
latency (from the payload's build time to its publication in Redis).

For each K, the per-site rate starts at ``--rate`` and doubles every ``--step-seconds`` until
something gives (a message lost, delivery below 90 % of the offered rate, or a p99 latency above
2 s) or ``--max-rate`` is passed.  Each step prints the offered and delivered rates, the loss,
latency p50/p99 and the CPU per delivered message of each process, over every site's messages
(mosquitto, each mqtttoredis: with K processes each handles 1/K of them, redis-server, and the
publisher and this process's counting subscribers for reference); then
the highest rate delivered with nothing lost, and which process was busiest where it gave.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import cpu_seconds, percentile, start_bridge, what_gave  # noqa: E402

from tests.support import mountstream  # noqa: E402

TICK = 0.05  # seconds between a site's payloads, as a bridge packs a steady stream


# -- the publisher (a process of its own) -------------------------------------------------------------


class SimulatedSite:
    """One site's numbered stream on ``from_indi/<id>``, framed as an instrument side frames it."""

    def __init__(self, index: int, port: int) -> None:
        import paho.mqtt.client as mqtt

        from indiredis.protocol.mqttframing import new_session_id

        self.id = f"site{index:02d}"
        self.device = f"Site{index:02d}"
        self.topic = f"from_indi/{self.id}"
        self.session = new_session_id()
        self.seq = 1  # the next framing number (INDI messages, definitions included)
        self.stream = 0  # the mount stream's last message number
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.id)
        self.client.max_queued_messages_set(0)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def publish(self, messages: list[bytes]) -> None:
        """One sequenced payload holding ``messages``."""
        from indiredis.protocol.mqttframing import FrameHeader, encode_header

        with self.lock:
            header = encode_header(FrameHeader(self.session, self.seq, len(messages)))
            self.seq += len(messages)
            self.client.publish(self.topic, header + b"".join(messages), qos=2)

    def define(self) -> None:
        """The 10 definitions with their current values, as a driver answers getProperties."""
        with self.lock:
            last = self.stream
        self.publish([line + b"\n" for line in mountstream.definitions(self.device, last).splitlines()])

    def tick(self, due: int) -> None:
        """Publish the stream's messages up to number ``due``."""
        with self.lock:
            first, self.stream = self.stream + 1, max(self.stream, due)
        if due >= first:
            self.publish([mountstream.set_message(self.device, seq) for seq in range(first, due + 1)])


def publish(sites: int, port: int) -> None:
    """The publisher: ``sites`` sites streaming at the rate read from stdin (``rate R`` per site)."""
    import paho.mqtt.client as mqtt

    simulated = [SimulatedSite(index, port) for index in range(sites)]
    requests = threading.Event()

    def on_message(client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        if b"getProperties" in message.payload:
            requests.set()

    listener = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sites-listener")
    listener.on_message = on_message
    listener.connect("127.0.0.1", port)
    listener.subscribe("to_indi/#", qos=2)
    listener.loop_start()
    rate = [0.0]

    def read_commands() -> None:
        for line in sys.stdin:
            if line.startswith("rate "):
                rate[0] = float(line.split()[1])

    threading.Thread(target=read_commands, daemon=True).start()
    for site in simulated:  # as an instrument side does on connecting (its indiserver answers it)
        site.define()
    print("READY", flush=True)
    base, counted = time.monotonic(), 0.0
    while True:
        if requests.is_set():
            requests.clear()
            for site in simulated:
                site.define()
        now = time.monotonic()
        counted += rate[0] * (now - base)
        base = now
        for site in simulated:
            site.tick(int(counted))
        time.sleep(TICK)


# -- the bench ----------------------------------------------------------------------------------------


@dataclass
class Step:
    """What one measuring window saw."""

    offered: float
    delivered: float
    lost: int
    reported: int
    p50: float
    p99: float
    cpu_per_message: dict[str, float]  # microseconds of CPU per delivered message
    cpu_share: dict[str, float]  # share of one core

    def gave(self) -> str:
        return what_gave(
            lost=self.lost,
            reported=self.reported,
            reporter="mqtttoredis",
            delivered=self.delivered,
            offered=self.offered,
            p99=self.p99,
        )

    def line(self) -> str:
        costs = ", ".join(
            f"{name} {self.cpu_per_message[name]:.0f} µs ({self.cpu_share[name]:.0%})"
            for name in self.cpu_per_message
        )
        return (
            f"  offered {self.offered:,.0f} msg/s: delivered {self.delivered:,.0f} msg/s, lost {self.lost}, "
            f"p50 {self.p50 * 1000:.0f} ms p99 {self.p99 * 1000:.0f} ms; CPU per message (share of a "
            f"core): {costs}"
        )


class Central:
    """mosquitto, Redis, K mqtttoredis, the publisher and the counting subscribers."""

    def __init__(self, sites: int, processes: int, workdir: Path) -> None:
        from tests.support.servers import MosquittoProcess, RedisProcess

        self.sites, self.processes = sites, processes
        self.guis: list[subprocess.Popen[bytes]] = []
        self.watchers: list[mountstream.StreamWatcher] = []
        self.logs: list[IO[bytes]] = []
        self.publisher: subprocess.Popen[bytes] | None = None
        self.redis = RedisProcess(extra=["--client-output-buffer-limit", "pubsub 0 0 0"])
        self.broker = MosquittoProcess()
        try:
            self._start(sites, processes, workdir)
        except BaseException:
            self.stop()
            raise

    def _start(self, sites: int, processes: int, workdir: Path) -> None:
        from tests.support.servers import wait_for

        self.redis.start()
        self.broker.start()
        mqtt = f"indiredis.mqtt_server('127.0.0.1', {self.broker.port})"
        for k in range(processes):
            served = [f"site{i:02d}" for i in range(sites) if i % processes == k]
            log = open(workdir / f"mqtttoredis-{k}.log", "w+b")
            self.logs.append(log)
            self.guis.append(
                start_bridge(
                    "make_mqtttoredis",
                    f"'central-{k}', {mqtt}, indiredis.redis_server('127.0.0.1', {self.redis.port}, "
                    f"keyprefix='k{k}_', to_indi_channel='k{k}_to', from_indi_channel='k{k}_from'), "
                    f"blob_folder={str(workdir / f'blobs-{k}')!r}, subscribe_list={served!r}",
                    log,
                )
            )
            self.watchers.append(mountstream.StreamWatcher(self.redis.port, f"k{k}_from").start())
        self.publisher = subprocess.Popen(
            [sys.executable, __file__, "--publish", "--sites", str(sites), "--port", str(self.broker.port)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            cwd=ROOT,
        )
        assert self.publisher.stdout is not None
        if self.publisher.stdout.readline().strip() != b"READY":
            raise RuntimeError("the publisher did not start")
        import redis

        rconn = redis.Redis(host="127.0.0.1", port=self.redis.port)
        wait_for(
            lambda: sum(rconn.scard(f"k{k}_devices") for k in range(processes)) >= sites,
            timeout=60,
            what=f"{sites} sites in Redis",
        )
        rconn.close()

    def set_rate(self, per_site: float) -> None:
        assert self.publisher is not None and self.publisher.stdin is not None
        self.publisher.stdin.write(f"rate {per_site:g}\n".encode())
        self.publisher.stdin.flush()

    def pids(self) -> dict[str, int]:
        named = {"mosquitto": self.broker.proc.pid, "redis-server": self.redis.proc.pid}  # type: ignore[union-attr]
        named |= {f"mqtttoredis {k}": gui.pid for k, gui in enumerate(self.guis)}
        named |= {"publisher (ref)": self.publisher.pid if self.publisher else 0}
        return named

    def cpu(self) -> dict[str, float]:
        cpu = {name: cpu_seconds(pid) for name, pid in self.pids().items()}
        cpu["bench subscribers (ref)"] = time.process_time()
        return cpu

    def count(self) -> int:
        return sum(w.count() for w in self.watchers)

    def lost(self) -> int:
        total = 0
        for watcher in self.watchers:
            with watcher.lock:
                total += sum(max(s) - min(s) + 1 - len(s) for s in watcher.seen.values() if s)
        return total

    def reported(self) -> int:
        total = 0
        for log in self.logs:
            log.seek(0)
            total += sum(int(n) for n in re.findall(rb"lost (\d+) messages", log.read()))
        return total

    def measure(self, per_site: float, seconds: float) -> Step:
        self.set_rate(per_site)
        time.sleep(min(2.0, seconds / 4))  # let the new rate settle before measuring
        for watcher in self.watchers:
            watcher.take_latencies()
        count, cpu, reported, start = self.count(), self.cpu(), self.reported(), time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        delivered = self.count() - count
        after = self.cpu()
        latencies = [x for watcher in self.watchers for x in watcher.take_latencies()]
        used = {name: after[name] - cpu[name] for name in after}
        return Step(
            per_site * self.sites,
            delivered / elapsed,
            self.lost(),
            self.reported() - reported,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            {name: 1e6 * seconds_used / max(delivered, 1) for name, seconds_used in used.items()},
            {name: seconds_used / elapsed for name, seconds_used in used.items()},
        )

    def stop(self) -> None:
        if self.publisher is not None:
            self.publisher.kill()
            self.publisher.wait(10)
        for watcher in self.watchers:
            watcher.stop()
        for gui in self.guis:
            gui.terminate()
        for gui in self.guis:
            try:
                gui.wait(15)
            except subprocess.TimeoutExpired:
                gui.kill()
        self.broker.__exit__(None, None, None)
        self.redis.__exit__(None, None, None)
        for log in self.logs:
            log.close()


def ramp(args: argparse.Namespace, processes: int) -> None:
    """One K: the ramp, and its summary."""
    with tempfile.TemporaryDirectory(prefix="central-") as workdir:
        central = Central(args.sites, processes, Path(workdir))
        try:
            print(f"K = {processes} mqtttoredis, {args.sites} sites, {args.step_seconds:g} s per step:")
            rate, best, gave = args.rate, 0.0, ""
            while rate <= args.max_rate and not gave:
                step = central.measure(rate, args.step_seconds)
                print(step.line(), flush=True)
                gave = step.gave()
                if gave:
                    busiest = max(
                        ((n, s) for n, s in step.cpu_share.items() if "(ref)" not in n),
                        key=lambda item: item[1],
                    )
                    print(
                        f"  gave at {step.offered:,.0f} msg/s offered: {gave}; busiest: {busiest[0]} at "
                        f"{busiest[1]:.0%} of a core"
                    )
                else:
                    best = max(best, step.delivered)
                rate *= 2
            print(
                f"K = {processes}: {best:,.0f} msg/s delivered into Redis with 0 lost"
                + ("" if gave else f" (nothing gave up to {args.max_rate:g} msg/s per site)")
            )
        finally:
            central.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=20, help="simulated sites (default 20)")
    parser.add_argument("--rate", type=float, default=100, help="first per-site rate, msg/s (default 100)")
    parser.add_argument("--processes", type=int, nargs="+", default=[1, 2], help="values of K (default 1 2)")
    parser.add_argument("--step-seconds", type=float, default=8, help="length of each step (default 8)")
    parser.add_argument("--max-rate", type=float, default=3200, help="highest per-site rate (default 3200)")
    parser.add_argument("--publish", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.publish:
        publish(args.sites, args.port)
        return
    for processes in args.processes:
        ramp(args, processes)


if __name__ == "__main__":
    main()
