#!/usr/bin/env python3
"""Benchmark: the web process's memory while the image viewer opens large FITS frames.

    .venv/bin/python bench/web_viewer_memory.py [--megabytes 8 120]

Real redis-server and the web client (waitress, as indiredis-web serves it, without logins) in a
process of its own, its blob folder holding one 16-bit FITS frame per size asked (stars on a noisy
sky, BZERO 32768 as cameras write it).  After a small frame that loads the viewer's libraries, for
each frame, smallest first, the viewer's requests as the
page makes them: the statistics, histogram, levels and header (``/api/image/<name>``), then the
stretched image whole and zoomed into a corner, linear, asinh and log (``/view/<name>``).

Prints per frame the file's size and, beyond the web process's memory before the frame: its peak
resident set (VmHWM, reset before each frame; it counts the frame's memory-mapped file pages, which
are page cache: shared and reclaimable) and its peak anonymous memory (RssAnon, sampled every 5 ms:
the process's own allocations, what must stay bounded).  The smallest frame is the reference: a
bounded viewer needs about as much anonymous memory for the largest.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.support.servers import RedisProcess, free_port, port_open, wait_for  # noqa: E402

WEB_PROGRAM = """
import logging, indiredis
from indiredis.indiwsgi import make_server, make_wsgi_app
logging.basicConfig(level=logging.WARNING)
app = make_wsgi_app(indiredis.redis_server("127.0.0.1", {redis_port}), {blobs!r})
make_server(app, host="127.0.0.1", port={web_port}).run()
"""
VIEWS = (
    "out=1024&stretch=linear",
    "out=1024&stretch=asinh",
    "out=1024&stretch=log",
    "x=0&y=0&w=512&h=512&out=512&stretch=asinh",
)


def write_frame(path: Path, megabytes: float) -> None:
    """A square 16-bit frame of about ``megabytes``, written in bands (the writer stays small too)."""
    import numpy as np
    from astropy.io import fits

    side = int(math.sqrt(megabytes * 1024 * 1024 / 2))
    header = fits.Header()
    header["SIMPLE"], header["BITPIX"], header["NAXIS"] = True, 16, 2
    header["NAXIS1"], header["NAXIS2"] = side, side
    header["BZERO"], header["BSCALE"] = 32768, 1
    header["EXPTIME"] = (30.0, "seconds")
    rng = np.random.default_rng(7)
    with path.open("wb") as out:
        out.write(header.tostring().encode("ascii"))
        for start in range(0, side, 512):
            rows = min(512, side - start)
            band = rng.normal(1200, 40, (rows, side))
            for x in rng.integers(10, side - 10, 20):
                band[rows // 2, x] = 50000
            out.write((band - 32768).astype(">i2").tobytes())
        written = len(header.tostring()) + side * side * 2
        out.write(b"\0" * (-written % 2880))


def status(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


class AnonPeak:
    """The peak RssAnon of a process, sampled every 5 ms while running."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self.stop = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self.stop.is_set():
            self.peak = max(self.peak, status(self.pid, "RssAnon"))
            time.sleep(0.005)

    def __enter__(self) -> AnonPeak:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop.set()
        self.thread.join()


def get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=300) as answer:
        return bytes(answer.read())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--megabytes", type=float, nargs="+", default=[8, 120], help="frame sizes (default 8 120)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder, RedisProcess() as redis_proc:
        blobs = Path(folder)
        names = []
        write_frame(blobs / "warm-up.fits", 1)  # viewed first, not reported: the imports of the viewer
        for megabytes in sorted(args.megabytes):
            name = f"frame_{megabytes:g}MB.fits"
            write_frame(blobs / name, megabytes)
            names.append(name)
        port = free_port()
        program = WEB_PROGRAM.format(redis_port=redis_proc.port, blobs=str(blobs), web_port=port)
        web = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT)
        try:
            wait_for(lambda: port_open(port), timeout=30, what="the web process")
            url = f"http://127.0.0.1:{port}"
            get(url + "/")  # the imports and threads of a served process
            for view in ("",) + VIEWS:
                get(f"{url}/view/warm-up.fits?{view}" if view else f"{url}/api/image/warm-up.fits")
            print(
                f"{'frame':>10} {'peak RSS beyond start':>22} "
                f"{'peak anonymous beyond start':>28} {'seconds':>8}"
            )
            for name in names:
                size = (blobs / name).stat().st_size
                rss0, anon0 = status(web.pid, "VmRSS"), status(web.pid, "RssAnon")
                Path(f"/proc/{web.pid}/clear_refs").write_text("5")  # VmHWM starts again from now
                start = time.perf_counter()
                with AnonPeak(web.pid) as anon:
                    info = get(f"{url}/api/image/{name}")
                    assert b'"stats"' in info, info[:200]
                    for view in VIEWS:
                        png = get(f"{url}/view/{name}?{view}")
                        assert png.startswith(b"\x89PNG"), png[:100]
                seconds = time.perf_counter() - start
                hwm = status(web.pid, "VmHWM")
                print(
                    f"{size / 1e6:>7.0f} MB {(hwm - rss0) / 1024:>19.0f} MB "
                    f"{(anon.peak - anon0) / 1024:>25.0f} MB {seconds:>8.1f}"
                )
            print("(peak RSS counts the frame's mapped pages: page cache, shared and reclaimable)")
        finally:
            web.terminate()
            web.wait(timeout=10)


if __name__ == "__main__":
    main()
