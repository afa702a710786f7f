"""Server-sent events: every change the watcher sees, numbered, pushed to the open pages as it happens.

Why server-sent events rather than long polling: a page keeps one response open and each change
is one small write to it, where long polling would cost a whole request (parsing, session lookup,
headers) per change and per viewer: a mount's four updates a second seen by 200 pages would be
800 requests a second, and the update that arrives while a page is between two polls would wait.
``EventSource`` reconnects by itself and tells the last event it had (``Last-Event-ID``), so a page
that lost its connection resumes without losing a change while the ring below still holds it.

Threads: waitress is a threaded WSGI server and an open stream holds one of its threads, so the
number of streams is bounded (:data:`STREAMS_MAX`; the server has that many threads more than it
needs for ordinary requests, see :func:`indiredis.indiwsgi.make_server`).  A page refused a stream
(503) falls back to polling ``/api/device/<name>``.  A waiting stream costs no CPU: it sleeps on
one condition that the watcher thread notifies; each change is encoded once, whatever the number of
viewers.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

STREAMS_MAX = 240  # open event streams at once (each holds a waitress thread)
RING = 4096  # changes kept for streams that are behind or reconnecting
KEEPALIVE = 10.0  # seconds between two comments on a quiet stream
CHECK = 1.0  # seconds between two checks that the client is still there
SESSION_CHECK = 30.0  # seconds between two checks that the page's session is still valid


def frame(seq: int, data: bytes) -> bytes:
    """One server-sent event: its id and its JSON data (one line: JSON has no raw newline)."""
    return b"id: %d\ndata: %s\n\n" % (seq, data)


class Hub:
    """The numbered changes (a ring of the newest :data:`RING`) and the condition streams wait on."""

    def __init__(self, size: int = RING, streams_max: int = STREAMS_MAX) -> None:
        self.size, self.streams_max = size, streams_max
        self._ring: list[tuple[int, str, bytes]] = [(0, "", b"")] * size
        self._cond = threading.Condition()
        self.seq = 0
        self.streams = 0

    def publish(self, device: str, payload: dict[str, Any] | bytes) -> int:
        """Number and keep a change for the pages of ``device`` ('' for every page); its number."""
        data = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
        with self._cond:
            self.seq += 1
            self._ring[self.seq % self.size] = (self.seq, device, frame(self.seq, data))
            self._cond.notify_all()
            return self.seq

    def after(self, seq: int, device: str, timeout: float) -> tuple[int, list[bytes]] | None:
        """The frames for ``device``'s page published after ``seq`` (waiting up to ``timeout`` for
        one) and the newest number; None when some of them are no longer kept."""
        with self._cond:
            if self.seq <= seq:
                self._cond.wait(timeout)
            newest = self.seq
            if newest - seq > self.size:
                return None
            frames = []
            for number in range(seq + 1, newest + 1):
                _, where, data = self._ring[number % self.size]
                if where in ("", device):
                    frames.append(data)
            return newest, frames

    def open(self) -> bool:
        """Count a new stream; False when :attr:`streams_max` are open."""
        with self._cond:
            if self.streams >= self.streams_max:
                return False
            self.streams += 1
            return True

    def closed(self) -> None:
        """A stream ended."""
        with self._cond:
            self.streams -= 1


def stream(
    hub: Hub,
    device: str,
    start: int,
    first: bytes,
    resync: Callable[[], tuple[int, bytes]],
    gone: Callable[[], bool],
    allowed: Callable[[], bool] = lambda: True,
) -> Iterator[bytes]:
    """A page's event stream: ``first`` (its whole state, read after change ``start``), then every
    change for ``device`` ('' for the device list), a comment every :data:`KEEPALIVE` s; a page that
    fell behind the ring gets its whole state again (``resync``).  Ends when ``gone()`` says the
    client left (or when writing to it fails), or when ``allowed()`` (asked every
    :data:`SESSION_CHECK` s) says its session ended: the page then reconnects and is sent to log in.
    The stream takes its slot of the hub when it starts and gives it back when it ends, so a stream
    never started (the client left, a failure before the server's first read) holds none; one that
    finds every slot taken ends at once, asking the page to come back in 5 s."""
    if not hub.open():
        yield b"retry: 5000\n\n"
        return
    try:
        yield b"retry: 1000\n" + frame(start, first)
        yield from _changes(hub, device, start, resync, gone, allowed)
    finally:
        hub.closed()


def _changes(
    hub: Hub,
    device: str,
    start: int,
    resync: Callable[[], tuple[int, bytes]],
    gone: Callable[[], bool],
    allowed: Callable[[], bool],
) -> Iterator[bytes]:
    """The frames of :func:`stream` after the first, until the client leaves or its session ends."""
    seq, quiet_since = start, time.monotonic()
    checked = quiet_since
    while not gone():
        if time.monotonic() - checked > SESSION_CHECK:
            checked = time.monotonic()
            if not allowed():
                return
        found = hub.after(seq, device, CHECK)
        if found is None:
            seq, data = resync()
            yield frame(seq, data)
            quiet_since = time.monotonic()
            continue
        seq, frames = found
        if frames:
            yield b"".join(frames)
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since > KEEPALIVE:
            yield b": keepalive\n\n"
            quiet_since = time.monotonic()
