#!/usr/bin/env python3
"""Benchmark: what Redis alone spends on one message of the realistic mount stream, cold and warm.

The latency a bridge adds over a relay that only PUBLISHes (``bench/inditoredis_realistic.py``)
holds Redis's own work on the message's keys as well as the bridge's: this bench measures that
share alone, with no bridge running.  The messages are the realistic stream's (10 number vectors
of 6 sexagesimal numbers); the store's own model (``KeySpaceModel``) turns each parsed message into
the commands the bridge sends for it, and this process sends them itself, one message a call:

* ``script``: the key-space writes as the bridges send them, one ``EVALSHA`` of the store's
  ``WRITE_BATCH`` script (7 hashes written, 7 history lists pushed when their newest entry differs,
  the publication);
* ``plain``: the same hash writes, history pushes and publication as plain commands in one
  ``MULTI``/``EXEC``, without the check that the newest history entry differs (no script, so no
  Lua and no JSON decoding: what the key space's writes cost Redis at the least);
* ``publish``: the message PUBLISHed alone, the relay's work (the floor's).

Each variant runs paced at 50 msg/s (every call finds Redis idle for 20 ms: caches cold, as at a
mount's pace) and back to back (warm).  Prints Redis's own time a call (``INFO commandstats``:
``EVALSHA``, ``EXEC``, ``PUBLISH``) for each, and what the script takes over a PUBLISH at 50 msg/s:
the part of a bridge's added latency that is Redis's work on the unchanged key space.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from inditoredis_realistic import definitions, set_message  # noqa: E402

from indiredis.protocol.parser import parse_message  # noqa: E402
from indiredis.store.keys import KeySpace  # noqa: E402
from indiredis.store.keyspace import KeySpaceModel  # noqa: E402
from indiredis.store.writes import SCRIPTS, WriteBatch, to_commands  # noqa: E402
from tests.support.servers import RedisProcess  # noqa: E402

CHANNEL = "from_indi"


def message_ops(count: int) -> tuple[list[tuple[object, ...]], list[WriteBatch]]:
    """The commands that define the stream's properties, and one script call per message of the
    stream's first ``count`` (as the bridge makes them at a mount's pace: one message a batch)."""
    model = KeySpaceModel(KeySpace(), CHANNEL)
    writes = model.writes()
    for line in definitions().splitlines():
        model.apply(writes, parse_message(line))
    setup = to_commands(writes.take())
    batches: list[WriteBatch] = []
    for seq in range(count):
        model.apply(writes, parse_message(set_message(seq)))
        ops = writes.take()
        if len(ops) != 1 or not isinstance(ops[0], WriteBatch):
            sys.exit(f"message {seq} made {ops!r}, not one script call")
        batches.append(ops[0])
    return setup, batches


def send_plain(rconn: redis.Redis, batch: WriteBatch) -> None:
    """``batch``'s writes as plain commands in one MULTI/EXEC (history pushed unconditionally)."""
    pipe = rconn.pipeline(transaction=True)
    for item in json.loads(batch.items):
        if len(item) == 5:  # [hash, log, json, length, [field, value ...]]
            key, log_key, payload, length, fields = item
            if fields:
                pipe.execute_command("HSET", key, *fields)
            pipe.lpush(log_key, f"{batch.stamp} {payload}")
            pipe.ltrim(log_key, 0, length - 1)
        elif len(item) == 3:  # [log, json, length]
            log_key, payload, length = item
            pipe.lpush(log_key, f"{batch.stamp} {payload}")
            pipe.ltrim(log_key, 0, length - 1)
        else:  # [data]
            pipe.publish(batch.channel, item[0])
    pipe.execute()


def redis_time_a_call(rconn: redis.Redis, command: str) -> float:
    """Redis's own time a call of ``command`` since the statistics were reset, in microseconds."""
    stats = rconn.info("commandstats").get(f"cmdstat_{command}")
    return float(stats["usec_per_call"]) if stats else float("nan")


def run_variant(rconn: redis.Redis, variant: str, batches: list[WriteBatch], rate: float, sha: str) -> float:
    """Send one call per message of ``batches`` (paced at ``rate``, or back to back when 0; ``sha``: the
    loaded script's); return Redis's time a call of the variant's command."""
    rconn.config_resetstat()
    next_at = time.perf_counter()
    for batch in batches:
        if rate:
            next_at += 1.0 / rate
            time.sleep(max(0.0, next_at - time.perf_counter()))
        if variant == "script":
            rconn.evalsha(sha, 0, batch.stamp, batch.channel, batch.items)
        elif variant == "plain":
            send_plain(rconn, batch)
        else:
            rconn.publish(batch.channel, json.loads(batch.items)[-1][0])
    command = {"script": "evalsha", "plain": "exec", "publish": "publish"}[variant]
    return redis_time_a_call(rconn, command)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=500, help="messages per variant and pace")
    args = parser.parse_args()
    setup, batches = message_ops(args.messages)
    with RedisProcess() as redis_proc:
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        print(f"redis-server {rconn.info('server')['redis_version']}, {args.messages} messages a variant")
        sha = rconn.script_load(SCRIPTS["batch"])  # kept by FLUSHALL; the setup calls it too
        paced: dict[str, float] = {}
        for rate, label in ((50.0, "at 50 msg/s (cold)"), (0.0, "back to back (warm)")):
            for variant in ("script", "plain", "publish"):
                rconn.flushall()  # the history lists start again from the same state for each variant
                for command in setup:
                    rconn.execute_command(*command)
                us = run_variant(rconn, variant, batches, rate, sha)
                if rate:
                    paced[variant] = us
                print(f"{label:>20} {variant:>8}: {us:6.0f} us a call in Redis")
        script, plain = paced["script"] - paced["publish"], paced["plain"] - paced["publish"]
        print(
            f"at 50 msg/s Redis spends {script:.0f} us a message more on the key space's script than on a "
            f"PUBLISH ({plain:.0f} us more for its writes without a script)"
        )


if __name__ == "__main__":
    main()
