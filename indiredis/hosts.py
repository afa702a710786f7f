"""Connection descriptions: the ``indi_server``, ``redis_server`` and ``mqtt_server`` values.

These are the values a caller hands to every bridge function.  They are frozen
dataclasses, checked once when built, so that they can be logged (passwords
masked), compared, hashed and pickled; the factory functions keep the original
package's positional order and defaults.  They still behave as the named tuples
they once were (``_fields``, ``_asdict()``, ``_replace()``, indexing and
unpacking), for callers of the original API.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Self

from .errors import HostError


@dataclass(frozen=True, repr=False)
class _Host:
    """What the three host descriptions share: a masked repr and the named-tuple API."""

    @property
    def _fields(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self))

    def _asdict(self) -> dict[str, Any]:
        """The fields by name, in order."""
        return {name: getattr(self, name) for name in self._fields}

    def _replace(self, **changes: Any) -> Self:
        """A copy with ``changes``, checked as a new value is."""
        return dataclasses.replace(self, **changes)

    def __iter__(self) -> Iterator[Any]:
        return iter(self._asdict().values())

    def __len__(self) -> int:
        return len(self._fields)

    def __getitem__(self, index: int | slice) -> Any:
        return tuple(self)[index]

    def __repr__(self) -> str:
        """A repr that never shows a password."""
        fields = ", ".join(
            f"{name}={'***' if name.endswith('password') and value else repr(value)}"
            for name, value in self._asdict().items()
        )
        return f"{type(self).__name__}({fields})"


def _set(host: object, name: str, value: object) -> None:
    object.__setattr__(host, name, value)  # how a frozen dataclass normalises its own fields


def _check_port(port: int) -> int:
    port = int(port)
    if not 0 < port < 65536:
        raise HostError(f"port {port} is out of range 1-65535")
    return port


def _check_name(what: str, value: str) -> str:
    if not isinstance(value, str) or not value:
        raise HostError(f"{what} must be a non-empty string")
    return value


def _check_tls(host: RedisServer | MQTTServer) -> None:
    """Normalise the host's TLS fields (None -> '') and check that they agree."""
    _set(host, "ssl", bool(host.ssl))
    for name in ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile"):
        _set(host, name, getattr(host, name) or "")
    ca, cert, key = host.ssl_ca_certs, host.ssl_certfile, host.ssl_keyfile
    if (cert or key) and not (cert and key):
        raise HostError("a TLS client certificate needs both ssl_certfile and ssl_keyfile")
    if (ca or cert) and not host.ssl:
        raise HostError("TLS files are given but ssl is not enabled")


def parse_sentinels(value: Any) -> tuple[tuple[str, int], ...]:
    """Sentinel addresses as ``((host, port), ...)``, from pairs or from the text
    ``"host:port, host:port"`` (``[::1]:26379`` for an IPv6 address; the port 26379 when left out)."""
    if not value:
        return ()
    items: list[Any] = value.replace(",", " ").split() if isinstance(value, str) else list(value)
    found: list[tuple[str, int]] = []
    for item in items:
        if isinstance(item, str):
            host, sep, port = item.rpartition(":")
            if not sep or (item.startswith("[") and not host.endswith("]")):
                host, port = item, "26379"
            if ":" in host and not host.startswith("["):
                raise HostError(f"sentinel {item!r}: write an IPv6 address in brackets, [::1]:26379")
            host = host.removeprefix("[").removesuffix("]")
            if not port.isdigit():
                raise HostError(f"sentinel {item!r} is not host:port")
            item = (host, int(port))
        try:
            host, port = item
        except (TypeError, ValueError):
            raise HostError(f"sentinel {item!r} is not a (host, port) pair") from None
        found.append((_check_name("sentinel host", host), _check_port(port)))
    return tuple(found)


def _check_kind(host: RedisServer) -> None:
    """Normalise the Unix socket and Sentinel fields and check that one kind of connection is asked."""
    _set(host, "socket", host.socket or "")
    _set(host, "sentinels", parse_sentinels(host.sentinels))
    _set(host, "service_name", host.service_name or "")
    _set(host, "sentinel_password", host.sentinel_password or "")
    if not isinstance(host.socket, str):
        raise HostError("socket must be a string")
    if host.socket and host.sentinels:
        raise HostError("give socket or sentinels, not both")
    if host.socket and host.ssl:
        raise HostError("TLS (ssl) is for TCP connections, not for a Unix socket")
    if host.sentinels and not host.service_name:
        raise HostError("sentinels need service_name, the name of the master they watch")
    if host.service_name and not host.sentinels:
        raise HostError("service_name is given but no sentinels to ask for it")
    if host.sentinel_password and not host.sentinels:
        raise HostError("sentinel_password is given but no sentinels")


@dataclass(frozen=True, repr=False)
class IndiServer(_Host):
    """Where an indiserver listens."""

    host: str = "localhost"
    port: int = 7624

    def __post_init__(self) -> None:
        _check_name("host", self.host)
        _set(self, "port", _check_port(self.port))


