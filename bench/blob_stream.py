#!/usr/bin/env python3
"""Benchmark: large BLOBs into the blob folder — MiB/s and the bridge's peak memory.

For each bridge (inditoredis behind a stand-in indiserver on 127.0.0.1, driverstoredis running a stand-in
driver, and the MQTT chain ``mqtt``: inditomqtt behind the stand-in indiserver, a stock mosquitto and
mqtttoredis, each bridge a process of its own) and each size (50 MiB and 500 MiB by default), one
``setBLOBVector`` whose ``oneBLOB`` carries the size in base64 wrapped at 72 characters a line, as
drivers send it, goes through a real bridge process (a child of its own) into a blob folder, with a real
redis-server.

The MQTT chain carries a BLOB of at most about 190 MiB (its base64 in one MQTT message, whose size
MQTT limits to 256 MiB), so it skips the 500 MiB size.  The CPU seconds printed are those of the bridge
that decodes (mqtttoredis on the MQTT chain); the base64 decoder in use (pybase64 or binascii) is
printed first.

Prints, per run: MiB/s from the first byte sent until the file is in place (its ``filepath`` in
Redis, written once the file is fsync'ed, named and its folder fsync'ed), and the bridge's
peak resident memory (VmHWM from ``/proc/<pid>/status``; each run is a fresh bridge process).

The reference, measured in the same run right before each bridge run: this machine's own ``base64 -d``
(coreutils) decoding the same base64 text (read from a file in the page cache) into a file in the
blob folder; the line gives the ratio of the bridge's MiB/s to it (absolute MiB/s vary twofold on shared
machines, the ratio less), the median of ``--repeat`` runs (each with its own reference) and every
run's ratio.
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import cpu_seconds, peak_rss_mib, start_bridge  # noqa: E402

from indiredis.store import base64strict  # noqa: E402
from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import MosquittoProcess, RedisProcess, wait_for  # noqa: E402

MIB = 1024 * 1024
MQTT_LIMIT = 256 * MIB  # the largest MQTT message: a BLOB's base64 must fit in it
Run = tuple[float, float, float]  # MiB/s, bridge CPU seconds, bridge peak RSS in MiB
LINE = 54  # raw bytes per 72-character base64 line
BLOCK = LINE * 20_000  # raw bytes per repeated block (about 1 MiB)

DEFINE = (
    b'<defBLOBVector device="Camera" name="CCD1" label="Image" group="Image" state="Idle" perm="ro" '
    b'timeout="60" timestamp="2026-01-01T00:00:00"><defBLOB name="CCD1" label="Image"/></defBLOBVector>\n'
)
GO = (
    b'<defSwitchVector device="Camera" name="GO" state="Idle" perm="rw" rule="AtMostOne" timeout="0">'
    b'<defSwitch name="EXPOSE">Off</defSwitch></defSwitchVector>\n'
)
FILEPATH_KEY = "indi_elementattributes:CCD1:CCD1:Camera"


def wrapped(data: bytes) -> bytes:
    """Base64 of ``data`` (a multiple of 54 bytes but for the last piece), 72 characters a line."""
    encoded = base64.b64encode(data)
    return b"".join(encoded[i : i + 72] + b"\n" for i in range(0, len(encoded), 72))


def blob_text(size: int, seed: bytes) -> Iterator[bytes]:
    """The base64 text of ``size`` bytes made of ``seed`` repeated, in pieces of about 1.3 MiB."""
    block = (seed * (BLOCK // len(seed) + 1))[:BLOCK]
    text = wrapped(block)
    whole, rest = divmod(size, BLOCK)
    for _ in range(whole):
        yield text
    if rest:
        yield wrapped(block[:rest])


def blob_message(size: int, seed: bytes) -> Iterator[bytes]:
    """The setBLOBVector of ``size`` bytes, in pieces of about 1.3 MiB (never held whole)."""
    yield (
        '<setBLOBVector device="Camera" name="CCD1" state="Ok" timeout="60" '
        'timestamp="2026-01-01T00:00:01">\n'
        f'  <oneBLOB name="CCD1" size="{size}" format=".fits">\n'
    ).encode()
    yield from blob_text(size, seed)
    yield b"  </oneBLOB>\n</setBLOBVector>\n"


def reference_rate(size: int, seed: bytes, folder: str) -> float:
    """MiB/s of this machine's ``base64 -d`` decoding the same text into a file in ``folder`` (the text
    is written to a file first and read once, so that it is read from the page cache)."""
    with tempfile.NamedTemporaryFile(dir=folder, prefix="reference-", suffix=".b64") as text:
        for piece in blob_text(size, seed):
            text.write(piece)
        text.flush()
        out = Path(folder) / "reference.out"
        with open(text.name, "rb") as source:
            while source.read(16 * MIB):
                pass
        with open(text.name, "rb") as source, open(out, "wb") as target:
            start = time.perf_counter()
            subprocess.run(["base64", "-d"], stdin=source, stdout=target, check=True)
            elapsed = time.perf_counter() - start
        if out.stat().st_size != size:
            raise SystemExit(f"base64 -d wrote {out.stat().st_size} bytes, not {size}")
        out.unlink()
    return size / MIB / elapsed


def measure(
    bridge: subprocess.Popen[bytes],
    rconn: redis.Redis,
    size: int,
    prepare: Callable[[], None],
    send: Callable[[], object],
    others: tuple[subprocess.Popen[bytes], ...] = (),
) -> Run:
    """After ``prepare()``: MiB/s from ``send()`` until the file is in place, the bridge's CPU seconds
    and peak RSS; the bridge (and ``others``, the other bridges of its chain) is stopped in any case."""
    try:
        prepare()
        cpu = cpu_seconds(bridge.pid)
        start = time.perf_counter()
        send()
        wait_for_file(rconn, size).unlink()
        elapsed = time.perf_counter() - start
        return size / MIB / elapsed, cpu_seconds(bridge.pid) - cpu, peak_rss_mib(bridge.pid)
    finally:
        for process in (bridge, *others):
            process.terminate()
        for process in (bridge, *others):
            process.wait(30)


def wait_for_file(rconn: redis.Redis, size: int) -> Path:
    wait_for(lambda: rconn.hget(FILEPATH_KEY, "filepath"), timeout=600, interval=0.002, what="the file")
    path = Path(rconn.hget(FILEPATH_KEY, "filepath").decode())  # type: ignore[union-attr]
    if path.stat().st_size != size:
        raise SystemExit(f"{path} has {path.stat().st_size} bytes, not {size}")
    return path


def run_inditoredis(size: int, folder: str, seed: bytes, profile: str | None = None) -> Run:
    with RedisProcess() as redis_proc, FakeIndiServer() as fake:
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        hosts = (
            f"indiredis.indi_server('127.0.0.1', {fake.port}), "
            f"indiredis.redis_server('127.0.0.1', {redis_proc.port}), blob_folder={folder!r}"
        )
        bridge = start_bridge("make_inditoredis", hosts, profile=profile)

        def prepare() -> None:
            wait_for(lambda: b"getProperties" in fake.received, timeout=20, what="inditoredis to connect")
            fake.send(DEFINE)
            wait_for(lambda: b"enableBLOB" in fake.received, what="enableBLOB")

        def send() -> None:
            for piece in blob_message(size, seed):
                fake.send(piece)

        return measure(bridge, rconn, size, prepare, send)


def run_mqtt(size: int, folder: str, seed: bytes) -> Run:
    """inditomqtt (behind the stand-in indiserver) -> mosquitto -> mqtttoredis (which decodes)."""
    with RedisProcess() as redis_proc, MosquittoProcess() as broker, FakeIndiServer() as fake:
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        mqtt = f"indiredis.mqtt_server('127.0.0.1', {broker.port})"
        instrument = start_bridge(
            "make_inditomqtt", f"indiredis.indi_server('127.0.0.1', {fake.port}), 'benchsite', {mqtt}"
        )
        bridge = start_bridge(
            "make_mqtttoredis",
            f"'benchgui', {mqtt}, indiredis.redis_server('127.0.0.1', {redis_proc.port}), "
            f"blob_folder={folder!r}",
        )

        def prepare() -> None:
            wait_for(lambda: b"getProperties" in fake.received, timeout=20, what="inditomqtt to connect")
            fake.send(DEFINE)
            wait_for(lambda: b"enableBLOB" in fake.received, timeout=20, what="enableBLOB")

        def send() -> None:
            for piece in blob_message(size, seed):
                fake.send(piece)

        return measure(bridge, rconn, size, prepare, send, others=(instrument,))


DRIVER = """#!{python}
import os, sys
sys.path.insert(0, {bench!r})
from benchbridge import serve_stand_in_driver
from blob_stream import DEFINE, GO, blob_message
serve_stand_in_driver(DEFINE + GO, lambda: blob_message({size}, bytes.fromhex({seed!r})))
"""


def run_driverstoredis(size: int, folder: str, seed: bytes) -> Run:
    with RedisProcess() as redis_proc, tempfile.TemporaryDirectory() as scripts:
        driver = Path(scripts) / "indi_bench_camera"
        driver.write_text(
            DRIVER.format(python=sys.executable, bench=str(ROOT / "bench"), size=size, seed=seed.hex())
        )
        driver.chmod(0o755)
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        arguments = (
            f"[{str(driver)!r}], indiredis.redis_server('127.0.0.1', {redis_proc.port}), "
            f"blob_folder={folder!r}"
        )
        bridge = start_bridge("make_driverstoredis", arguments)

        def prepare() -> None:
            wait_for(lambda: rconn.exists("indi_attributes:GO:Camera"), timeout=20, what="the driver")
            time.sleep(0.5)  # settle: the bridge's enableBLOB reaches the driver pool before GO

        expose = (
            '<newSwitchVector device="Camera" name="GO">'
            '<oneSwitch name="EXPOSE">On</oneSwitch></newSwitchVector>'
        )
        return measure(bridge, rconn, size, prepare, lambda: rconn.publish("to_indi", expose))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="50,500", help="BLOB sizes in MiB, comma-separated")
    parser.add_argument(
        "--bridges", default="inditoredis,driverstoredis,mqtt", help="comma-separated (mqtt: the MQTT chain)"
    )
    parser.add_argument("--folder", default=None, help="where the blob folder is made (default: $TMPDIR)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per bridge and size (the median is kept)")
    args = parser.parse_args()
    runs = {"inditoredis": run_inditoredis, "driverstoredis": run_driverstoredis, "mqtt": run_mqtt}
    print(f"base64 decoder: {base64strict.NAME}", flush=True)
    with tempfile.TemporaryDirectory(dir=args.folder) as folder:
        for name in args.bridges.split(","):
            for mib in (int(size) for size in args.sizes.split(",")):
                if name == "mqtt" and len(wrapped(bytes(54))) * mib * MIB // 54 > MQTT_LIMIT:
                    print(f"mqtt: {mib} MiB BLOB skipped (its base64 is beyond MQTT's 256 MiB message limit)")
                    continue
                measured = []
                for _ in range(args.repeat):
                    seed = os.urandom(LINE * 100)
                    reference = reference_rate(mib * MIB, seed, folder)  # right before, same text
                    rate, cpu, rss = runs[name](mib * MIB, folder, seed)
                    measured.append((rate / reference, rate, reference, cpu, rss))
                ratio, rate, reference, cpu, rss = sorted(measured)[len(measured) // 2]
                ratios = ", ".join(f"{m[0]:.2f}" for m in measured)
                print(
                    f"{name}: {mib} MiB BLOB at {rate:,.0f} MiB/s first byte to file in place (fsync'ed), "
                    f"base64 -d {reference:,.0f} MiB/s: ratio {ratio:.2f} (median of {ratios}; "
                    f"bridge CPU {cpu:.2f} s: {mib / cpu:,.0f} MiB per CPU second); "
                    f"bridge VmHWM {rss:,.0f} MiB",
                    flush=True,
                )


if __name__ == "__main__":
    main()
