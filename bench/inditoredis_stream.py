#!/usr/bin/env python3
"""Benchmark: replay a generated INDI stream into inditoredis and measure rate and latency.

A stand-in indiserver (a TCP listener in this process) sends one
defNumberVector and then N setNumberVector messages to a real inditoredis
process, which writes to a real redis-server.  Two phases:

* throughput: all N messages at once; rate = N / (time from the first byte sent
  until the last message's value is in Redis);
* latency: messages paced at ``--rate`` per second; each one's latency is the time
  from its write to the socket until its publication on ``from_indi`` arrives
  (it is published after its keys are written, so that is "in Redis").

Prints messages per second and the median / p99 latency.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import start_bridge  # noqa: E402

from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import RedisProcess, wait_for  # noqa: E402

DEF = (
    b'<defNumberVector device="Bench" name="COORD" state="Idle" perm="rw" timeout="0">'
    b'<defNumber name="SEQ" format="%.0f" min="0" max="1e9" step="1">0</defNumber>'
    b'<defNumber name="RA" format="%010.6m" min="0" max="24" step="0">0</defNumber></defNumberVector>\n'
)


def set_message(seq: int) -> bytes:
    return (
        f'<setNumberVector device="Bench" name="COORD" state="Ok" timestamp="2026-01-01T00:00:00">'
        f'<oneNumber name="SEQ">{seq}</oneNumber><oneNumber name="RA">{seq % 24}.5</oneNumber>'
        f"</setNumberVector>\n"
    ).encode()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000, help="messages in the throughput phase")
    parser.add_argument("--latency-messages", type=int, default=3000, help="messages in the latency phase")
    parser.add_argument("--rate", type=float, default=1000, help="paced rate of the latency phase (msg/s)")
    args = parser.parse_args()

    with RedisProcess() as redis_proc, FakeIndiServer() as fake:
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        bridge = start_bridge(
            "make_inditoredis",
            f"indiredis.indi_server('127.0.0.1', {fake.port}),"
            f" indiredis.redis_server('127.0.0.1', {redis_proc.port})",
        )
        try:
            wait_for(lambda: b"getProperties" in fake.received, timeout=20, what="inditoredis to connect")
            fake.send(DEF)
            key = "indi_elementattributes:SEQ:COORD:Bench"
            wait_for(lambda: rconn.hget(key, "value") == b"0", what="definition")

            # throughput
            stream = b"".join(set_message(i) for i in range(1, args.messages + 1))
            last = str(args.messages).encode()
            start = time.perf_counter()
            fake.send(stream)
            wait_for(
                lambda: rconn.hget(key, "value") == last, timeout=600, interval=0.01, what="the last message"
            )
            elapsed = time.perf_counter() - start
            print(
                f"throughput: {args.messages} setNumberVector in {elapsed:.2f} s"
                f" = {args.messages / elapsed:,.0f} messages/s"
            )

            # latency
            sent: dict[int, float] = {}
            received: dict[int, float] = {}
            pubsub = rconn.pubsub(ignore_subscribe_messages=True)
            pubsub.subscribe("from_indi")
            wait_for(lambda: rconn.pubsub_numsub("from_indi")[0][1] >= 1, what="subscription")
            done = threading.Event()

            def listen() -> None:
                first = args.messages + 1
                while len(received) < args.latency_messages:
                    item = pubsub.get_message(timeout=1.0)
                    if item is None:
                        continue
                    now = time.perf_counter()
                    data = item["data"]
                    seq = int(data.split(b'name="SEQ">', 1)[1].split(b"<", 1)[0])
                    if seq >= first:
                        received[seq] = now
                done.set()

            threading.Thread(target=listen, daemon=True).start()
            interval = 1.0 / args.rate
            next_at = time.perf_counter()
            for seq in range(args.messages + 1, args.messages + 1 + args.latency_messages):
                while time.perf_counter() < next_at:
                    time.sleep(max(0.0, next_at - time.perf_counter()) / 2)
                sent[seq] = time.perf_counter()
                fake.send(set_message(seq))
                next_at += interval
            done.wait(60)
            latencies = sorted((received[s] - sent[s]) * 1000 for s in sent if s in received)
            lost = len(sent) - len(latencies)
            p99 = latencies[int(len(latencies) * 0.99) - 1]
            print(
                f"latency at {args.rate:.0f} msg/s: median {statistics.median(latencies):.2f} ms, "
                f"p99 {p99:.2f} ms, max {latencies[-1]:.2f} ms, lost {lost}"
            )
        finally:
            bridge.terminate()
            bridge.wait(10)


if __name__ == "__main__":
    main()
