"""One device read from the Redis store in three pipelined round trips, in the driver's order.

The ``tools`` functions cost a round trip per property and per element list; a
device page watched by many browsers would spend its time waiting on Redis, so
the web client reads the same keys in batches (and :mod:`.live` shares each
read among every viewer).

Order: properties by their first definition (``propertyorder:<device>``),
elements as last defined (``elementorder:<property>:<device>``); keys written
by a bridge that keeps no order (the original package) fall back to names.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import redis

from ..hosts import RedisServer
from ..store.keys import KeySpace
from ..tools import _natural_key, _text


@dataclass
class PropertyView:
    """A property's hash as stored (its attributes, INDI's and the bridge's) and its element hashes, in
    definition order."""

    name: str
    fields: dict[str, str]
    elements: list[dict[str, str]] = field(default_factory=list)

    @property
    def group(self) -> str:
        return self.fields.get("group", "") or "Main"


@dataclass
class DeviceView:
    """Everything the web client shows of a device."""

    device: str
    properties: list[PropertyView]
    message: str
    #: (timestamp, text) of the device's messages, newest first (the history list of the key space)
    messages: list[tuple[str, str]] = field(default_factory=list)

    def groups(self) -> list[str]:
        """The property groups in the order the driver first used them."""
        return list(dict.fromkeys(view.group for view in self.properties))


def _texts(mapping: dict[bytes, bytes]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}


def in_definition_order(members: set[str], ordered: list[str]) -> list[str]:
    """``members`` in the order of ``ordered``; members it lacks follow by natural name order."""
    known = [name for name in dict.fromkeys(ordered) if name in members]
    rest = sorted(members.difference(known), key=_natural_key)
    return known + rest


def message_log(entries: list[bytes]) -> list[tuple[str, str]]:
    """``(timestamp, text)`` of history entries ``"<receive time> [timestamp, text]"`` (bad ones skipped)."""
    found: list[tuple[str, str]] = []
    for entry in entries:
        _, _, payload = _text(entry).partition(" ")
        try:
            stamp, text = json.loads(payload)
        except (ValueError, TypeError):
            continue
        found.append((str(stamp), str(text)))
    return found


def read_device(rconn: redis.Redis, server: RedisServer, device: str) -> DeviceView:
    """The device's properties with attributes and elements in definition order, and its messages."""
    keys = KeySpace(server.keyprefix)
    pipe = rconn.pipeline(transaction=False)
    pipe.smembers(keys.properties(device))
    pipe.zrange(keys.propertyorder(device), 0, -1)
    pipe.get(keys.devicemessages(device))
    pipe.lrange(keys.logdata("devicemessages", device), 0, -1)
    members, order, message, history = pipe.execute()
    names = in_definition_order({_text(m) for m in members}, [_text(m) for m in order])
    for name in names:
        pipe.hgetall(keys.attributes(name, device))
        pipe.smembers(keys.elements(name, device))
        pipe.lrange(keys.elementorder(name, device), 0, -1)
    replies = pipe.execute()
    views: list[PropertyView] = []
    element_names: list[list[str]] = []
    for index, name in enumerate(names):
        attrs, elements, element_order = replies[3 * index : 3 * index + 3]
        if not attrs:
            continue  # deleted between the two round trips
        views.append(PropertyView(name, _texts(attrs)))
        element_names.append(
            in_definition_order({_text(e) for e in elements}, [_text(e) for e in element_order])
        )
    for view, elements in zip(views, element_names, strict=True):
        for element in elements:
            pipe.hgetall(keys.elementattributes(element, view.name, device))
    replies_iter = iter(pipe.execute())
    for view, elements in zip(views, element_names, strict=True):
        view.elements = [d for d in (_texts(next(replies_iter)) for _ in elements) if d]
    return DeviceView(device, views, "" if message is None else _text(message), message_log(history))


@dataclass
class DeviceSummary:
    """A device in the device list: its name and its connection (state of CONNECTION, and whether
    CONNECT is On; ``None`` when the device has no CONNECTION property)."""

    name: str
    connected: bool | None
    state: str


def read_devices(rconn: redis.Redis, server: RedisServer) -> list[DeviceSummary]:
    """Every device, sorted by name, with its connection state, in two round trips."""
    keys = KeySpace(server.keyprefix)
    names = sorted((_text(d) for d in rconn.smembers(keys.devices())), key=_natural_key)
    pipe = rconn.pipeline(transaction=False)
    for name in names:
        pipe.hget(keys.attributes("CONNECTION", name), "state")
        pipe.hget(keys.elementattributes("CONNECT", "CONNECTION", name), "value")
    replies = pipe.execute()
    summaries = []
    for index, name in enumerate(names):
        state, connect = replies[2 * index], replies[2 * index + 1]
        connected = None if state is None else _text(connect or b"") == "On"
        summaries.append(DeviceSummary(name, connected, _text(state or b"Idle")))
    return summaries


def read_property(rconn: redis.Redis, server: RedisServer, device: str, name: str) -> PropertyView | None:
    """One property with its elements in definition order, in two round trips (None: not defined)."""
    keys = KeySpace(server.keyprefix)
    pipe = rconn.pipeline(transaction=False)
    pipe.sismember(keys.properties(device), name)
    pipe.hgetall(keys.attributes(name, device))
    pipe.smembers(keys.elements(name, device))
    pipe.lrange(keys.elementorder(name, device), 0, -1)
    member, attrs, elements, order = pipe.execute()
    if not member or not attrs:
        return None
    names = in_definition_order({_text(e) for e in elements}, [_text(e) for e in order])
    for element in names:
        pipe.hgetall(keys.elementattributes(element, name, device))
    dicts = [_texts(d) for d in pipe.execute()]
    return PropertyView(name, _texts(attrs), [d for d in dicts if d])
