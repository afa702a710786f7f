"""``python3 -m indiredis blobfolder``: inditoredis and the web client in one process, against the
simulators."""

from __future__ import annotations

import http.cookiejar
import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from urllib.parse import quote, urlencode

from tests.support.servers import free_port, wait_for

TELESCOPE = quote("Telescope Simulator", safe="")


# a browser's cookies: the page's CSRF token is checked against its cookie on every POST
OPENER = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
TOKEN = re.compile(rb"<meta name='csrf' content='([^']*)'>")
# `python -m indiredis ARGS`, with Ctrl-C's SIGINT acted on even when the tests run in the background:
# a shell starts background jobs with SIGINT ignored, Python then leaves it ignored, and the program
# never ended (it is right to: who started it in the background asked for that)
AS_MODULE = (
    "import runpy, signal; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "runpy.run_module('indiredis', run_name='__main__', alter_sys=True)"
)


def fetch(url: str, data: bytes | None = None, headers: dict[str, str] | None = None) -> bytes:
    try:
        request = urllib.request.Request(url, data=data, headers=headers or {})
        with OPENER.open(request, timeout=5) as answer:
            return answer.read()
    except (urllib.error.URLError, ConnectionError):
        return b""


def test_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, "-m", "indiredis", "-h"], capture_output=True, text=True, check=True
    ).stdout
    for option in (
        "--port",
        "--host",
        "--indi-host",
        "--indi-port",
        "--redis-host",
        "--redis-port",
        "--redis-db",
        "--keyprefix",
        "--ihost",
        "--rport",
        "--prefix",
        "--toindipub",
        "blobfolder",
    ):
        assert option in out
    bad = subprocess.run(
        [sys.executable, "-m", "indiredis", "blobs", "--iport", "0"], capture_output=True, text=True
    )
    assert bad.returncode == 2 and "out of range" in bad.stderr


def test_run_as_module(simulators, redis_proc, rconn, tmp_path):
    port = free_port()
    command = [
        sys.executable,
        "-X",
        "faulthandler",  # SIGABRT dumps every thread's stack (below, when it does not end)
        "-c",
        AS_MODULE,
        str(tmp_path / "blobs"),
        "--port",
        str(port),
        "--host",
        "127.0.0.1",
        "--ihost",
        "127.0.0.1",
        "--iport",
        str(simulators.port),
        "--redis-host",
        "127.0.0.1",
        "--redis-port",
        str(redis_proc.port),
        "--prefix",
        "obs_",
    ]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: TELESCOPE.encode() in fetch(base + "/"), timeout=20, what="the telescope listed")
        assert rconn.sismember("obs_devices", "Telescope Simulator")  # --prefix reached the bridge
        assert (tmp_path / "blobs").is_dir()
        token = TOKEN.search(fetch(base + "/")).group(1).decode()
        request = urlencode({"switch": "CONNECT", "csrf": token}).encode()
        assert fetch(f"{base}/set/{TELESCOPE}/CONNECTION", request)

        def connected() -> bool:
            state = json.loads(fetch(f"{base}/api/device/{TELESCOPE}") or b"{}")
            return state.get("properties", {}).get("CONNECTION", {}).get("state") == "Ok"

        wait_for(connected, timeout=20, what="the telescope connected through the web client")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            out, err = process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            process.send_signal(signal.SIGABRT)
            out, err = process.communicate(timeout=10)
            raise AssertionError(f"python -m indiredis did not end on SIGINT:\n{err}") from None
    assert process.returncode == 0, err
    assert f"http://127.0.0.1:{port}/" in out