@dataclass(frozen=True, repr=False)
class RedisServer(_Host):
    """How to reach Redis and which keys and channels to use there.

    ``keyprefix`` is glued to every key with no separator (``indi_devices``).
    ``username`` selects a Redis 6+ ACL user (with ``password``).  ``ssl``
    turns on TLS; ``ssl_ca_certs`` is the CA file that signs the server's
    certificate (the system's CAs when empty), ``ssl_certfile`` and
    ``ssl_keyfile`` an optional client certificate, and ``ssl_check_hostname``
    whether the server's name must match its certificate.  The fields after
    ``from_indi_channel`` were added after the original package's seven.

    Three kinds of connection (:mod:`indiredis.redisconnect` makes them): TCP to ``host``:``port``
    (the default); a Unix socket, ``socket`` (``host`` and ``port`` are then not used);
    or Redis Sentinel, ``sentinels`` (``(host, port)`` pairs, or the text ``"host:port, host:port"``)
    asked for the master named ``service_name``, with ``sentinel_password`` for the sentinels
    themselves (``username`` and ``password`` are the master's).
    """

    host: str = "localhost"
    port: int = 6379
    db: int = 0
    password: str = ""
    keyprefix: str = "indi_"
    to_indi_channel: str = "to_indi"
    from_indi_channel: str = "from_indi"
    username: str = ""
    ssl: bool = False
    ssl_ca_certs: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""
    ssl_check_hostname: bool = True
    socket: str = ""
    sentinels: tuple[tuple[str, int], ...] = ()
    service_name: str = ""
    sentinel_password: str = ""

    def __post_init__(self) -> None:
        _check_kind(self)
        if int(self.db) < 0:
            raise HostError("db must be 0 or more")
        _set(self, "db", int(self.db))
        if not isinstance(self.keyprefix, str):
            raise HostError("keyprefix must be a string")
        _check_tls(self)
        _check_name("host", self.host)
        _set(self, "port", _check_port(self.port))
        _set(self, "password", self.password or "")
        _check_name("to_indi_channel", self.to_indi_channel)
        _check_name("from_indi_channel", self.from_indi_channel)
        _set(self, "username", self.username or "")
        _set(self, "ssl_check_hostname", bool(self.ssl_check_hostname))


@dataclass(frozen=True, repr=False)
class MQTTServer(_Host):
    """How to reach the MQTT broker and the four topic roots the bridges use.

    ``ssl`` turns on TLS; ``ssl_ca_certs`` is the CA file that signs the
    broker's certificate (the system's CAs when empty); ``ssl_certfile`` and
    ``ssl_keyfile`` an optional client certificate.
    """

    host: str
    port: int = 1883
    username: str = ""
    password: str = ""
    to_indi_topic: str = "to_indi"
    from_indi_topic: str = "from_indi"
    snoop_control_topic: str = "snoop_control"
    snoop_data_topic: str = "snoop_data"
    ssl: bool = False
    ssl_ca_certs: str = ""
    ssl_certfile: str = ""
    ssl_keyfile: str = ""

    def __post_init__(self) -> None:
        topics = (self.to_indi_topic, self.from_indi_topic, self.snoop_control_topic, self.snoop_data_topic)
        for topic in topics:
            _check_name("topic", topic)
            if any(c in topic for c in "#+"):
                raise HostError(f"topic {topic!r} must not contain MQTT wildcards")
        if len(set(topics)) != 4:
            raise HostError("the four MQTT topics must differ")
        _check_tls(self)
        _check_name("host", self.host)
        _set(self, "port", _check_port(self.port))
        _set(self, "username", self.username or "")
        _set(self, "password", self.password or "")


#: ``indi_server(host="localhost", port=7624)``: describe an indiserver (the class builds and checks it)
indi_server = IndiServer
#: ``redis_server(host="localhost", port=6379, db=0, password="", keyprefix="indi_",
#: to_indi_channel="to_indi", from_indi_channel="from_indi", ...)``: describe a Redis server, the key
#: prefix and the two channels
redis_server = RedisServer
#: ``mqtt_server(host, port=1883, username="", password="", to_indi_topic="to_indi", ...)``: describe an MQTT
#: broker and its four topic roots
mqtt_server = MQTTServer


def redis_connection_options(server: RedisServer) -> dict[str, Any]:
    """Keyword arguments for ``redis.Redis`` / ``redis.asyncio.Redis`` from a ``redis_server`` value:
    its address (``host`` and ``port``, or ``socket``), database, credentials and TLS.

    A Sentinel description has no one address: :mod:`indiredis.redisconnect` makes every kind of
    client, and is what the package itself uses."""
    if server.sentinels:
        raise HostError("a Sentinel description has no single address: use indiredis.redisconnect")
    address: dict[str, Any] = (
        {"unix_socket_path": server.socket}  # redis-py's name for it
        if server.socket
        else {"host": server.host, "port": server.port}
    )
    return address | redis_credentials(server)


def redis_credentials(server: RedisServer) -> dict[str, Any]:
    """The keyword arguments of a Redis connection but its address: database, credentials and TLS."""
    options: dict[str, Any] = {
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
