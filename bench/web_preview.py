#!/usr/bin/env python3
"""Benchmark: the stretched preview of a large FITS frame (time and memory).

    .venv/bin/python bench/web_preview.py [--megabytes 50] [--repeat 5]

Writes a 16-bit FITS frame of the given size (stars on a noisy sky, BZERO
32768 as cameras write it) and makes its preview as the web client does, in a
fresh Python process each time: prints the time per preview (p50 and max) and
the peak heap (numpy and Python allocations, traced: a sample of at most 1024
pixels a side and its stretch) and the peak RSS beyond the imports (which counts
the frame's memory-mapped file pages: page cache, shared and reclaimable).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time, tracemalloc
import numpy, PIL.Image, astropy.io.fits, astropy.visualization
from indiredis.indiwsgi.previews import make_preview

def status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return int(line.split()[1])

before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as handle:
    handle.write("5")  # the peak (VmHWM) starts again from now
tracemalloc.start()
start = time.perf_counter()
jpeg = make_preview(sys.argv[1])
seconds = time.perf_counter() - start
heap = tracemalloc.get_traced_memory()[1] // 1024
tracemalloc.stop()
start = time.perf_counter()
make_preview(sys.argv[1])
seconds = min(seconds, time.perf_counter() - start)  # the first is slowed down by tracing
peak = status("VmHWM") - before
print(json.dumps({"seconds": seconds, "rss_kib": peak, "heap_kib": heap, "jpeg": len(jpeg)}))
"""


def write_frame(path: Path, megabytes: float) -> tuple[int, int]:
    import numpy as np
    from astropy.io import fits

    side = int(math.sqrt(megabytes * 1024 * 1024 / 2))
    rng = np.random.default_rng(7)
    data = rng.normal(1200, 40, (side, side)).astype(np.uint16)
    for y, x in rng.integers(10, side - 10, (300, 2)):
        data[y - 3 : y + 4, x - 3 : x + 4] = 50000
    fits.PrimaryHDU(data).writeto(path, overwrite=True)
    return side, side


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=50, help="size of the frame (default 50)")
    parser.add_argument("--repeat", type=int, default=5, help="previews made (default 5)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "frame.fits"
        width, height = write_frame(path, args.megabytes)
        runs = [
            json.loads(
                subprocess.run(
                    [sys.executable, "-c", CHILD, str(path)],
                    cwd=ROOT,
                    capture_output=True,
                    check=True,
                    text=True,
                ).stdout
            )
            for _ in range(args.repeat)
        ]
        size = path.stat().st_size
    times = [run["seconds"] for run in runs]
    memory = max(run["rss_kib"] for run in runs) / 1024
    heap = max(run["heap_kib"] for run in runs) / 1024
    print(
        f"frame: {width} x {height} 16-bit, {size / 1e6:.0f} MB; preview JPEG {runs[0]['jpeg'] / 1e3:.0f} kB"
    )
    print(f"preview time: p50 {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    print(f"peak heap (Python and numpy allocations): {heap:.1f} MB, whatever the frame's size")
    print(f"peak RSS beyond the imports: {memory:.0f} MB, mostly the frame's mapped file pages (page cache)")


if __name__ == "__main__":
    main()
