"""Watchers at the far end of a fault chain: they record every numbered stand-in message they see.

A :class:`RedisWatcher` subscribes to a Redis ``from_indi`` channel; an :class:`IndiClientWatcher` is an
INDI client on a TCP port (mqtttoport's), as KStars would be.  Both run in a background thread and
reconnect while the far end is down.
"""

from __future__ import annotations

import socket
import threading
import time

import redis

from tests.support.accounting import Arrival, parse_arrivals


class Watcher:
    """Records arrivals in a background thread, reconnecting as needed."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._loop, daemon=True)

    def start(self) -> Watcher:
        self.thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.thread.join(10)

    def _record(self, arrivals: list[Arrival]) -> None:
        if arrivals:
            with self._lock:
                self.arrivals.extend(arrivals)

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def fresh_since(self, moment: float) -> bool:
        """True once a message sent after ``moment`` has arrived."""
        with self._lock:
            return any(a.sent > moment for a in reversed(self.arrivals[-50:]))

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.watch()
            except Exception:  # noqa: BLE001 - the far end is down during faults; retry
                pass
            self._stop.wait(0.05)

    def watch(self) -> None:
        raise NotImplementedError


class RedisWatcher(Watcher):
    """Subscribes to the from_indi channel of a Redis server."""

    def __init__(self, port: int, channel: str = "from_indi") -> None:
        super().__init__()
        self.port, self.channel = port, channel

    def watch(self) -> None:
        conn = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1)
        pubsub = conn.pubsub(ignore_subscribe_messages=True)
        pubsub.subscribe(self.channel)
        try:
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=0.2)
                if message:
                    self._record(parse_arrivals(message["data"], time.time()))
        finally:
            pubsub.close()
            conn.close()


class IndiClientWatcher(Watcher):
    """An INDI client on a TCP port (mqtttoport's), as KStars would be."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    def watch(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(b'<getProperties version="1.7"/>\n')
            sock.settimeout(0.2)
            pending = b""
            while not self._stop.is_set():
                try:
                    data = sock.recv(1 << 16)
                except TimeoutError:
                    continue
                if not data:
                    return
                pending += data
                cut = pending.rfind(b"</setNumberVector>")
                if cut >= 0:
                    cut += len(b"</setNumberVector>")
                    self._record(parse_arrivals(pending[:cut], time.time()))
                    pending = pending[cut:]
