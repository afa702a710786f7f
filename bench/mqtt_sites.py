"""Twenty observatories on one stock broker: 20 inditomqtt -> one mosquitto -> one mqtttoredis -> Redis.

    .venv/bin/python bench/mqtt_sites.py [--sites 20] [--rate 100] [--seconds 30]
                                         [--ramp] [--step-seconds 10] [--max-rate 3200] [--no-batching]

Each site is an inditomqtt process fed by its own stand-in indiserver (all stand-ins in one
process, ``tests/support/mount_standin.py --servers``) streaming ``--rate`` messages per second
of the realistic mount stream (``setNumberVector``, 6 numbers in ``%010.6m`` sexagesimal, 10
properties).  All go into one mosquitto in its default configuration; one mqtttoredis takes
everything into one Redis, where a subscriber to ``from_indi`` counts each site's numbered
messages and their latency (from the stand-in's timestamp to the publication in Redis).

Prints for the steady run: the offered and delivered rates, the messages lost (numbers missing
between the first and last each site delivered: must be 0) and those mqtttoredis reported lost,
latency p50/p99, and the CPU share (of one core) of mqtttoredis, mosquitto, redis-server, the 20
inditomqtt together and the stand-ins.  ``--ramp`` then doubles the per-site rate every
``--step-seconds`` until something gives (a loss, a delivered rate below 90 % of the offered
one, or a p99 latency above 2 s) or ``--max-rate`` is passed, and says what gave first, at what
total rate, and which process was busiest then.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import cpu_seconds, percentile, start_bridge, what_gave  # noqa: E402

from tests.support.mountstream import StandinServers, StreamWatcher  # noqa: E402
from tests.support.servers import MosquittoProcess, RedisProcess, wait_for  # noqa: E402


@dataclass
class Step:
    """What one measuring window saw."""

    per_site: float
    offered: float
    delivered: float
    lost: int
    reported: int
    p50: float
    p99: float
    cpu: dict[str, float]

    def gave(self) -> str:
        """What gave in this window ('' when nothing did)."""
        return what_gave(
            lost=self.lost,
            reported=self.reported,
            reporter="the bridges (or dropped)",
            delivered=self.delivered,
            offered=self.offered,
            p99=self.p99,
        )

    def line(self) -> str:
        shares = ", ".join(f"{name} {share:.0%}" for name, share in self.cpu.items())
        return (
            f"  {self.per_site:.0f} msg/s per site = {self.offered:,.0f} offered: delivered "
            f"{self.delivered:,.0f} msg/s, lost {self.lost} (reported {self.reported}), latency p50 "
            f"{self.p50 * 1000:.0f} ms p99 {self.p99 * 1000:.0f} ms; CPU (share of a core): {shares}"
        )


class Sites:
    """The servers, the stand-ins, the bridges and the watcher."""

    def __init__(self, sites: int, rate: float, batching: bool, workdir: Path) -> None:
        self.count = sites
        # the subscriber counting arrivals must never be cut off by Redis for lagging (it is not under test)
        self.redis = RedisProcess(extra=["--client-output-buffer-limit", "pubsub 0 0 0"]).start()
        self.broker = MosquittoProcess().start()
        self.standins = StandinServers(sites, rate)
        mqtt = f"indiredis.mqtt_server('127.0.0.1', {self.broker.port})"
        self.gui_log: IO[bytes] = open(workdir / "mqtttoredis.log", "w+b")
        self.instrument_logs: list[IO[bytes]] = [
            open(workdir / f"inditomqtt-{index:02d}.log", "w+b") for index in range(sites)
        ]
        self.instruments = [
            start_bridge(
                "make_inditomqtt",
                f"indiredis.indi_server('127.0.0.1', {port}), 'site{index:02d}', {mqtt}, "
                f"mqtt_batching={batching}",
                self.instrument_logs[index],
            )
            for index, port in enumerate(self.standins.ports)
        ]
        self.gui = start_bridge(
            "make_mqtttoredis",
            f"'gui', {mqtt}, indiredis.redis_server('127.0.0.1', {self.redis.port}), "
            f"mqtt_batching={batching}",
            self.gui_log,
        )
        self.watcher = StreamWatcher(self.redis.port).start()
        rconn = redis.Redis(host="127.0.0.1", port=self.redis.port)
        wait_for(lambda: rconn.scard("indi_devices") >= sites, timeout=120, what=f"{sites} sites in Redis")
        rconn.close()
        self.seen_before: dict[str, int] = {}

    def cpu(self) -> dict[str, float]:
        """CPU seconds used so far by each part."""
        pids = {
            "mqtttoredis": [self.gui.pid],
            "mosquitto": [self.broker.proc.pid] if self.broker.proc else [],
            "redis-server": [self.redis.proc.pid] if self.redis.proc else [],
            f"inditomqtt x{len(self.instruments)}": [p.pid for p in self.instruments],
            "stand-ins": [self.standins.proc.pid],
        }
        return {name: sum(cpu_seconds(pid) for pid in group) for name, group in pids.items()}

    def reported(self) -> int:
        """Messages the bridges said they lost (mqtttoredis, by sequence) or dropped (any, while its far
        side was down)."""
        total = 0
        for log in [self.gui_log, *self.instrument_logs]:
            log.seek(0)
            total += sum(int(n) for n in re.findall(rb"(?:lost|dropped) (\d+) messages", log.read()))
        return total

    def measure(self, per_site: float, seconds: float) -> Step:
        """Stream at ``per_site`` for ``seconds`` and report the window."""
        self.standins.command(f"rate {per_site:g}")
        time.sleep(min(2.0, seconds / 5))  # let the new rate settle before measuring
        self.watcher.take_latencies()
        first_counts = {site: self.watcher.count(site) for site in self._sites()}
        cpu_before, reported_before, start = self.cpu(), self.reported(), time.monotonic()
        time.sleep(seconds)
        elapsed = time.monotonic() - start
        cpu_after = self.cpu()
        latencies = self.watcher.take_latencies()
        delivered = sum(self.watcher.count(site) - first_counts[site] for site in self._sites())
        return Step(
            per_site,
            per_site * self.count,
            delivered / elapsed,
            self.lost(),
            self.reported() - reported_before,
            percentile(latencies, 0.5),
            percentile(latencies, 0.99),
            {name: (cpu_after[name] - cpu_before[name]) / elapsed for name in cpu_after},
        )

    def _sites(self) -> list[str]:
        return [f"Site{index:02d}" for index in range(self.count)]

    def lost(self) -> int:
        """Numbers missing between the first and the last number delivered, over every site."""
        with self.watcher.lock:
            return sum(max(seen) - min(seen) + 1 - len(seen) for seen in self.watcher.seen.values() if seen)

    def stop(self) -> None:
        self.watcher.stop()
        for process in [*self.instruments, self.gui]:
            process.terminate()
        for process in [*self.instruments, self.gui]:
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        self.standins.stop()
        self.broker.__exit__(None, None, None)
        self.redis.__exit__(None, None, None)
        for log in [self.gui_log, *self.instrument_logs]:
            log.close()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sites", type=int, default=20, help="instrument bridges (default 20)")
    parser.add_argument("--rate", type=float, default=100, help="messages per second per site (default 100)")
    parser.add_argument("--seconds", type=float, default=30, help="length of the steady run (default 30)")
    parser.add_argument("--ramp", action="store_true", help="then double the rate until something gives")
    parser.add_argument("--step-seconds", type=float, default=10, help="length of each ramp step")
    parser.add_argument("--max-rate", type=float, default=3200, help="highest per-site rate of the ramp")
    parser.add_argument("--no-batching", action="store_true", help="one INDI message per MQTT message")
    parser.add_argument("--log", help="copy the bridges' logs (warnings and worse) to this file")
    args = parser.parse_args()
    batching = not args.no_batching
    with tempfile.TemporaryDirectory(prefix="mqtt-sites-") as workdir:
        started = time.monotonic()
        sites = Sites(args.sites, args.rate, batching, Path(workdir))
        try:
            print(
                f"{args.sites} sites (inditomqtt each) -> stock mosquitto -> one mqtttoredis -> Redis, "
                f"{'batched' if batching else 'one INDI message per MQTT message'}; ready in "
                f"{time.monotonic() - started:.0f} s"
            )
            steady = sites.measure(args.rate, args.seconds)
            print(f"steady run of {args.seconds:g} s:")
            print(steady.line())
            if sites.watcher.reconnections:
                lapses = sites.watcher.reconnections
                print(
                    f"  (the Redis subscriber counting arrivals lost its subscription {lapses} times: "
                    f"{sites.watcher.last_lapse})"
                )
            if args.ramp:
                print(f"ramp, {args.step_seconds:g} s per step:")
                rate, gave = args.rate * 2, ""
                while rate <= args.max_rate and not gave:
                    step = sites.measure(rate, args.step_seconds)
                    print(step.line())
                    gave = step.gave()
                    if gave:
                        busiest = max(step.cpu.items(), key=lambda item: item[1])
                        print(
                            f"gave first at {step.offered:,.0f} msg/s offered ({rate:g} per site): {gave}; "
                            f"busiest: {busiest[0]} at {busiest[1]:.0%} of a core"
                        )
                    rate *= 2
                if not gave:
                    print(f"nothing gave up to {args.max_rate:g} msg/s per site")
        finally:
            sites.stop()
            if args.log:
                with open(args.log, "wb") as copy:
                    for log in sorted(Path(workdir).glob("*.log")):
                        copy.write(f"== {log.name}\n".encode() + log.read_bytes())


if __name__ == "__main__":
    main()
