#!/usr/bin/env python3
"""Benchmark: a mount's stream into inditoredis — ingest rate and latency of the realistic shape.

The workload of issue 14: one device defines 10 number vectors of 6 numbers each in sexagesimal
format ``%010.6m``; then ``setNumberVector`` messages carrying 6 sexagesimal values each,
round-robin over the 10 properties.  A stand-in indiserver (a TCP listener on 127.0.0.1 in this
process) sends them to a real inditoredis process (a child of its own, so that it does not share
this process's GIL) writing to a real redis-server.

* ingest: ``--messages`` (20 000) sent at once; rate = messages / (first byte sent until the last
  message's timestamp is in Redis);
* latency: messages paced at 50 msg/s and at 1 000 msg/s; each one's latency is the time from its
  write to the socket until its publication on ``from_indi`` arrives (published after its keys are
  written, so that is "in Redis");
* floor: the 50 msg/s latency again with a trivial relay (read each message, PUBLISH it) in place of
  the bridge, on the same interpreter: what process wake-ups and a Redis round trip cost on this
  machine before the bridge does any work (at 50 msg/s every message wakes three idle processes).

Prints messages per second, the CPU time per message of the bridge and of redis-server in the same
run with their ratio (the goal: at most 1, Redis the limit), and latency p50 / p99 per rate, each
with Redis's own time a call of the command it spent the most time in (``INFO commandstats``): the
bridge's ``EVALSHA`` of the key-space script against the relay's ``PUBLISH``; then the latency the
bridge adds over the floor at 50 msg/s (p50 against p50) split into Redis's share (the two times a
call apart) and the bridge's own (the rest).  ``bench/redis_floor.py`` measures Redis's share alone.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import (  # noqa: E402
    bridge_python,
    cpu_per_message,
    cpu_seconds,
    percentile,
    stack,
    start_bridge,
)

from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import RedisProcess, wait_for  # noqa: E402
from tests.support.subscriber import Subscriber  # noqa: E402

DEVICE = "Mount"
PROPERTIES = [f"COORD_{index}" for index in range(10)]
ELEMENTS = ["RA", "DEC", "ALT", "AZ", "HA", "LST"]


def definitions() -> bytes:
    """A defNumberVector per property: 6 numbers in ``%010.6m``."""
    parts = []
    for name in PROPERTIES:
        numbers = "".join(
            f'<defNumber name="{element}" label="{element} (dd:mm:ss)" format="%010.6m" min="-360" '
            f'max="360" step="0">0:00:00</defNumber>'
            for element in ELEMENTS
        )
        parts.append(
            f'<defNumberVector device="{DEVICE}" name="{name}" label="{name}" group="Main Control" '
            f'state="Idle" perm="rw" timeout="60" timestamp="2026-01-01T00:00:00">{numbers}'
            "</defNumberVector>\n"
        )
    return "".join(parts).encode()


def stamp(seq: int) -> str:
    """A unique INDI timestamp per sequence number (so a publication names its message)."""
    seconds, micro = divmod(seq, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    return f"2026-01-01T00:{minutes:02d}:{seconds:02d}.{micro:06d}"


def sexagesimal(value: float) -> str:
    degrees = int(value)
    minutes, seconds = divmod((value - degrees) * 3600, 60)
    return f"{degrees:3d}:{int(minutes):02d}:{seconds:05.2f}"


def set_message(seq: int) -> bytes:
    """The ``seq``-th message: property ``seq % 10``, 6 sexagesimal values, formatted as a driver does."""
    name = PROPERTIES[seq % len(PROPERTIES)]
    values = [sexagesimal((seq * 0.0137 + index * 11.3) % 300) for index in range(len(ELEMENTS))]
    numbers = "".join(
        f'\n  <oneNumber name="{element}">\n{value}\n  </oneNumber>'
        for element, value in zip(ELEMENTS, values, strict=True)
    )
    return (
        f'<setNumberVector device="{DEVICE}" name="{name}" state="Ok" timeout="60" timestamp="{stamp(seq)}">'
        f"{numbers}\n</setNumberVector>\n"
    ).encode()


def arrivals(subscriber: Subscriber) -> dict[int, float]:
    """When each message's publication arrived, by the sequence number in its timestamp."""
    arrived: dict[int, float] = {}
    for now, data in list(subscriber.items):
        at = data.find(b'timestamp="2026-01-01T00:')
        if at >= 0:
            minutes, rest = data[at + 25 : at + 37].decode().split(":")  # mm:ss.ffffff
            seconds, micro = rest.split(".")
            arrived[(int(minutes) * 60 + int(seconds)) * 1_000_000 + int(micro)] = now
    return arrived


class Phase(NamedTuple):
    """What one latency phase measured: its line to print, the median latency, and Redis's own time a
    call of the command it spent the most time in (both in ms)."""

    line: str
    p50: float
    redis_ms: float


def redis_time(rconn: redis.Redis) -> tuple[str, float]:
    """The command Redis spent the most time in since its statistics were reset, and its time a call
    in ms (what Redis's own work adds to each message's latency: the bridge's script, the relay's
    PUBLISH)."""
    stats = rconn.info("commandstats")
    name, top = max(stats.items(), key=lambda item: item[1]["usec"])
    return name.removeprefix("cmdstat_").upper(), float(top["usec_per_call"]) / 1000


