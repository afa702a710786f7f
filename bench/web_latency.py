"""Delay from a number reaching the INDI side to the browser showing it, in headless Chromium.

    .venv/bin/python bench/web_latency.py [--samples 30]

A fake INDI device behind a real inditoredis and Redis; the web client served
by waitress; Chromium (Selenium) on the device page.  For each sample the
device sends a new number and the script times until the page's cell shows
it.  Prints p50 / p99 / max in milliseconds, and the samples the page never showed (lost).
The page takes its changes from its event stream (``--poll``: it polls, as it does when refused
a stream: the reference, in the same run).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchbridge import percentile  # noqa: E402

import indiredis  # noqa: E402
from indiredis.bridges import make_inditoredis  # noqa: E402
from indiredis.indiwsgi import make_server, make_wsgi_app  # noqa: E402
from tests.support.bridgethread import run_bridge  # noqa: E402
from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import RedisProcess, free_port, wait_for  # noqa: E402

RECORD = """
var cell = arguments[0];
window.shown = [cell.textContent];
new MutationObserver(function () { window.shown.push(cell.textContent); })
  .observe(cell, {childList: true, characterData: true, subtree: true});
"""
DEF = (
    b'<defNumberVector device="Bench" name="N" group="G" state="Ok" perm="ro">'
    b'<defNumber name="X" format="%.0f" min="0" max="0" step="0">0</defNumber></defNumberVector>'
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--poll", action="store_true", help="the page polls (no EventSource): the reference")
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
                if args.poll:
                    browser.execute_cdp_cmd(
                        "Page.addScriptToEvaluateOnNewDocument", {"source": "delete window.EventSource;"}
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
                # then a mount's pace: four values a second, not waiting; which did the page show?
                browser.execute_script(RECORD, cell)
                sent = [str(value) for value in range(1000, 1000 + args.samples)]
                for value in sent:
                    time.sleep(0.25)
                    fake.send(
                        f'<setNumberVector device="Bench" name="N"><oneNumber name="X">{value}</oneNumber>'
                        f"</setNumberVector>".encode()
                    )
                wait_for(lambda: cell.text == sent[-1], timeout=10, what="the last value shown")
                shown = set(browser.execute_script("return window.shown;"))
                lost = [value for value in sent if value not in shown]
        finally:
            browser.quit()
            server.close()
    delays.sort()
    mode = "polling" if args.poll else "event stream"
    print(
        f"INDI set -> browser shows it ({mode}), {len(delays)} samples: "
        f"p50 {statistics.median(delays):.0f} ms, "
        f"p99 {percentile(delays, 0.99):.0f} ms, max {delays[-1]:.0f} ms"
    )
    print(f"at 4 values a second: {len(lost)} of {len(sent)} never shown")


if __name__ == "__main__":
    main()
