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


def _masked_repr(self: NamedTuple) -> str:
    """A repr that never shows a password."""
    fields = ", ".join(
        f"{name}={'***' if name == 'password' and value else repr(value)}"
        for name, value in self._asdict().items()
    )
    return f"{type(self).__name__}({fields})"


class RedisServer(NamedTuple):
    """How to reach Redis and which keys and channels to use there.

    The fields after ``from_indi_channel`` (ACL user name and TLS) were added
    after the original package's seven and all have defaults.
    """

    host: str
    port: int
    db: int
    password: str
    keyprefix: str
    to_indi_channel: str
    from_indi_channel: str
    username: str = ""
    ssl: bool = False
    ssl_ca_certs: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True

    __repr__ = _masked_repr


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
    ssl: bool = False
    ssl_ca_certs: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    __repr__ = _masked_repr


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


def _check_tls(ssl: bool, ca: str, cert: str, key: str) -> None:
    if (cert or key) and not (cert and key):
        raise ValueError("a TLS client certificate needs both ssl_certfile and ssl_keyfile")
    if (ca or cert) and not ssl:
        raise ValueError("TLS files are given but ssl is not enabled")


def redis_server(
    host: str = "localhost",
    port: int = 6379,
    db: int = 0,
    password: str = "",
    keyprefix: str = "indi_",
    to_indi_channel: str = "to_indi",
    from_indi_channel: str = "from_indi",
    username: str = "",
    ssl: bool = False,
    ssl_ca_certs: str = "",
    ssl_certfile: str = "",
    ssl_keyfile: str = "",
    ssl_check_hostname: bool = True,
) -> RedisServer:
    """Describe a Redis server, the key prefix and the two pub/sub channels.

    ``keyprefix`` is glued to every key with no separator (``indi_devices``).
    ``username`` selects a Redis 6+ ACL user (with ``password``).  ``ssl``
    turns on TLS; ``ssl_ca_certs`` is the CA file that signs the server's
    certificate (the system's CAs when empty), ``ssl_certfile`` and
    ``ssl_keyfile`` an optional client certificate, and ``ssl_check_hostname``
    whether the server's name must match its certificate.
    """
    if int(db) < 0:
        raise ValueError("db must be 0 or more")
    if not isinstance(keyprefix, str):
        raise ValueError("keyprefix must be a string")
    _check_tls(ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile)
    return RedisServer(
        _check_name("host", host),
        _check_port(port),
        int(db),
        password or "",
        keyprefix,
        _check_name("to_indi_channel", to_indi_channel),
        _check_name("from_indi_channel", from_indi_channel),
        username or "",
        bool(ssl),
        ssl_ca_certs or "",
        ssl_certfile or "",
        ssl_keyfile or "",
        bool(ssl_check_hostname),
    )


def redis_connection_options(server: RedisServer) -> dict[str, object]:
    """Keyword arguments for ``redis.Redis`` / ``redis.asyncio.Redis`` from a ``redis_server`` tuple."""
    options: dict[str, object] = {
        "host": server.host,
        "port": server.port,
        "db": server.db,
        "username": server.username or None,
        "password": server.password or None,
    }
    if server.ssl:
        options.update(
            ssl=True,
            ssl_ca_certs=server.ssl_ca_certs or None,
            ssl_certfile=server.ssl_certfile or None,
            ssl_keyfile=server.ssl_keyfile or None,
            ssl_check_hostname=server.ssl_check_hostname,
            ssl_cert_reqs="required",
        )
    return options


def mqtt_server(
    host: str,
    port: int = 1883,
    username: str = "",
    password: str = "",
    to_indi_topic: str = "to_indi",
    from_indi_topic: str = "from_indi",
    snoop_control_topic: str = "snoop_control",
    snoop_data_topic: str = "snoop_data",
    ssl: bool = False,
    ssl_ca_certs: str = "",
    ssl_certfile: str = "",
    ssl_keyfile: str = "",
) -> MQTTServer:
    """Describe an MQTT broker and the four topic roots the bridges use.

    ``ssl`` turns on TLS; ``ssl_ca_certs`` is the CA file that signs the
    broker's certificate (the system's CAs when empty); ``ssl_certfile`` and
    ``ssl_keyfile`` an optional client certificate.
    """
    topics = (to_indi_topic, from_indi_topic, snoop_control_topic, snoop_data_topic)
    for topic in topics:
        _check_name("topic", topic)
        if any(c in topic for c in "#+"):
            raise ValueError(f"topic {topic!r} must not contain MQTT wildcards")
    if len(set(topics)) != 4:
        raise ValueError("the four MQTT topics must differ")
    _check_tls(ssl, ssl_ca_certs, ssl_certfile, ssl_keyfile)
    return MQTTServer(
        _check_name("host", host),
        _check_port(port),
        username or "",
        password or "",
        *topics,
        bool(ssl),
        ssl_ca_certs or "",
        ssl_certfile or "",
        ssl_keyfile or "",
    )
