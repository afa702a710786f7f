"""Key names of the Redis key space (``docs/redis-keys.md``), in one place.

Every module that reads or writes the store builds its keys here, so the
layout that GUIs depend on is defined exactly once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidValue

#: default lengths of the history lists, by ``log_lengths`` key
DEFAULT_LOG_LENGTHS: dict[str, int] = {
    "devices": 5,
    "properties": 5,
    "attributes": 5,
    "elements": 5,
    "messages": 5,
    "textvector": 5,
    "numbervector": 50,
    "switchvector": 5,
    "lightvector": 5,
    "blobvector": 5,
}


def merged_log_lengths(log_lengths: dict[str, int] | None) -> dict[str, int]:
    """Defaults overlaid with the caller's values; a value below 1 counts as 1."""
    lengths = dict(DEFAULT_LOG_LENGTHS)
    for key, value in (log_lengths or {}).items():
        if key not in DEFAULT_LOG_LENGTHS:
            raise InvalidValue(f"unknown log_lengths key {key!r}; known: {', '.join(DEFAULT_LOG_LENGTHS)}")
        lengths[key] = max(1, int(value))
    return lengths


#: the keys that describe what the devices define (``<prefix>`` + these, as ``SCAN MATCH`` patterns)
DEFINITION_KEYS = (
    "devices",
    "properties:*",
    "attributes:*",
    "elements:*",
    "elementattributes:*",
    "propertyorder:*",
    "elementorder:*",
)
#: the other current-state keys: last messages and the getProperties records of clients
OTHER_STATE_KEYS = ("messages", "devicemessages:*", "getProperties", "getProperties:*")


def glob_escape(text: str) -> str:
    """``text`` matched literally in a Redis ``SCAN MATCH`` / ``KEYS`` pattern."""
    return re.sub(r"([*?\[\]\\])", r"\\\1", text)


@dataclass(frozen=True)
class KeySpace:
    """Builds the keys for one key prefix."""

    prefix: str = "indi_"

    def devices(self) -> str:
        return f"{self.prefix}devices"

    def properties(self, device: str) -> str:
        return f"{self.prefix}properties:{device}"

    def attributes(self, name: str, device: str) -> str:
        return f"{self.prefix}attributes:{name}:{device}"

    def elements(self, name: str, device: str) -> str:
        return f"{self.prefix}elements:{name}:{device}"

    def elementattributes(self, element: str, name: str, device: str) -> str:
        return f"{self.prefix}elementattributes:{element}:{name}:{device}"

    def propertyorder(self, device: str) -> str:
        """Sorted set of the device's property names, scored by first definition (an addition to the
        original's keys: the driver's order, for clients that show properties as the driver defined them)."""
        return f"{self.prefix}propertyorder:{device}"

    def elementorder(self, name: str, device: str) -> str:
        """List of the property's element names in definition order (rewritten at each definition)."""
        return f"{self.prefix}elementorder:{name}:{device}"

    def heartbeat(self) -> str:
        """String (JSON) the bridge feeding this key space rewrites every second, with a short expiry:
        its name, the time, and the state of its links (see ``links.client_side.redisside``)."""
        return f"{self.prefix}heartbeat"

    def websession(self, token: str) -> str:
        """Hash of one web client session (user, CSRF token), expiring with the session."""
        return f"{self.prefix}websession:{token}"

    def messages(self) -> str:
        return f"{self.prefix}messages"

    def devicemessages(self, device: str) -> str:
        return f"{self.prefix}devicemessages:{device}"

    def getproperties(self, name: str = "", device: str = "") -> str:
        if device and name:
            return f"{self.prefix}getProperties:property:{name}:{device}"
        if device:
            return f"{self.prefix}getProperties:device:{device}"
        return f"{self.prefix}getProperties"

    def patterns(self, keys: tuple[str, ...]) -> list[str]:
        """``SCAN MATCH`` patterns for ``keys`` (e.g. :data:`DEFINITION_KEYS`) under this prefix."""
        return [glob_escape(self.prefix) + key for key in keys]

    def log(self, key: str) -> str:
        """The history list of a current-state key (``P devices`` -> ``P logdata:devices``)."""
        return f"{self.prefix}logdata:{key[len(self.prefix) :]}"

    def logdata(self, *parts: str) -> str:
        """``P logdata:<parts joined by ':'>``, as ``tools.logs`` names them."""
        return f"{self.prefix}logdata:" + ":".join(parts)