def latency_phase(
    fake: FakeIndiServer, subscriber: Subscriber, first: int, count: int, rate: float, rconn: redis.Redis
) -> Phase:
    """Send ``count`` messages paced at ``rate`` and say how long each took to be published."""
    rconn.config_resetstat()
    sent: dict[int, float] = {}
    interval = 1.0 / rate
    next_at = time.perf_counter()
    for seq in range(first, first + count):
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        message = set_message(seq)
        sent[seq] = time.perf_counter()
        fake.send(message)
        next_at += interval
    last = first + count - 1
    try:
        wait_for(lambda: last in arrivals(subscriber), timeout=60, interval=0.05, what="the last publication")
    except TimeoutError:
        pass
    arrived = arrivals(subscriber)
    latencies = [(arrived[s] - sent[s]) * 1000 for s in sent if s in arrived]
    lost = len(sent) - len(latencies)
    p50 = percentile(latencies, 0.5)
    command, redis_ms = redis_time(rconn)
    line = (
        f"latency at {rate:g} msg/s ({count} messages): p50 {p50:.2f} ms, "
        f"p99 {percentile(latencies, 0.99):.2f} ms, max {max(latencies):.2f} ms, lost {lost}; "
        f"in Redis: {command} {redis_ms * 1000:.0f} us a call"
    )
    return Phase(line, p50, redis_ms)


# the least a bridge can do: read each message and PUBLISH it (no parsing, no keys), with redis-py
RELAY = r"""
import asyncio, sys
import redis.asyncio as aioredis
END = b"</setNumberVector>"
async def relay(port, redis_port):
    rconn = aioredis.Redis(host="127.0.0.1", port=redis_port)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"<getProperties version='1.7'/>")
    buffered = b""
    while data := await reader.read(262144):
        buffered += data
        while (end := buffered.find(END)) >= 0:
            message, buffered = buffered[: end + len(END)], buffered[end + len(END) :]
            pipe = rconn.pipeline(transaction=False)
            pipe.publish("from_indi", message)
            await pipe.execute()
asyncio.run(relay(int(sys.argv[1]), int(sys.argv[2])))
"""


def floor_phase(count: int) -> Phase:
    """Latency at 50 msg/s through a trivial relay in place of the bridge: what the machine's
    wake-ups and Redis round trips cost before the bridge does anything."""
    with RedisProcess() as redis_proc, FakeIndiServer() as fake:
        relay = subprocess.Popen([bridge_python(), "-c", RELAY, str(fake.port), str(redis_proc.port)])
        try:
            wait_for(lambda: b"getProperties" in fake.received, timeout=20, what="the relay to connect")
            rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)  # kept: the subscriber uses it
            subscriber = Subscriber(rconn)
            try:
                phase = latency_phase(fake, subscriber, 1, count, 50, rconn)
                return phase._replace(line="floor, a relay that only PUBLISHes each message: " + phase.line)
            finally:
                subscriber.close()
        finally:
            relay.terminate()
            relay.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=20_000, help="messages in the ingest phase")
    parser.add_argument("--slow", type=int, default=500, help="messages at 50 msg/s")
    parser.add_argument("--fast", type=int, default=5_000, help="messages at 1 000 msg/s")
    parser.add_argument("--profile", metavar="FILE", help="run the bridge under cProfile, stats to FILE")
    args = parser.parse_args()

    print(f"bridge: {stack(bridge_python())}; measuring client: {stack(sys.executable)}")
    slow: Phase | None = None
    with RedisProcess() as redis_proc, FakeIndiServer() as fake:
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        hosts = (
            f"indiredis.indi_server('127.0.0.1', {fake.port}), "
            f"indiredis.redis_server('127.0.0.1', {redis_proc.port})"
        )
        bridge = start_bridge("make_inditoredis", hosts, profile=args.profile)
        try:
            wait_for(lambda: b"getProperties" in fake.received, timeout=20, what="inditoredis to connect")
            fake.send(definitions())
            last_property = f"indi_attributes:{PROPERTIES[-1]}:{DEVICE}"
            wait_for(lambda: rconn.exists(last_property), what="the definitions")

            stream = b"".join(set_message(seq) for seq in range(1, args.messages + 1))
            key = f"indi_attributes:{PROPERTIES[args.messages % len(PROPERTIES)]}:{DEVICE}"
            last = stamp(args.messages).encode()
            cpu = cpu_seconds(bridge.pid), cpu_seconds(redis_proc.proc.pid)
            start = time.perf_counter()
            fake.send(stream)
            wait_for(lambda: rconn.hget(key, "timestamp") == last, timeout=600, interval=0.005, what="ingest")
            elapsed = time.perf_counter() - start
            bridge_cpu = cpu_seconds(bridge.pid) - cpu[0]
            redis_cpu = cpu_seconds(redis_proc.proc.pid) - cpu[1]
            print(
                f"ingest: {args.messages} setNumberVector (6 sexagesimal numbers, 10 properties) in "
                f"{elapsed:.2f} s = {args.messages / elapsed:,.0f} msg/s "
                f"(CPU: bridge {bridge_cpu:.2f} s, redis-server {redis_cpu:.2f} s)"
            )
            print(cpu_per_message("inditoredis", bridge_cpu, redis_cpu, args.messages))

            subscriber = Subscriber(rconn)
            try:
                first = args.messages + 1
                for count, rate in ((args.slow, 50), (args.fast, 1000)):
                    if count:
                        phase = latency_phase(fake, subscriber, first, count, rate, rconn)
                        print(phase.line)
                        if rate == 50:
                            slow = phase
                        first += count
            finally:
                subscriber.close()
        finally:
            bridge.terminate()
            bridge.wait(30)
    if slow is not None:
        floor = floor_phase(args.slow)
        print(floor.line)
        added, in_redis = slow.p50 - floor.p50, slow.redis_ms - floor.redis_ms
        print(
            f"added over the floor at 50 msg/s: p50 {added:.2f} ms, of which Redis's own work "
            f"{in_redis:.2f} ms (its time a call, the bridge's against the relay's) and the bridge's "
            f"{added - in_redis:.2f} ms"
        )


if __name__ == "__main__":
    main()
