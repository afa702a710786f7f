"""Start a bridge as a process of its own for a benchmark (so it does not share this process's GIL)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.procstats import cpu_seconds, peak_rss_mib  # noqa: E402  (re-exported for the benches)

__all__ = [
    "ROOT",
    "bridge_python",
    "cpu_per_message",
    "cpu_seconds",
    "peak_rss_mib",
    "percentile",
    "serve_stand_in_driver",
    "stack",
    "start_bridge",
]


def start_bridge(
    factory: str,
    arguments: str,
    stderr: IO[bytes] | None = None,
    env: dict[str, str] | None = None,
    profile: str | None = None,
) -> subprocess.Popen[bytes]:
    """Run ``indiredis.bridges.<factory>(<arguments>)`` under ``run_blocking`` in a child Python,
    logging warnings and worse to stderr (or to the file ``stderr``).  ``arguments`` is Python
    source that may use ``indiredis``; ``env`` replaces the child's environment.

    SIGTERM ends the bridge as Ctrl-C does: it is turned into a SIGINT, which ``asyncio.run``
    answers by cancelling the bridge's task (a clean stop through every link's clean-up).  Raising
    KeyboardInterrupt from SIGTERM's handler instead, anywhere in the loop's own code, can leave its
    bookkeeping half done and a task that no cancellation ends: the bridge then never ended (seen
    once in 4 runs of ``mqtt_burst.py``, inditomqtt on Debian's Python, its loop cancelling a task
    again every 0.5 s).

    With ``profile`` the bridge runs under cProfile and writes its statistics to that file when it
    is terminated."""
    program = (
        "import logging, signal, indiredis\n"
        f"from indiredis.bridges import {factory}\n"
        "from indiredis.core.bridge import run_blocking\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        # SIGINT as Python sets it (a child of a shell's background job starts with it ignored), so
        # that asyncio.run answers it; SIGTERM turned into it
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))\n"
    )
    if profile:
        program += (
            "import cProfile\n"
            "profiler = cProfile.Profile()\n"
            "profiler.enable()\n"
            f"try:\n    run_blocking({factory}({arguments}))\n"
            f"finally:\n    profiler.disable()\n    profiler.dump_stats({profile!r})\n"
        )
    else:
        program += f"run_blocking({factory}({arguments}))\n"
    return subprocess.Popen([bridge_python(), "-c", program], cwd=ROOT, stderr=stderr, env=env)


def bridge_python() -> str:
    """The interpreter bridges run under: ``$BRIDGE_PYTHON`` if set, else this one.  With
    ``/usr/bin/python3`` this repository's ``indiredis`` runs on the libraries the Debian package
    depends on (Debian's Python, python3-redis, python3-paho-mqtt ...) instead of the virtual
    environment's from PyPI."""
    return os.environ.get("BRIDGE_PYTHON") or sys.executable


def stack(python: str) -> str:
    """``Python 3.11.2, redis-py 4.3.4`` for an interpreter (printed with the figures it gave)."""
    probe = (
        "import platform, redis; print(f'Python {platform.python_version()}, redis-py {redis.__version__}')"
    )
    found = subprocess.run([python, "-c", probe], capture_output=True, text=True)
    if found.returncode:
        sys.exit(f"{python} cannot run the bridges: {found.stderr.strip().splitlines()[-1:]}")
    return found.stdout.strip()


def cpu_per_message(bridge: str, bridge_cpu: float, redis_cpu: float, messages: int) -> str:
    """The CPU time per message of a bridge and of redis-server over the same messages, and their
    ratio: the figure that says which of the two limits the rate (at most 1: Redis)."""
    bridge_us, redis_us = bridge_cpu / messages * 1e6, redis_cpu / messages * 1e6
    ratio = bridge_us / redis_us if redis_us else float("inf")
    return (
        f"CPU per message: {bridge} {bridge_us:.0f} us, redis-server {redis_us:.0f} us, "
        f"ratio {ratio:.2f} (bridge / redis-server, same run)"
    )


#: seconds of p99 latency beyond which a chain under a rising load has given
LATENCY_LIMIT = 2.0
#: delivered / offered below which a chain under a rising load has given
DELIVERY_LIMIT = 0.9


def what_gave(
    *, lost: int, reported: int, reporter: str, delivered: float, offered: float, p99: float
) -> str:
    """What gave in one window of a rising load ('' when nothing did): losses first (``reported`` of
    them said lost by ``reporter``), then a delivery rate that fell behind, then latency."""
    if lost or reported:
        return f"{lost} messages lost ({reported} reported lost by {reporter})"
    if delivered < DELIVERY_LIMIT * offered:
        return f"delivery fell behind ({delivered:,.0f} of {offered:,.0f} msg/s)"
    if p99 > LATENCY_LIMIT:
        return f"p99 latency {p99:.2f} s"
    return ""


def percentile(values: list[float], fraction: float) -> float:
    """The value ``fraction`` of the way up ``values`` (nearest rank: the median of 500 is the 251st
    smallest); NaN when there are none."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else float("nan")


def serve_stand_in_driver(definitions: bytes, burst: Callable[[], Iterable[bytes]]) -> None:
    """The loop of a benchmark's stand-in driver, run by driverstoredis on its stdin and stdout: it
    answers getProperties with ``definitions``, and a new value of its GO switch with what ``burst``
    yields, until its input ends."""
    out = sys.stdout.buffer
    seen = b""
    for chunk in iter(lambda: os.read(0, 65536), b""):
        seen = seen[-64:] + chunk
        if b"getProperties" in seen:
            out.write(definitions)
            out.flush()
            seen = b""
        if b'name="GO"' in seen:
            seen = b""
            for piece in burst():
                out.write(piece)
            out.flush()
