"""Client-side API over the Redis store (``docs/tools.md``).

GUIs import these functions to read what the bridges keep in Redis and to send
INDI requests by publishing XML on the ``to_indi`` channel.  Every name,
parameter order, default and return type matches the original package.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import redis

from .errors import InvalidValue
from .hosts import RedisServer
from .protocol.messages import Message
from .protocol.numbers import format_number, number_to_float
from .protocol.vocabulary import SwitchState, VectorKind
from .protocol.xmlout import BLOB_INSTRUCTIONS, indi_timestamp
from .redisconnect import redis_client
from .store.keys import DEFINITION_KEYS, OTHER_STATE_KEYS, KeySpace

log = logging.getLogger(__name__)

__all__ = [
    "attributes_dict",
    "clearredis",
    "devices",
    "elements",
    "elements_dict",
    "enableblob",
    "format_number",
    "getProperties",
    "getproperties_timestamp",
    "last_message",
    "logs",
    "newblobvector",
    "newnumbervector",
    "newswitchvector",
    "newtextvector",
    "number_to_float",
    "open_redis",
    "properties",
    "property_elements",
]


def _keys(redisserver: RedisServer) -> KeySpace:
    return KeySpace(redisserver.keyprefix)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _sorted_members(rconn: redis.Redis, key: str) -> list[str]:
    return sorted(_text(member) for member in rconn.smembers(key))


def _hash(rconn: redis.Redis, key: str) -> dict[str, str]:
    return {_text(k): _text(v) for k, v in rconn.hgetall(key).items()}


def open_redis(redisserver: RedisServer) -> redis.Redis | None:
    """A ``redis.Redis`` connection (5 s socket timeout), or None when Redis cannot be reached.

    Any kind of ``redisserver`` (TCP, Unix socket, Sentinel: :mod:`indiredis.redisconnect`); with
    Sentinel the connection follows the master after a failover."""
    try:
        rconn = redis_client(redisserver, socket_timeout=5, socket_connect_timeout=5)
        rconn.ping()
    except redis.RedisError:
        return None
    return rconn


def getproperties_timestamp(
    rconn: redis.Redis, redisserver: RedisServer, name: str = "", device: str = ""
) -> str | None:
    """The stored time of the last matching getProperties, or None."""
    value = rconn.get(_keys(redisserver).getproperties(name, device))
    return None if value is None else _text(value)


def last_message(rconn: redis.Redis, redisserver: RedisServer, device: str = "") -> str | None:
    """The newest ``"<timestamp> <text>"`` message for ``device`` (or the system), or None."""
    keys = _keys(redisserver)
    value = rconn.get(keys.devicemessages(device) if device else keys.messages())
    return None if value is None else _text(value)


def devices(rconn: redis.Redis, redisserver: RedisServer) -> list[str]:
    """Sorted list of device names."""
    return _sorted_members(rconn, _keys(redisserver).devices())


def properties(rconn: redis.Redis, redisserver: RedisServer, device: str) -> list[str]:
    """Sorted list of the device's property names."""
    return _sorted_members(rconn, _keys(redisserver).properties(device))


def elements(rconn: redis.Redis, redisserver: RedisServer, name: str, device: str) -> list[str]:
    """Sorted list of the property's element names."""
    return _sorted_members(rconn, _keys(redisserver).elements(name, device))


def attributes_dict(rconn: redis.Redis, redisserver: RedisServer, name: str, device: str) -> dict[str, str]:
    """The property's attributes."""
    return _hash(rconn, _keys(redisserver).attributes(name, device))


def elements_dict(
    rconn: redis.Redis, redisserver: RedisServer, elementname: str, name: str, device: str
) -> dict[str, str]:
    """The element's attributes."""
    return _hash(rconn, _keys(redisserver).elementattributes(elementname, name, device))


_DIGITS = re.compile(r"(\d+)")


