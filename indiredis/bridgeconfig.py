"""Each bridge's settings as one typed object, with every default in one place.

A bridge is built from one of :class:`IndiToRedis`, :class:`DriversToRedis`, :class:`IndiToMqtt`,
:class:`DriversToMqtt`, :class:`MqttToRedis` or :class:`MqttToPort` (``indiredis.bridges.build``),
each composed of the parts it shares with others: :class:`Queues` (every bridge), :class:`Store`
(the bridges into Redis), :class:`Mqtt` (the bridges on a broker), :class:`Pool` (the bridges that
run drivers) and :class:`Port` (the INDI port).  Fields are named as the ``[service]`` keys of the
configuration files, so that the services fill them by name (``service/catalog.py``); the
``make_*`` functions of :mod:`indiredis.bridges` fill them from their arguments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from .core.bridge import DEFAULT_MEMORY_BUDGET
from .core.channel import DEFAULT_BUFFER_SIZE
from .hosts import IndiServer, MQTTServer, RedisServer
from .links.client_side.port import DEFAULT_MAX_CLIENTS
from .links.indi_side.manager import GiveUp
from .protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from .store.blobs import DEFAULT_MAX_BLOB_SIZE
from .store.retention import Retention

DEFAULT_PORT = 7624  # INDI's port: what the INDI port serves on by default
DEFAULT_LISTEN_HOST = "localhost"


@dataclass(frozen=True, kw_only=True)
class Queues:
    """What every bridge holds: the largest INDI message it accepts (bytes), how many messages each
    direction holds while its far side is down, and the bytes its queues hold together, BLOB data
    included (``docs/datapath.md``)."""

    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE
    buffer_size: int = DEFAULT_BUFFER_SIZE
    memory_budget: int = DEFAULT_MEMORY_BUDGET


@dataclass(frozen=True, kw_only=True)
class Store:
    """The Redis side of a bridge into Redis: the server, the history lengths (None: the defaults),
    the blob folder (None: BLOBs are not written), the largest BLOB file and the files kept."""

    redis_host: RedisServer
    log_lengths: dict[str, int] | None = None
    blob_folder: str | None = None
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE
    blob_retention: Retention | None = None


@dataclass(frozen=True, kw_only=True)
class Mqtt:
    """A bridge on an MQTT broker: its unique id there, the broker, the bridges on the other side it
    serves (None: all) and whether waiting messages are packed into one payload
    (``docs/mqtt-framing.md``)."""

    mqtt_id: str
    mqtt_host: MQTTServer
    subscribe_list: list[str] | None = None
    mqtt_batching: bool = True


@dataclass(frozen=True, kw_only=True)
class Pool:
    """The driver executables a bridge runs, the name of its Driver Manager device (None: the
    bridge's default) and its give-up policy (None: always restart)."""

    drivers: list[str]
    manager_device: str | None = None
    give_up: GiveUp | None = None


@dataclass(frozen=True, kw_only=True)
class Port:
    """The INDI port that classic clients (KStars) connect to, and how many may be connected."""

    listen_port: int = DEFAULT_PORT
    listen_host: str = DEFAULT_LISTEN_HOST
    max_clients: int = DEFAULT_MAX_CLIENTS


@dataclass(frozen=True, kw_only=True)
class IndiToRedis:
    """indiserver ⇄ Redis."""

    service: ClassVar[str] = "inditoredis"
    indi_host: IndiServer
    store: Store
    queues: Queues = field(default_factory=Queues)


@dataclass(frozen=True, kw_only=True)
class DriversToRedis:
    """Driver processes ⇄ Redis."""

    service: ClassVar[str] = "driverstoredis"
    pool: Pool
    store: Store
    queues: Queues = field(default_factory=Queues)


@dataclass(frozen=True, kw_only=True)
class IndiToMqtt:
    """indiserver ⇄ MQTT broker (the instrument side)."""

    service: ClassVar[str] = "inditomqtt"
    indi_host: IndiServer
    mqtt: Mqtt
    queues: Queues = field(default_factory=Queues)


@dataclass(frozen=True, kw_only=True)
class DriversToMqtt:
    """Driver processes ⇄ MQTT broker (the instrument side)."""

    service: ClassVar[str] = "driverstomqtt"
    pool: Pool
    mqtt: Mqtt
    queues: Queues = field(default_factory=Queues)


@dataclass(frozen=True, kw_only=True)
class MqttToRedis:
    """MQTT broker ⇄ Redis (the GUI side)."""

    service: ClassVar[str] = "mqtttoredis"
    mqtt: Mqtt
    store: Store
    queues: Queues = field(default_factory=Queues)


@dataclass(frozen=True, kw_only=True)
class MqttToPort:
    """MQTT broker ⇄ a listening port for classic INDI clients."""

    service: ClassVar[str] = "mqtttoport"
    mqtt: Mqtt
    port: Port = field(default_factory=Port)
    queues: Queues = field(default_factory=Queues)


#: the parts a bridge's settings are composed of
PARTS: tuple[type, ...] = (Queues, Store, Mqtt, Pool, Port)

BridgeConfig = IndiToRedis | DriversToRedis | IndiToMqtt | DriversToMqtt | MqttToRedis | MqttToPort

#: every bridge's settings class, by the name of its service
BRIDGE_CONFIGS: dict[str, type[BridgeConfig]] = {
    kind.service: kind
    for kind in (IndiToRedis, DriversToRedis, IndiToMqtt, DriversToMqtt, MqttToRedis, MqttToPort)
}
