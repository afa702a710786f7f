"""One device read from the Redis store in three pipelined round trips (pages and live updates share it).

The ``tools`` functions cost a round trip per property and per element list; a
device page polled every 0.3 s by several browsers would spend its time waiting
on Redis, so the web client reads the same keys in batches.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from ..hosts import RedisServer
from ..store.keys import KeySpace
from ..tools import _natural_key, _text


@dataclass
class PropertyView:
    """A property's attributes and its element attribute dicts, ordered by label as
    ``tools.property_elements``."""

    name: str
    attrs: dict[str, str]
    elements: list[dict[str, str]] = field(default_factory=list)


@dataclass
class DeviceView:
    """Everything the web client shows of a device."""

    device: str
    properties: list[PropertyView]
    message: str


def _texts(mapping: dict[bytes, bytes]) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in mapping.items()}


def read_device(rconn: redis.Redis, server: RedisServer, device: str) -> DeviceView:
    """The device's properties (sorted by name) with attributes and elements, and its last message."""
    keys = KeySpace(server.keyprefix)
    pipe = rconn.pipeline(transaction=False)
    pipe.smembers(keys.properties(device))
    pipe.get(keys.devicemessages(device))
    members, message = pipe.execute()
    names = sorted(_text(m) for m in members)
    for name in names:
        pipe.hgetall(keys.attributes(name, device))
        pipe.smembers(keys.elements(name, device))
    replies = pipe.execute()
    views: list[PropertyView] = []
    element_names: list[list[str]] = []
    for index, name in enumerate(names):
        attrs = _texts(replies[2 * index])
        if not attrs:
            continue  # deleted between the two round trips
        views.append(PropertyView(name, attrs))
        element_names.append(sorted(_text(e) for e in replies[2 * index + 1]))
    for view, elements in zip(views, element_names, strict=True):
        for element in elements:
            pipe.hgetall(keys.elementattributes(element, view.name, device))
    element_replies = iter(pipe.execute())
    for view, elements in zip(views, element_names, strict=True):
        dicts = [d for d in (_texts(next(element_replies)) for _ in elements) if d]
        view.elements = sorted(dicts, key=lambda d: _natural_key(d.get("label", d.get("name", ""))))
    return DeviceView(device, views, "" if message is None else _text(message))