def _natural_key(label: str) -> list[Any]:
    """Sort key in which the numeric parts of a label compare as numbers."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in _DIGITS.split(label) if part]


def property_elements(
    rconn: redis.Redis, redisserver: RedisServer, name: str, device: str
) -> list[dict[str, str]]:
    """Element attribute dicts of the property, ordered by label (numbers in labels compare as numbers)."""
    keys = _keys(redisserver)
    names = elements(rconn, redisserver, name, device)
    pipe = rconn.pipeline(transaction=False)
    for element in names:
        pipe.hgetall(keys.elementattributes(element, name, device))
    dicts = [{_text(k): _text(v) for k, v in result.items()} for result in pipe.execute()]
    dicts = [d for d in dicts if d]
    return sorted(dicts, key=lambda d: _natural_key(d.get("label", d.get("name", ""))))


def logs(rconn: redis.Redis, redisserver: RedisServer, number: int, *keys: str) -> list[list[Any]] | None:
    """Up to ``number`` newest entries of ``logdata:<keys...>`` as ``[[receive_time, data], ...]``."""
    if number < 1 or not keys:
        return None
    entries = rconn.lrange(_keys(redisserver).logdata(*keys), 0, number - 1)
    result: list[list[Any]] = []
    for entry in entries:
        text = _text(entry)
        stamp, _, payload = text.partition(" ")
        try:
            result.append([stamp, json.loads(payload)])
        except ValueError:
            continue
    return result


def _publish(rconn: redis.Redis, redisserver: RedisServer, xml: bytes) -> str:
    if not rconn.publish(redisserver.to_indi_channel, xml):
        # Redis keeps no pub/sub message for later: nobody subscribed means the request is gone
        log.warning(
            "no bridge was subscribed to %s, so this request was not delivered: %s (a bridge restarting, "
            "or Redis failing over to a replica, loses what is published meanwhile; send it again)",
            redisserver.to_indi_channel,
            xml[:120].decode("utf-8", "replace"),
        )
    return xml.decode("utf-8")


def _stamp(timestamp: datetime | None) -> str:
    return indi_timestamp(timestamp)


def getProperties(
    rconn: redis.Redis, redisserver: RedisServer, name: str = "", device: str = ""
) -> str | None:
    """Publish a getProperties (for all, a device, or a property) and record its time."""
    if name and not device:
        return None
    xml = Message.get_properties(device, name).raw
    rconn.set(_keys(redisserver).getproperties(name, device), indi_timestamp())
    return _publish(rconn, redisserver, xml)


def _new_vector(
    kind: VectorKind,
    rconn: redis.Redis,
    redisserver: RedisServer,
    name: str,
    device: str,
    values: Mapping[str, str],
    timestamp: datetime | None,
    check: Any,
) -> str | None:
    if not name or not device or not isinstance(values, Mapping) or not values:
        return None
    try:
        cleaned = {str(element): check(value) for element, value in values.items()}
    except (TypeError, ValueError):
        return None
    message = Message.new_vector(kind, device, name, cleaned, _stamp(timestamp))
    return _publish(rconn, redisserver, message.raw)


def _switch_value(value: Any) -> str:
    if value not in (SwitchState.ON, SwitchState.OFF):
        raise InvalidValue(value)
    return str(value)


def _number_value(value: Any) -> str:
    text = str(value).strip()
    number_to_float(text)  # raises ValueError when not a number
    return text


def newswitchvector(
    rconn: redis.Redis,
    redisserver: RedisServer,
    name: str,
    device: str,
    values: Mapping[str, str],
    timestamp: datetime | None = None,
) -> str | None:
    """Publish a newSwitchVector; ``values`` maps elements to "On"/"Off". None on bad input."""
    return _new_vector(VectorKind.SWITCH, rconn, redisserver, name, device, values, timestamp, _switch_value)


def newtextvector(
    rconn: redis.Redis,
    redisserver: RedisServer,
    name: str,
    device: str,
    values: Mapping[str, str],
    timestamp: datetime | None = None,
) -> str | None:
    """Publish a newTextVector; ``values`` maps elements to text. None on bad input."""
    return _new_vector(VectorKind.TEXT, rconn, redisserver, name, device, values, timestamp, str)


def newnumbervector(
    rconn: redis.Redis,
    redisserver: RedisServer,
    name: str,
    device: str,
    values: Mapping[str, str],
    timestamp: datetime | None = None,
) -> str | None:
    """Publish a newNumberVector; ``values`` maps elements to number strings (sexagesimal allowed)."""
    return _new_vector(VectorKind.NUMBER, rconn, redisserver, name, device, values, timestamp, _number_value)


def newblobvector(
    rconn: redis.Redis,
    redisserver: RedisServer,
    name: str,
    device: str,
    values: Iterable[Mapping[str, Any]],
    timestamp: datetime | None = None,
) -> str | None:
    """Publish a newBLOBVector.

    ``values`` is a list of dicts with ``name``, ``size``, ``format`` and either
    ``filepath`` (a file to read) or ``value`` (bytes).  ``size`` is the
    uncompressed size, as INDI asks, even when ``format`` ends in ``.z`` or ``.gz``.
    """
    if not name or not device or isinstance(values, (str, bytes, Mapping)):
        return None
    blobs: list[tuple[str, int, str, bytes]] = []
    try:
        for item in values:
            if "value" in item:
                data = item["value"]
                if isinstance(data, str):
                    data = data.encode("utf-8")
            else:
                data = Path(item["filepath"]).read_bytes()
            blobs.append((str(item["name"]), int(item["size"]), str(item["format"]), bytes(data)))
    except (KeyError, TypeError, ValueError, OSError):
        return None
    if not blobs:
        return None
    return _publish(rconn, redisserver, Message.new_blob_vector(device, name, blobs, _stamp(timestamp)).raw)


def enableblob(
    rconn: redis.Redis, redisserver: RedisServer, name: str, device: str, instruction: str
) -> str | None:
    """Publish an enableBLOB (Never/Also/Only); an empty ``name`` means every property of the device."""
    if not device or instruction not in BLOB_INSTRUCTIONS:
        return None
    return _publish(rconn, redisserver, Message.enable_blob(device, name, instruction).raw)


def clearredis(rconn: redis.Redis, redisserver: RedisServer) -> None:
    """Delete the current-state keys (not the history logs)."""
    pipe = rconn.pipeline(transaction=False)
    for pattern in _keys(redisserver).patterns(DEFINITION_KEYS + OTHER_STATE_KEYS):
        for key in rconn.scan_iter(match=pattern, count=1000):
            pipe.delete(key)
    pipe.execute()
