"""A snapshot cache shared by every viewer of the web process, and the truth about the bridge.

Many open pages poll ``/api/...`` with ``If-None-Match``.  Instead of one Redis
read per poll, each device (and the device list) is read once per change and
its JSON and ETag kept: a watcher thread subscribes to the ``from_indi``
channel and marks the device a message names as changed, so the next poll
reads it again and every later poll is answered from memory (304 when the
page is current).  A snapshot is also re-read when older than
:data:`MAX_AGE` (a missed notification heals by itself), and after each
reconnection of the watcher.

The same thread turns each message into events for the pages' streams
(:mod:`.changes`, :mod:`.push`): the changes reach the open pages as they happen.

The same thread reads the bridge's heartbeat key (see
:mod:`indiredis.links.client_side.redisside`) every second; its absence (the key
expires a few seconds after the bridge stops writing it) or a link reported
down becomes the page's warning banner.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis

from .. import tools
from ..core.backoff import Backoff
from ..hosts import RedisServer
from ..protocol.head import message_head
from ..store.keys import KeySpace
from ..tools import _text
from .changes import Changes
from .history import INTERVAL, History
from .push import Hub
from .snapshot import read_device, read_devices
from .state import FilesOf, as_json, device_state, devices_state

log = logging.getLogger(__name__)

MAX_AGE = 5.0  # seconds a snapshot is trusted without a notification
UNWATCHED_AGE = 0.25  # ... while the watcher is not subscribed
HEARTBEAT_PERIOD = 1.0  # seconds between two reads of the heartbeat key
#: seconds :meth:`LiveCache.close` waits for the watcher: longer than a request to unreachable sentinels
CLOSE_TIMEOUT = 12.0


def bridge_status(heartbeat: bytes | None) -> dict[str, Any]:
    """{"ok": bool, "problems": [sentences]} from the heartbeat key's value (None: key missing)."""
    if heartbeat is None:
        return {
            "ok": False,
            "problems": ["No bridge is feeding the store: the values shown may be stale."],
        }
    try:
        beat = json.loads(heartbeat)
        links = list(beat.get("links", []))
    except (ValueError, AttributeError, TypeError):
        return {"ok": False, "problems": ["The bridge's heartbeat cannot be read."]}
    problems = [
        f"{link.get('what', 'a link')} is down ({link.get('text', '')}): the values shown may be stale."
        if not link.get("connected")
        else f"{link.get('what', 'a link')}: {link.get('text', '')}."
        for link in links
        if isinstance(link, dict) and (not link.get("connected") or link.get("partial"))
    ]
    return {"ok": not problems, "problems": problems}


@dataclass
class Answer:
    """A JSON body and its ETag."""

    body: bytes
    etag: str


@dataclass
class _Entry:
    version: int
    read_at: float
    answer: Answer


