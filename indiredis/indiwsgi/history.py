"""The history of number elements by time, for the web client's graphs (an addition to the key space).

``P history:<element>:<property>:<device>`` is a Redis stream: one entry per value kept, its ID the
millisecond the value was published (as the web process saw it), its field ``v`` the value (a
float as text).  It is bounded by time and by rate: entries older than :data:`HOURS` are trimmed
at each addition (``XADD … MINID ~``), and at most one value per :data:`INTERVAL` seconds is kept
per element (the newest of a faster stream, written when the interval has passed), so an element
holds at most ``HOURS * 3600 / INTERVAL`` entries (43 200 by default, about 1 MB).  Each addition
also sets the key to expire :data:`HOURS` later, so the history of an element no longer published
(a device removed, renamed or gone) leaves the store by itself.

The key space of the original package and its defaults are unchanged (its ``logdata`` lists keep
the last 50 values of a vector, about 12 s of a mount's stream).  The history is written by the
web process (its watcher sees every ``from_indi`` message); when several web processes share the
store, only the one holding ``P historywriter`` (renewed every few seconds, expiring after
:data:`LEASE` s) writes.
"""

from __future__ import annotations

import logging
import math
import secrets
import threading
import time
from typing import Any

import redis

from ..links.loglimit import LogLimiter
from ..store.keys import KeySpace
from ..tools import _text

log = logging.getLogger(__name__)

HOURS = 12.0  # hours of history kept per element
INTERVAL = 1.0  # seconds: at most one value kept per element in that time
LEASE = 15  # seconds the writer's lease lasts without renewal
POINTS = 600  # points a graph gets at most (min, mean and max of the values each stands for)


def history_key(keys: KeySpace, device: str, name: str, element: str) -> str:
    """``P history:<element>:<property>:<device>``."""
    return f"{keys.prefix}history:{element}:{name}:{device}"


class History:
    """Keeps the values of number elements in their history streams (called by the watcher thread)."""

    def __init__(self, rconn: redis.Redis, keys: KeySpace, interval: float = INTERVAL, hours: float = HOURS):
        self.rconn, self.keys, self.interval, self.hours = rconn, keys, interval, hours
        self.me = secrets.token_hex(8)
        self._writer = False
        self._lease_at = -math.inf
        self._written: dict[str, float] = {}  # key -> when a value was last written
        self._waiting: dict[str, tuple[float, float]] = {}  # key -> (when, value) not written yet
        self._lock = threading.Lock()
        self._refused = LogLimiter(log, "the history writer", burst=1)

    def writer(self) -> bool:
        """Whether this process writes the history (takes or renews the lease every few seconds).
        A store that refuses writes (out of memory, read-only replica, failed snapshot: Redis says
        why) makes it not the writer until the next try; a lost connection raises."""
        now = time.monotonic()
        if now - self._lease_at >= LEASE / 3:
            self._lease_at = now
            lease = f"{self.keys.prefix}historywriter"
            try:
                if self.rconn.set(lease, self.me, nx=True, ex=LEASE):
                    self._writer = True
                else:
                    self._writer = _text(self.rconn.get(lease) or b"") == self.me
                    if self._writer:
                        self.rconn.expire(lease, LEASE)
            except redis.ResponseError as exc:
                self._writer = False
                self._refused.warning("web client: the history is not kept, Redis refuses writes: %s", exc)
        return self._writer

    def add(self, device: str, name: str, values: dict[str, float]) -> None:
        """Values of a number vector published now."""
        now = time.time()
        with self._lock:
            for element, value in values.items():
                if math.isfinite(value):
                    self._waiting[history_key(self.keys, device, name, element)] = (now, value)
        self.flush()

    def flush(self) -> None:
        """Write the values whose element's interval has passed (called at least every second)."""
        if not self._waiting or not self.writer():
            return
        now = time.time()
        with self._lock:
            due = [
                (key, when, value)
                for key, (when, value) in self._waiting.items()
                if now - self._written.get(key, -math.inf) >= self.interval
            ]
            for key, _, _ in due:
                del self._waiting[key]
                self._written[key] = now
        if not due:
            return
        oldest = int((now - self.hours * 3600) * 1000)
        pipe = self.rconn.pipeline(transaction=False)
        for key, when, value in due:
            pipe.xadd(key, {"v": repr(value)}, id=f"{int(when * 1000)}-*", minid=oldest, approximate=True)
            pipe.expire(key, max(1, math.ceil(self.hours * 3600)))  # a removed device's history goes too
        for result in pipe.execute(raise_on_error=False):
            # an ID not above the newest (a clock step back) is skipped silently; a refusal (out of
            # memory, read-only, ...) costs these values, said once a minute: pages are still served
            if isinstance(result, redis.ResponseError) and "smaller" not in str(result):
                self._refused.warning("web client: history values lost, Redis refuses writes: %s", result)


def read_history(
    rconn: redis.Redis, key: str, hours: float, points: int = POINTS, now: float | None = None
) -> dict[str, Any]:
    """The history of the last ``hours`` as at most ``points`` points ``[ms, min, mean, max]`` (each
    the values of one slice of the time the values span), and ``count``, the values read."""
    now = time.time() if now is None else now
    start = max(0, int((now - hours * 3600) * 1000))
    entries = rconn.xrange(key, min=str(start), max="+") or []
    samples: list[tuple[int, float]] = []
    for entry_id, fields in entries:
        try:
            samples.append((int(_text(entry_id or b"").split("-", 1)[0]), float(_text((fields or {})[b"v"]))))
        except (KeyError, ValueError):
            continue
    if not samples:
        return {"points": [], "count": 0}
    first, last = samples[0][0], samples[-1][0]
    width = max(1.0, (last - first + 1) / max(1, points))
    slices: dict[int, list[float]] = {}
    for stamp, value in samples:
        slices.setdefault(int((stamp - first) / width), []).append(value)
    result = [
        [int(first + index * width), min(values), sum(values) / len(values), max(values)]
        for index, values in sorted(slices.items())
    ]
    if len(samples) <= points:  # not downsampled: each value at its own time
        result = [[stamp, value, value, value] for stamp, value in samples]
    return {"points": result, "count": len(samples)}
