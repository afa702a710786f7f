"""Delay from a number reaching the INDI side to the browser showing it, in headless Chromium.

    .venv/bin/python bench/web_latency.py [--samples 30]

A fake INDI device behind a real inditoredis and Redis; the web client served
by waitress; Chromium (Selenium) on the device page.  For each sample the
device sends a new number and the script times until the page's cell shows
it.  Prints p50 / p90 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import indiredis  # noqa: E402
from indiredis.bridges import make_inditoredis  # noqa: E402
from indiredis.indiwsgi import make_server, make_wsgi_app  # noqa: E402
from tests.support.bridgethread import run_bridge  # noqa: E402
from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import RedisProcess, free_port, wait_for  # noqa: E402

DEF = (
    b'<defNumberVector device="Bench" name="N" group="G" state="Ok" perm="ro">'
    b'<defNumber name="X" format="%.0f" min="0" max="0" step="0">0</defNumber></defNumberVector>'
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=30)
    args = parser.parse_args()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    with RedisProcess() as redis_proc, FakeIndiServer() as fake, tempfile.TemporaryDirectory() as tmp:
        redis_host = indiredis.redis_server("127.0.0.1", redis_proc.port)
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), redis_host)
        port = free_port()
        server = make_server(make_wsgi_app(redis_host), host="127.0.0.1", port=port)
        threading.Thread(target=server.run, daemon=True).start()
        options = webdriver.ChromeOptions()
        options.binary_location = shutil.which("chromium") or "chromium"
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp}/c",
        ):
            options.add_argument(flag)
        browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
        try:
            with run_bridge(bridge):
                wait_for(lambda: bridge.ready and fake.clients, what="bridge")
                fake.send(DEF)
                wait_for(
                    lambda: b"Bench" in make_wsgi_app(redis_host).route({"PATH_INFO": "/"}).body,
                    what="device",
                )
                browser.get(f"http://127.0.0.1:{port}/device/Bench")
                cell = browser.find_element(By.CSS_SELECTOR, ".prop[data-prop='N'] output[data-element='X']")
                delays = []
                for value in range(1, args.samples + 1):
                    time.sleep(0.137)  # spread the samples over the polling period
                    start = time.monotonic()
                    fake.send(
                        f'<setNumberVector device="Bench" name="N"><oneNumber name="X">{value}</oneNumber>'
                        f"</setNumberVector>".encode()
                    )
                    wait_for(
                        lambda value=value: cell.text == str(value),
                        timeout=10,
                        interval=0.005,
                        what="the value shown",
                    )
                    delays.append((time.monotonic() - start) * 1000)
        finally:
            browser.quit()
            server.close()
    delays.sort()
    print(
        f"INDI set -> browser shows it, {len(delays)} samples: p50 {statistics.median(delays):.0f} ms, "
        f"p90 {delays[int(0.9 * (len(delays) - 1))]:.0f} ms, max {delays[-1]:.0f} ms"
    )


if __name__ == "__main__":
    main()
