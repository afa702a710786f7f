"""What each message published on ``from_indi`` changes on the pages, as events for :mod:`.push`.

A ``set*Vector`` becomes a patch of its property made from the message itself (its values, state,
message and time; numbers formatted as the store formats them), not from a later read of the
keys: a driver that sends two values of a property in one burst shows both, none is lost.  BLOB
sets read their property again (the file names are the store's).  Definitions and deletions
re-read the whole device once the burst of them is over (a driver defines dozens at connection).
``CONNECTION`` changes carry the device list with them, in the same event, so the bar of devices
and the device's Connection block always show the same state.

Messages (the driver's, and the bridge's own notes such as "Property X deleted from device Y",
told apart by :func:`.state.message_kind`) are kept per device in the web process, the newest
:data:`LOG_KEPT`, more than the key space's history (5 by default, which a disconnection fills with
the bridge's notes): the log starts from that history and grows with every message seen.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

import redis

from ..hosts import RedisServer
from ..protocol.document import parse_document
from ..protocol.messages import (
    Definition,
    DelProperty,
    IndiMessage,
    Message,
    SetBLOBVector,
    SetNumberVector,
    SetVector,
)
from ..protocol.numbers import number_formatter, number_to_float
from ..protocol.vocabulary import DEFAULT_NUMBER_FORMAT
from ..protocol.xmlout import indi_timestamp
from ..store.keys import KeySpace
from ..tools import _text
from .history import History
from .push import Hub
from .snapshot import message_log, read_devices, read_property
from .state import FilesOf, message_kind, property_state

log = logging.getLogger(__name__)

LOG_KEPT = 500  # messages kept per device by the web process


def now_stamp() -> str:
    """The time now as the store writes it when a message has none (see :func:`indi_timestamp`)."""
    return indi_timestamp()


class Changes:
    """Turns ``from_indi`` messages into events of ``hub`` (called by the watcher thread only)."""

    def __init__(
        self,
        rconn: redis.Redis,
        server: RedisServer,
        hub: Hub,
        device_body: Callable[[str], bytes],
        files_of: FilesOf | None = None,
        history: History | None = None,
    ) -> None:
        self.rconn, self.server, self.hub, self.files_of = rconn, server, hub, files_of
        self.history = history
        self.device_body = device_body  # the device's whole state as JSON (the shared snapshot)
        self.keys = KeySpace(server.keyprefix)
        self._formats: dict[tuple[str, str], dict[str, str]] = {}
        self._summaries: dict[str, dict[str, Any]] | None = None
        self._message = ""
        self._pending: set[str] = set()  # devices to read again once the burst is over
        self._pending_list = False
        self._pending_all = False  # every device to read again (see forget)
        self._logs: dict[str, deque[list[str]]] = {}
        self._log_lock = threading.Lock()

    # -- messages kept ---------------------------------------------------------------------------
    def log_of(self, device: str) -> list[list[str]]:
        """The device's messages, newest first: ``[timestamp, text, kind]`` (any thread may ask)."""
        with self._log_lock:
            return list(self._log(device))

    def _log(self, device: str) -> deque[list[str]]:
        found = self._logs.get(device)
        if found is None:  # from the key space's history, which holds what was published so far
            history: list[bytes] = self.rconn.lrange(  # type: ignore[assignment]  # bytes: no decoding
                self.keys.logdata("devicemessages", device), 0, -1
            )
            found = deque(
                ([stamp, text, message_kind(text)] for stamp, text in message_log(history)), maxlen=LOG_KEPT
            )
            self._logs[device] = found
        return found

    def _note(self, device: str, stamp: str, text: str, kind: str) -> list[list[str]]:
        """Keep one message of ``device``; the entries a page must add (the whole log when it was
        read now, which includes this message)."""
        with self._log_lock:
            if device not in self._logs:
                return list(self._log(device))
            entry = [stamp, text, kind]
            self._logs[device].appendleft(entry)
            return [entry]

    # -- the device list --------------------------------------------------------------------------
    def devices(self) -> dict[str, Any]:
        """The device list as the pages show it (kept in memory; read when unknown)."""
        if self._summaries is None:
            self._summaries = {
                d.name: {"name": d.name, "connected": d.connected, "state": d.state}
                for d in read_devices(self.rconn, self.server)
            }
            self._message = _text(self.rconn.get(self.keys.messages()) or b"")
        return {"devices": list(self._summaries.values()), "message": self._message}

    def forget(self) -> None:
        """Everything cached is unknown again (after a (re)subscription of the watcher): the next
        :meth:`flush` publishes the device list and every device's whole state, since what changed
        while nobody listened (a page may have read its state just before) was never published."""
        self._formats.clear()
        self._summaries = None
        self._pending_list = True
        self._pending_all = True

    # -- messages -------------------------------------------------------------------------------
    def feed(self, xml: bytes) -> None:
        """Publish what one ``from_indi`` message changes (a message that cannot be read is logged)."""
        messages, problems = parse_document(xml)
        for problem in problems:
            log.warning("web client: unreadable message on from_indi: %s", problem)
        for message in messages:
            try:
                self._one(message)
            except redis.RedisError:
                raise
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("web client: cannot show %s: %s", message.tag, exc)

    def _one(self, message: Message) -> None:
        match message:
            case Definition() | DelProperty():
                self._layout(message)
            case IndiMessage():
                self._indi_message(message)
            case SetVector() if message.device and message.name:
                self._values(message)

    def _layout(self, message: Definition | DelProperty) -> None:
        """A definition or a deletion: which properties a device has changes."""
        device, name = message.device, message.name
        text, stamp = message.text, message.timestamp or now_stamp()
        self._formats = {k: v for k, v in self._formats.items() if k[0] != device or (name and k[1] != name)}
        if device:
            self._pending.add(device)
        self._pending_list = True
        deletion = isinstance(message, DelProperty)
        if deletion and device and not text:  # the note the store writes
            text = f"Property {name} deleted from device {device}" if name else f"Device {device} deleted"
        if device and text:
            kind = message_kind(text) if deletion else "driver"
            entries = self._note(device, stamp, text, kind)
            self.hub.publish(device, {"device": device, "log": entries})

    def _indi_message(self, message: IndiMessage) -> None:
        device, text, stamp = message.device, message.text, message.timestamp or now_stamp()
        if device:
            entries = self._note(device, stamp, text, "driver")
            self.hub.publish(device, {"device": device, "log": entries})
        elif text:
            self._message = f"{stamp} {text}"
            self.hub.publish("", {**self.devices(), "message": self._message})

    def _values(self, message: SetVector) -> None:
        device, name = message.device, message.name
        text, stamp = message.text, message.timestamp or now_stamp()
        if isinstance(message, SetNumberVector) and not all(m.only_named for m in message.members):
            self._pending.add(device)  # new limits or format: the block's layout changes
            return
        patch = self._patch(message)
        if patch is None:
            return
        event: dict[str, Any] = {"device": device, "props": {name: patch}}
        if text:
            event["log"] = self._note(device, stamp, text, "driver")
        if name == "CONNECTION":
            event.update(self._connection(device, patch))
            self.hub.publish("", event)  # the bar of every page and this device's page, together
        else:
            self.hub.publish(device, event)

    def _patch(self, message: SetVector) -> dict[str, Any] | None:
        """The property's new state, values and message as :func:`.state.property_state` gives them
        (only what the message says; the page keeps the rest)."""
        device, name = message.device, message.name
        if isinstance(message, SetBLOBVector):
            view = read_property(self.rconn, self.server, device, name)
            return None if view is None else property_state(view, device, self.files_of)
        patch: dict[str, Any] = {"timestamp": message.timestamp or now_stamp()}
        state = message.changes().get("state")
        if state:
            patch["state"] = state
        if message.text:
            patch["message"] = message.text
        if isinstance(message, SetNumberVector):
            formats = self._number_formats(device, name, [m.name for m in message.members])
            patch["elements"] = {m.name: _formatted(m.text, formats.get(m.name, "")) for m in message.members}
            if self.history is not None:
                self.history.add(device, name, _numbers(message))
        else:
            patch["elements"] = {m.name: m.text for m in message.members}
        return patch

    def _number_formats(self, device: str, name: str, elements: list[str]) -> dict[str, str]:
        known = self._formats.get((device, name))
        if known is None or any(e not in known for e in elements):
            pipe = self.rconn.pipeline(transaction=False)
            for element in elements:
                pipe.hget(self.keys.elementattributes(element, name, device), "format")
            known = {
                e: _text(f) if f else DEFAULT_NUMBER_FORMAT
                for e, f in zip(elements, pipe.execute(), strict=True)
            }
            self._formats[(device, name)] = known
        return known

    def _connection(self, device: str, patch: dict[str, Any]) -> dict[str, Any]:
        listed = self.devices()
        summary = self._summaries.get(device) if self._summaries is not None else None
        if summary is not None:
            if "state" in patch:
                summary["state"] = patch["state"]
            if "CONNECT" in patch["elements"]:
                summary["connected"] = patch["elements"]["CONNECT"] == "On"
        return listed

    # -- definitions and deletions, once a burst is over -------------------------------------------
    def flush(self) -> None:
        """Publish the whole state of the devices defined or deleted since the last flush."""
        if self._pending_list:
            self._pending_list = False
            self._summaries = None
            self.hub.publish("", {"devices": self.devices()["devices"], "message": self._message})
        if self._pending_all:
            self._pending_all = False
            self._pending.update(summary["name"] for summary in self.devices()["devices"])
        pending, self._pending = self._pending, set()
        for device in sorted(pending):
            body = self.device_body(device)
            self.hub.publish(device, b'{"device":%s,"full":%s}' % (_json_text(device), body))

    @property
    def idle(self) -> bool:
        """Whether nothing waits for :meth:`flush`."""
        return not self._pending and not self._pending_list and not self._pending_all


def _numbers(message: Message) -> dict[str, float]:
    """The values of a ``setNumberVector`` that are numbers."""
    found = {}
    for member in message.members:
        try:
            found[member.name] = number_to_float(member.text)
        except ValueError:
            continue
    return found


def _formatted(text: str, indi_format: str) -> str:
    """A number as the store's ``formatted_number`` has it (the raw text when it is no number)."""
    try:
        number = number_to_float(text)
    except ValueError:
        return text
    return number_formatter(indi_format or DEFAULT_NUMBER_FORMAT)(number).strip()


def _json_text(text: str) -> bytes:
    return json.dumps(text).encode()