class LiveCache:
    """Shared snapshots of devices and of the device list (see the module docstring)."""

    def __init__(
        self,
        rconn: redis.Redis,
        server: RedisServer,
        files_of: FilesOf | None = None,
        history_interval: float = INTERVAL,
    ) -> None:
        self.rconn, self.server, self.files_of = rconn, server, files_of
        self.keys = KeySpace(server.keyprefix)
        self._lock = threading.Lock()
        self._versions: dict[str, int] = {}
        self._list_version = 0
        self._entries: dict[str, _Entry] = {}
        self._reading: dict[str, threading.Lock] = {}
        self._status: dict[str, Any] = bridge_status(None)
        self._status_at = 0.0
        self._subscribed = False
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.hub = Hub()
        self.history = History(rconn, self.keys, history_interval)
        self.changes = Changes(
            rconn, server, self.hub, lambda name: self.device(name).body, files_of, self.history
        )

    # -- the watcher ----------------------------------------------------------------------------
    def start(self) -> None:
        """Start the watcher thread (once)."""
        with self._lock:
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(target=self._watch, name="indiredis-web-watcher", daemon=True)
        self._watcher.start()

    def close(self, timeout: float = CLOSE_TIMEOUT) -> None:
        """Stop the watcher and wait for it to end (at most ``timeout`` seconds: a Redis request it is
        in, such as asking unreachable sentinels for the master, ends by its own timeout); a watcher
        told to stop logs nothing more."""
        self._stop.set()
        watcher = self._watcher
        if watcher is not None and watcher is not threading.current_thread():
            watcher.join(timeout)

    def _watch(self) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            pubsub = self.rconn.pubsub(ignore_subscribe_messages=True)  # type: ignore[no-untyped-call]  # redis-py's stubs leave it untyped
            try:
                pubsub.subscribe(self.server.from_indi_channel)
                self._subscribed = True
                self._changed_all()  # what happened while not subscribed is unknown
                self.changes.forget()
                backoff.reset()
                while not self._stop.is_set():
                    item = pubsub.get_message(timeout=0.0 if not self.changes.idle else HEARTBEAT_PERIOD)
                    if item and item.get("type") == "message":
                        self._changed(item["data"])
                        self._safely("a from_indi message", self.changes.feed, item["data"])
                    elif item is None and not self.changes.idle:
                        self._safely("the burst's changes", self.changes.flush)  # the burst is over
                    self._refresh_status()
                    self._safely("the history", self.history.flush)
            except redis.RedisError as exc:
                if self._subscribed and not self._stop.is_set():
                    log.warning("web client: lost the Redis notifications (%s); polling Redis meanwhile", exc)
                self._subscribed = False
                self._set_status({"ok": False, "problems": ["The Redis store cannot be reached."]})
                self._stop.wait(backoff.next())
            except Exception:  # a bug must not end the watcher: pages would never be told again
                log.exception("web client: the watcher failed; it subscribes again")
                self._subscribed = False
                self._stop.wait(backoff.next())
            finally:
                self._subscribed = False
                try:
                    pubsub.close()
                except redis.RedisError:
                    pass

    @staticmethod
    def _safely(what: str, call: Callable[..., None], *args: Any) -> None:
        """``call(*args)``; a failure other than a lost connection (which the watcher's loop handles:
        it subscribes again) is logged with its traceback and costs this one message only."""
        try:
            call(*args)
        except redis.ResponseError:  # Redis answered: the connection is fine
            log.exception("web client: cannot show %s; the watcher goes on", what)
        except redis.RedisError:
            raise
        except Exception:
            log.exception("web client: cannot show %s; the watcher goes on", what)

    def _changed(self, xml: bytes) -> None:
        head = message_head(xml if isinstance(xml, bytes) else str(xml).encode())
        device = head.device
        with self._lock:
            if device:
                self._versions[device] = self._versions.get(device, 0) + 1
            if not device or head.changes_layout or head.name == "CONNECTION":
                self._list_version += 1

    def files_changed(self) -> None:
        """Files of the blob folder were deleted: every snapshot is read again."""
        self._changed_all()

    def _changed_all(self) -> None:
        with self._lock:
            for device in self._versions:
                self._versions[device] += 1
            self._list_version += 1

    def _refresh_status(self) -> None:
        now = time.monotonic()
        if now - self._status_at < HEARTBEAT_PERIOD * 0.9:
            return
        self._status_at = now
        beat = self.rconn.get(self.keys.heartbeat())
        self._set_status(bridge_status(None if beat is None else _text(beat).encode()))

    def _set_status(self, status: dict[str, Any]) -> None:
        with self._lock:
            changed, self._status = status != self._status, status
        if changed:
            self.hub.publish("", {"status": status})

    # -- the snapshots --------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The bridge's state for the banner (read now when the watcher is not running)."""
        if not self._subscribed:
            self._refresh_status()
        with self._lock:
            return self._status

    def _cached(self, key: str, version: int, read: Callable[[], Any]) -> Answer:
        """The answer for ``key`` at ``version``, read at most once per change by one thread."""
        max_age = MAX_AGE if self._subscribed else UNWATCHED_AGE
        with self._lock:
            entry = self._entries.get(key)
            reading = self._reading.setdefault(key, threading.Lock())
        if entry is not None and entry.version == version and time.monotonic() - entry.read_at < max_age:
            return entry.answer
        with reading:  # one reader per key; the others wait and take its result
            with self._lock:
                entry = self._entries.get(key)
            now = time.monotonic()
            if entry is not None and entry.version == version and now - entry.read_at < max_age:
                return entry.answer
            answer = Answer(*as_json(read()))
            with self._lock:
                self._entries[key] = _Entry(version, now, answer)
            return answer

    def device(self, name: str) -> Answer:
        """The device's live state (see :func:`.state.device_state`)."""
        self.start()
        with self._lock:
            version = self._versions.setdefault(name, 0)
        return self._cached(
            "device:" + name,
            version,
            lambda: device_state(read_device(self.rconn, self.server, name), self.files_of),
        )

    def devices(self) -> Answer:
        """The device list with connection states, and the last message that named no device."""
        self.start()
        with self._lock:
            version = self._list_version

        def read() -> Any:
            message = tools.last_message(self.rconn, self.server) or ""
            return devices_state(read_devices(self.rconn, self.server), message)

        return self._cached("devices", version, read)


def with_status(answer: Answer, status: dict[str, Any]) -> Answer:
    """``answer``'s JSON object with the bridge status added under "status", and its own ETag."""
    extra, extra_tag = as_json(status)
    body = answer.body[:-1] + b',"status":' + extra + b"}"
    return Answer(body, answer.etag[:-1] + extra_tag[1:9] + '"')
