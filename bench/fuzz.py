#!/usr/bin/env python3
"""Fuzz benchmark: a million generated inputs through the parser and the Redis store.

Inputs are INDI 1.7 messages from a small corpus, mutated at random: bytes
flipped, inserted or cut, hostile tokens spliced in (DTDs, entities, CDATA,
unknown and nested tags, invalid UTF-8, NUL), attributes blown up, BLOBs with
lying sizes, broken base64 and hostile names.  Each input is fed to one
long-lived stream parser in random-sized reads; every valid message is applied
to a real redis-server through the store, in batches.  Invariants are checked
as it goes: the parser never raises and its buffer stays bounded, the store
never raises, every Redis key stays under the key prefix, every BLOB file
stays in the blob folder.

Prints inputs per second and peak RSS.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import indiredis  # noqa: E402
from indiredis.links.client_side.redisside import aclose  # noqa: E402
from indiredis.protocol import IndiStreamParser, Message  # noqa: E402
from indiredis.store import RedisStore  # noqa: E402
from tests.support.servers import RedisProcess  # noqa: E402

CORPUS = [
    b'<defNumberVector device="Tel" name="EQ" state="Idle" perm="rw" timeout="60" label="Eq" group="Main">'
    b'<defNumber name="RA" format="%010.6m" min="0" max="24" step="0">12.5</defNumber>'
    b'<defNumber name="DEC" format="%9.6m" min="-90" max="90" step="0">-5:30</defNumber></defNumberVector>',
    b'<setNumberVector device="Tel" name="EQ" state="Busy"><oneNumber name="RA">13.25</oneNumber>'
    b"</setNumberVector>",
    b'<defSwitchVector device="Tel" name="CONNECTION" state="Idle" perm="rw" rule="OneOfMany">'
    b'<defSwitch name="CONNECT">Off</defSwitch><defSwitch name="DISCONNECT">On</defSwitch></defSwitchVector>',
    b'<setSwitchVector device="Tel" name="CONNECTION"><oneSwitch name="CONNECT">On</oneSwitch>'
    b"</setSwitchVector>",
    b'<defTextVector device="Cam" name="INFO" state="Ok" perm="ro">'
    b'<defText name="T">hello &amp; bye</defText></defTextVector>',
    b'<setTextVector device="Cam" name="INFO"><oneText name="T">x</oneText></setTextVector>',
    b'<defLightVector device="Cam" name="L" state="Idle"><defLight name="A">Ok</defLight></defLightVector>',
    b'<setLightVector device="Cam" name="L"><oneLight name="A">Alert</oneLight></setLightVector>',
    b'<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro"><defBLOB name="IMG"/></defBLOBVector>',
    b'<setBLOBVector device="Cam" name="CCD1" state="Ok">'
    b'<oneBLOB name="IMG" size="3" format=".fits">AQID</oneBLOB></setBLOBVector>',
    b'<setBLOBVector device="Cam" name="CCD1">'
    b'<oneBLOB name="IMG" size="5" format=".fits.z">eJzLSM3JyQcABiwCFQ==</oneBLOB></setBLOBVector>',
    b'<message device="Tel" message="slewing"/>',
    b'<message message="system"/>',
    b'<delProperty device="Tel" name="EQ"/>',
    b'<delProperty device="Cam"/>',
]
HOSTILE = [
    b"<!DOCTYPE x [<!ENTITY a 'aaaa'>]>",
    b"&a;",
    b"&#0;",
    b"<![CDATA[x]]>",
    b"<x>",
    b"</x>",
    b"<",
    b">",
    b"\x00",
    b"\xff\xfe",
    b"<!--",
    b"-->",
    b"<?xml",
    b'"',
    b"'",
    b"<setNumberVector device='Tel' name='EQ'>",
    b' device="../../etc"',
    b' name="a:b"',
    b' format="/../../x.z"',
    b' size="-1"',
    b"!!!notbase64",
    b"=" * 3,
    b"A" * 5000,
    b"<message device='" + b"D" * 3000 + b"'/>",
]


def mutate(rng: random.Random) -> bytes:
    data = bytearray(rng.choice(CORPUS))
    for _ in range(rng.randint(0, 3)):
        op = rng.random()
        pos = rng.randint(0, len(data))
        if op < 0.25:
            data[pos:pos] = rng.choice(HOSTILE)
        elif op < 0.45 and data:
            data[rng.randrange(len(data))] = rng.randrange(256)
        elif op < 0.6:
            del data[pos : pos + rng.randint(1, 20)]
        elif op < 0.7:
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif op < 0.8:
            data = data[:pos]  # truncated
        else:
            pass  # left valid
    return bytes(data)


async def run(inputs: int, seed: int, redis_port: int, folder: Path) -> tuple[int, int, int]:
    rng = random.Random(seed)
    conn = aioredis.Redis(host="127.0.0.1", port=redis_port)
    server = indiredis.redis_server(host="127.0.0.1", port=redis_port, keyprefix="fuzz_")
    store = RedisStore(server, blob_folder=str(folder))
    limit = 64 * 1024
    parser = IndiStreamParser(max_message_size=limit)
    applied = malformed = 0
    batch: list[Message] = []
    for index in range(inputs):
        data = mutate(rng)
        pos = 0
        while pos < len(data):
            step = rng.randint(1, 4096)
            for event in parser.feed(data[pos : pos + step]):
                if isinstance(event, Message):
                    batch.append(event)
                else:
                    malformed += 1
            pos += step
            assert parser.buffered <= limit + 4096 + 64, parser.buffered
        if len(batch) >= 200:
            await store.apply(conn, batch)
            applied += len(batch)
            batch = []
        if index % 200_000 == 0 and index:
            print(f"  {index:,} inputs ...", flush=True)
    await store.apply(conn, batch)
    applied += len(batch)
    async for key in conn.scan_iter(count=1000):
        assert key.startswith(b"fuzz_"), key
    await aclose(conn)
    for path in folder.iterdir():
        assert path.parent == folder.resolve()
    return applied, malformed, len(list(folder.iterdir()))


class CountingHandler(logging.Handler):
    """Counts log lines instead of printing a million of them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


def main() -> None:
    counter = CountingHandler()
    logging.getLogger("indiredis").addHandler(counter)
    logging.getLogger("indiredis").propagate = False
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with RedisProcess() as redis_proc, tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        applied, malformed, files = asyncio.run(run(args.inputs, args.seed, redis_proc.port, Path(tmp)))
        elapsed = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{args.inputs:,} inputs in {elapsed:.1f} s = {args.inputs / elapsed:,.0f} inputs/s; "
        f"{applied:,} messages applied to Redis, {malformed:,} malformed pieces skipped, {files} BLOB files; "
        f"{counter.count:,} store log lines; peak RSS {peak_mb:.0f} MB; invariants held"
    )


if __name__ == "__main__":
    main()
