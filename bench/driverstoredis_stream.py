#!/usr/bin/env python3
"""Benchmark: messages per second from a driver run by driverstoredis into Redis.

A blaster driver (a small script written to a temporary folder, run by the bridge as a child
process over stdin/stdout like any INDI driver) defines one number vector; when a client sets its
``GO`` switch (published on Redis ``to_indi``, routed by the DriverPool to the driver) it writes
``--messages`` setNumberVector messages to stdout as fast as it can.  The bridge is a real
``driverstoredis`` process writing to a real redis-server.

Prints the rate: messages / (time from publishing GO until the last message's value is in Redis).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import start_bridge  # noqa: E402

from tests.support.servers import RedisProcess, wait_for  # noqa: E402

BLASTER = """#!{python}
import sys
sys.path.insert(0, {bench!r})
from benchbridge import serve_stand_in_driver
from inditoredis_stream import DEF, set_message
GO = (b'<defSwitchVector device="Bench" name="GO" state="Idle" perm="rw" rule="AtMostOne" timeout="0">'
      b'<defSwitch name="START">Off</defSwitch></defSwitchVector>\\n')
def burst():
    batch = []
    for seq in range(1, {count} + 1):
        batch.append(set_message(seq))
        if len(batch) == 1000:
            yield b"".join(batch)
            batch = []
    yield b"".join(batch)
serve_stand_in_driver(DEF + GO, burst)
"""


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--messages", type=int, default=100_000, help="setNumberVector messages the driver writes"
    )
    args = parser.parse_args()

    with RedisProcess() as redis_proc, tempfile.TemporaryDirectory() as folder:
        driver = Path(folder) / "indi_bench_blaster"
        driver.write_text(
            BLASTER.format(python=sys.executable, bench=str(ROOT / "bench"), count=args.messages)
        )
        driver.chmod(0o755)
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        bridge = start_bridge(
            "make_driverstoredis",
            f"[{str(driver)!r}], indiredis.redis_server('127.0.0.1', {redis_proc.port})",
        )
        try:
            key = "indi_elementattributes:SEQ:COORD:Bench"
            wait_for(
                lambda: rconn.hget(key, "value") == b"0" and rconn.exists("indi_attributes:GO:Bench"),
                timeout=20,
                what="the driver's definitions",
            )
            last = str(args.messages).encode()
            start = time.perf_counter()
            rconn.publish(
                "to_indi",
                '<newSwitchVector device="Bench" name="GO"><oneSwitch name="START">On</oneSwitch>'
                "</newSwitchVector>",
            )
            wait_for(
                lambda: rconn.hget(key, "value") == last, timeout=600, interval=0.01, what="the last message"
            )
            elapsed = time.perf_counter() - start
            print(
                f"driverstoredis: {args.messages} setNumberVector from a driver's stdout to Redis"
                f" in {elapsed:.2f} s"
                f" = {args.messages / elapsed:,.0f} messages/s"
            )
        finally:
            bridge.terminate()
            bridge.wait(10)


if __name__ == "__main__":
    main()
