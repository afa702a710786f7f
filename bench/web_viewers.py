#!/usr/bin/env python3
"""Benchmark: many open device pages watching a tracking mount through one web process.

    .venv/bin/python bench/web_viewers.py [--viewers 200] [--seconds 60] [--no-logins] [--poll]

Real redis-server, indiserver with the telescope simulator (connected, unparked,
tracking: its MOUNT_AXES change four times a second), inditoredis and the web
client (waitress, as indiredis-web serves it, with a logged-in session) each in
a process of their own.  Each simulated viewer does what the page script does:
keep ``/api/stream/<telescope>`` open (server-sent events) and take each change
from it; with ``--poll``, what the page did before and does when refused a
stream: poll ``/api/device/<telescope>`` with ``If-None-Match`` on a kept-alive
connection, 0.5 s after each answer (the reference).

The delay of an update is the time from its publication on ``from_indi`` (the
bridge has written the keys) until a viewer receives JSON holding it; every
viewer's delay for every update it sees counts.  An update is lost for a viewer
when it was published while the viewer watched (after its first answer, until a
second before the end) and never reached it.  Prints the delay p50/p99, the
updates lost, the share of viewers served, the request rate and the web
process's CPU (1.00 = one core).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote, urlencode

import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from benchbridge import cpu_seconds, percentile, start_bridge  # noqa: E402

import indiredis  # noqa: E402
from indiredis import tools  # noqa: E402
from indiredis.protocol.numbers import format_number  # noqa: E402
from tests.support.servers import IndiServerProcess, RedisProcess, free_port, port_open, wait_for  # noqa: E402

TELESCOPE = "Telescope Simulator"
AXES = "MOUNT_AXES"
POLL_PERIOD = 0.5  # seconds after an answer, as live.js
PASSWORD = "bench password"
NUMBER = re.compile(r'<oneNumber name="([^"]*)"[^>]*>\s*([^<]*?)\s*</oneNumber>')

WEB_PROGRAM = """
import logging, sys, indiredis
from indiredis.indiwsgi import make_server, make_wsgi_app
from indiredis.indiwsgi.auth import User, hash_password
logging.basicConfig(level=logging.WARNING)
users = {{"bench": User("bench", "observer", hash_password({password!r}))}} if {logins} else None
app = make_wsgi_app(indiredis.redis_server("127.0.0.1", {redis_port}), users=users)
make_server(app, host="127.0.0.1", port={web_port}).run()
"""


class Updates:
    """When each MOUNT_AXES value pair was published (the formatted texts the page shows)."""

    def __init__(self, rconn: redis.Redis, formats: dict[str, str]) -> None:
        self.rconn, self.formats = rconn, formats
        self.published: dict[tuple[str, ...], float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)

    def key(self, values: dict[str, str]) -> tuple[str, ...]:
        return tuple(values.get(name, "") for name in sorted(self.formats))

    def _listen(self) -> None:
        pubsub = self.rconn.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe("from_indi")
        while not self.stop.is_set():
            item = pubsub.get_message(timeout=0.5)
            if not item or f'name="{AXES}"'.encode() not in item["data"][:300]:
                continue
            now = time.monotonic()
            raw = dict(
                re.findall(
                    r'<oneNumber name="([^"]*)"[^>]*>\s*([^<]*?)\s*</oneNumber>', item["data"].decode()
                )
            )
            shown = {
                name: format_number(value, self.formats.get(name, "%g")).strip()
                for name, value in raw.items()
            }
            self.published.setdefault(self.key(shown), now)


class Viewer:
    """One open page: polls the device's JSON like live.js, noting the delay of each update it sees."""

    def __init__(self, port: int, path: str, cookie: str, updates: Updates) -> None:
        self.port, self.path, self.cookie, self.updates = port, path, cookie, updates
        self.delays: list[float] = []
        self.answers = self.errors = 0
        self.seen: set[tuple[str, ...]] = set()
        self.since: float | None = None  # when the first answer came
        self.received: dict[tuple[str, ...], tuple[float, bool]] = {}

    def saw(self, axes: dict[str, str], received: float, timed: bool = True) -> None:
        """Note values received (matched with their publication after the run: the thread that notes
        publications may learn of one after a viewer has it)."""
        if self.since is None:
            self.since = received
        self.received.setdefault(self.updates.key(axes), (received, timed))

    def finish(self) -> None:
        """The delay of each update seen (not the whole state a stream starts with)."""
        for key, (received, timed) in self.received.items():
            published = self.updates.published.get(key)
            if published is not None:
                self.seen.add(key)
                if timed:
                    self.delays.append(max(0.0, received - published))

    def lost(self, until: float) -> tuple[int, int]:
        """(updates published while this viewer watched, those it never saw)."""
        if self.since is None:
            return 0, 0
        due = [k for k, t in self.updates.published.items() if self.since < t < until - 1.0]
        return len(due), sum(1 for k in due if k not in self.seen)

    async def run(self, until: float) -> None:
        await asyncio.sleep(random.uniform(0, POLL_PERIOD))
        etag = ""
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                while time.monotonic() < until:
                    etag = await self._poll(reader, writer, etag)
                    await asyncio.sleep(POLL_PERIOD)
                writer.close()
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.errors += 1
                await asyncio.sleep(POLL_PERIOD)

    async def _poll(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, etag: str) -> str:
        request = f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nCookie: {self.cookie}\r\n"
        if etag:
            request += f"If-None-Match: {etag}\r\n"
        writer.write((request + "\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode("latin-1")
        status = int(head.split(" ", 2)[1])
        headers = dict(line.split(": ", 1) for line in head.split("\r\n")[1:] if ": " in line)
        body = await reader.readexactly(int(headers.get("Content-Length", "0")))
        received = time.monotonic()
        if status not in (200, 304):
            raise ValueError(f"HTTP {status}")
        self.answers += 1
        if status == 200:
            self.saw(json.loads(body)["properties"].get(AXES, {}).get("elements", {}), received)
            return headers.get("ETag", "")
        return etag


class StreamViewer(Viewer):
    """One open page keeping the device's event stream open, as live.js does."""

    async def run(self, until: float) -> None:
        await asyncio.sleep(random.uniform(0, POLL_PERIOD))
        while time.monotonic() < until:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
                try:
                    await asyncio.wait_for(self._watch(reader, writer), until - time.monotonic())
                finally:
                    writer.close()
            except TimeoutError:
                return
            except (OSError, asyncio.IncompleteReadError, ValueError):
                self.errors += 1
                await asyncio.sleep(POLL_PERIOD)

    async def _watch(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = f"GET {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\nCookie: {self.cookie}\r\n"
        writer.write((request + "Accept: text/event-stream\r\n\r\n").encode())
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)).decode("latin-1")
        if int(head.split(" ", 2)[1]) != 200:
            raise ValueError(head.split("\r\n", 1)[0])
        self.answers += 1
        buffer = b""
        while True:  # chunked transfer encoding
            size = int((await reader.readuntil(b"\r\n")).strip() or b"0", 16)
            if size == 0:
                return
            buffer += (await reader.readexactly(size + 2))[:-2]
            received = time.monotonic()
            *frames, buffer = buffer.split(b"\n\n")
            for frame in frames:
                for line in frame.split(b"\n"):
                    if line.startswith(b"data: "):
                        self._event(json.loads(line[6:]), received)

    def _event(self, change: dict, received: float) -> None:
        if "full" in change:  # the whole state at the start: not an update's delay
            self.saw(change["full"]["properties"].get(AXES, {}).get("elements", {}), received, False)
        elif AXES in change.get("props", {}):
            self.saw(change["props"][AXES].get("elements", {}), received)


def log_in(web_port: int) -> str:
    """A session cookie for the bench user."""
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", web_port, timeout=10)
    body = urlencode({"user": "bench", "password": PASSWORD})
    connection.request("POST", "/login", body, {"Content-Type": "application/x-www-form-urlencoded"})
    answer = connection.getresponse()
    answer.read()
    cookie = answer.getheader("Set-Cookie", "")
    return cookie.split(";", 1)[0]


def prepare_mount(rconn: redis.Redis, redis_host: indiredis.RedisServer) -> dict[str, str]:
    """Connect, unpark and track; the formats of MOUNT_AXES's elements."""
    wait_for(
        lambda: "CONNECTION" in tools.properties(rconn, redis_host, TELESCOPE), timeout=30, what="telescope"
    )
    tools.newswitchvector(rconn, redis_host, "CONNECTION", TELESCOPE, {"CONNECT": "On", "DISCONNECT": "Off"})
    wait_for(lambda: AXES in tools.properties(rconn, redis_host, TELESCOPE), timeout=30, what="connected")
    tools.newswitchvector(rconn, redis_host, "TELESCOPE_PARK", TELESCOPE, {"PARK": "Off", "UNPARK": "On"})
    tools.newswitchvector(
        rconn, redis_host, "TELESCOPE_TRACK_STATE", TELESCOPE, {"TRACK_ON": "On", "TRACK_OFF": "Off"}
    )
    elements = tools.elements(rconn, redis_host, AXES, TELESCOPE)
    return {
        e: tools.elements_dict(rconn, redis_host, e, AXES, TELESCOPE).get("format", "%g") for e in elements
    }


async def watch(viewers: list[Viewer], seconds: float) -> None:
    until = time.monotonic() + seconds
    await asyncio.gather(*(viewer.run(until) for viewer in viewers))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--viewers", type=int, default=200, help="open pages (default 200)")
    parser.add_argument("--seconds", type=float, default=60, help="how long they watch (default 60)")
    parser.add_argument(
        "--no-logins", action="store_true", help="serve without logins (python3 -m indiredis)"
    )
    parser.add_argument(
        "--poll", action="store_true", help="poll the JSON (the reference) instead of event streams"
    )
    args = parser.parse_args()

    with RedisProcess() as redis_proc, IndiServerProcess(["indi_simulator_telescope"]) as indiserver:
        redis_host = indiredis.redis_server("127.0.0.1", redis_proc.port)
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port)
        bridge = start_bridge(
            "make_inditoredis",
            f"indiredis.indi_server('127.0.0.1', {indiserver.port}), "
            f"indiredis.redis_server('127.0.0.1', {redis_proc.port})",
        )
        web_port = free_port()
        program = WEB_PROGRAM.format(
            password=PASSWORD, logins=not args.no_logins, redis_port=redis_proc.port, web_port=web_port
        )
        web = subprocess.Popen([sys.executable, "-c", program], cwd=ROOT)
        try:
            formats = prepare_mount(rconn, redis_host)
            wait_for(lambda: port_open(web_port), what="the web server")
            cookie = "" if args.no_logins else log_in(web_port)
            updates = Updates(rconn, formats)
            updates.thread.start()
            kind, api = (Viewer, "device") if args.poll else (StreamViewer, "stream")
            path = f"/api/{api}/{quote(TELESCOPE, safe='')}"
            viewers = [kind(web_port, path, cookie, updates) for _ in range(args.viewers)]
            cpu_before, started = cpu_seconds(web.pid), time.monotonic()
            asyncio.run(watch(viewers, args.seconds))
            ended = time.monotonic()
            elapsed = ended - started
            cpu = (cpu_seconds(web.pid) - cpu_before) / elapsed
            updates.stop.set()
            updates.thread.join(5)
        finally:
            web.terminate()
            bridge.terminate()
            web.wait(10)
            bridge.wait(10)
            rconn.close()

    for viewer in viewers:
        viewer.finish()
    delays = [delay for viewer in viewers for delay in viewer.delays]
    served = sum(1 for viewer in viewers if viewer.answers and viewer.delays)
    answers = sum(viewer.answers for viewer in viewers)
    mode = "polling every 0.5 s" if args.poll else "event streams"
    login = "no logins" if args.no_logins else "logged in"
    print(f"viewers: {args.viewers} for {elapsed:.0f} s ({login}, {mode})")
    print(f"updates published: {len(updates.published)}; seen by viewers: {len(delays)}")
    if delays:
        print(
            f"update delay: p50 {statistics.median(delays) * 1000:.0f} ms, "
            f"p99 {percentile(delays, 0.99) * 1000:.0f} ms, max {max(delays) * 1000:.0f} ms"
        )
    due, lost = (sum(n) for n in zip(*(viewer.lost(ended) for viewer in viewers), strict=True))
    print(f"updates lost: {lost} of {due} due to viewers ({100 * lost / max(due, 1):.1f} %)")
    print(f"viewers served: {served}/{args.viewers} ({100 * served / args.viewers:.0f} %)")
    print(f"requests answered: {answers / elapsed:.0f}/s; errors: {sum(v.errors for v in viewers)}")
    print(f"web process CPU: {cpu:.2f} core")


if __name__ == "__main__":
    main()
