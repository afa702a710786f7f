"""Connection descriptions: the ``indi_server``, ``redis_server`` and ``mqtt_server`` tuples.

These are the values a caller hands to every bridge function.  They are plain
named tuples so that they can be logged, compared and pickled; the factory
functions check the values and fill in the documented defaults.
"""

from __future__ import annotations

from typing import NamedTuple


class IndiServer(NamedTuple):
    """Where an indiserver listens."""

    host: str
    port: int


class RedisServer(NamedTuple):
    """How to reach Redis and which keys and channels to use there."""

    host: str
    port: int
    db: int
    password: str
    keyprefix: str
    to_indi_channel: str
    from_indi_channel: str


class MQTTServer(NamedTuple):
    """How to reach the MQTT broker and which topics to use there."""

    host: str
    port: int
    username: str
    password: str
    to_indi_topic: str
    from_indi_topic: str
    snoop_control_topic: str
    snoop_data_topic: str


def _check_port(port: int) -> int:
    port = int(port)
    if not 0 < port < 65536:
        raise ValueError(f"port {port} is out of range 1-65535")
    return port


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty string")
    return value


def indi_server(host: str = "localhost", port: int = 7624) -> IndiServer:
    """Describe an indiserver at ``host``:``port``."""
    return IndiServer(_check_name("host", host), _check_port(port))


def redis_server(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str = "",
    keyprefix: str = "indi_",
    to_indi_channel: str = "to_indi",
    from_indi_channel: str = "from_indi",
) -> RedisServer:
    """Describe a Redis server, the key prefix and the two pub/sub channels.

    ``keyprefix`` is glued to every key with no separator (``indi_devices``).
    """
    if int(db) < 0:
        raise ValueError("db must be 0 or more")
    if not isinstance(keyprefix, str):
        raise ValueError("keyprefix must be a string")
    return RedisServer(
        _check_name("host", host),
        _check_port(port),
        int(db),
        password or "",
        keyprefix,
        _check_name("to_indi_channel", to_indi_channel),
        _check_name("from_indi_channel", from_indi_channel),
    )


def mqtt_server(
    host: str,
    port: int = 1883,
    username: str = "",
    password: str = "",
    to_indi_topic: str = "to_indi",
    from_indi_topic: str = "from_indi",
    snoop_control_topic: str = "snoop_control",
    snoop_data_topic: str = "snoop_data",
) -> MQTTServer:
    """Describe an MQTT broker and the four topic roots the bridges use."""
    topics = (to_indi_topic, from_indi_topic, snoop_control_topic, snoop_data_topic)
    for topic in topics:
        _check_name("topic", topic)
        if any(c in topic for c in "#+"):
            raise ValueError(f"topic {topic!r} must not contain MQTT wildcards")
    if len(set(topics)) != 4:
        raise ValueError("the four MQTT topics must differ")
    return MQTTServer(
        _check_name("host", host), _check_port(port), username or "", password or "", *topics
    )
