"""The bridge functions: each a composition of one INDI-side and one client-side link.

``make_*`` functions build a :class:`~indiredis.core.bridge.Bridge` for use inside
an event loop (the daemons use these); the plain functions are the classic
blocking API and run until interrupted.  ``buffer_size`` is how many messages
each direction holds while its far side is down (beyond it the oldest are
dropped, and counted in the log).  ``memory_budget`` bounds in bytes what the bridge's queues hold
together, BLOB data included (``docs/datapath.md``: beyond their shares BLOBs are dropped first, oldest
first, while the far side is down, and a port client that falls further behind is disconnected).
``mqtt_batching`` (the MQTT bridges): pack
messages that wait into one MQTT payload, numbered so that receivers detect
gaps (the default); ``False`` sends one INDI message per payload, the original
0.1.4 framing, for original bridges receiving on the same broker (see
``docs/mqtt-framing.md``).  ``blob_retention`` (bridges into Redis) limits the
files kept per BLOB element in the blob folder.
"""

from __future__ import annotations

import socket
from typing import TypeVar

from .core.bridge import DEFAULT_MEMORY_BUDGET, Bridge, MemoryShares, run_blocking
from .core.channel import DEFAULT_BUFFER_SIZE
from .core.sides import Side
from .hosts import IndiServer, MQTTServer, RedisServer
from .links.client.port import DEFAULT_MAX_CLIENTS, PortLink
from .links.client.redisside import RedisLink
from .links.instrument.drivers import DriverPool
from .links.instrument.indiserver import IndiServerLink
from .links.instrument.manager import DEFAULT_MANAGER_DEVICE, GiveUp
from .links.mqtt import MqttClientLink, MqttInstrumentLink
from .protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from .store.blobs import DEFAULT_MAX_BLOB_SIZE
from .store.retention import Retention

MqttLinkT = TypeVar("MqttLinkT", MqttClientLink, MqttInstrumentLink)


def to_redis(
    name: str, indi_side: Side, redis_link: RedisLink, buffer_size: int, memory_budget: int
) -> Bridge:
    """A bridge into Redis; its Redis side keeps the bridge's heartbeat (with both sides' states)."""
    redis_link.keep_heartbeat(name, indi_side)
    return Bridge(name, indi_side, redis_link, buffer_size, MemoryShares.split(memory_budget))


def with_send_budget(link: MqttLinkT, budget: int) -> MqttLinkT:
    """``link`` with its share of the bridge's memory budget for payloads it has packed."""
    link.send_budget = budget
    return link


def make_inditoredis(
    indi_host: IndiServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    blob_retention: Retention | None = None,
) -> Bridge:
    """indiserver ⇄ Redis, as a :class:`Bridge` to run in an event loop (BLOB data streams from the
    socket to the blob folder; ``max_blob_size`` bounds one BLOB file)."""
    redis_link = RedisLink(
        redis_host, log_lengths, blob_folder, max_message_size, max_blob_size, blob_retention
    )
    return to_redis(
        "inditoredis",
        IndiServerLink(indi_host, max_message_size, redis_link.store.blob_streams),
        redis_link,
        buffer_size,
        memory_budget,
    )


def inditoredis(
    indi_host: IndiServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
) -> None:
    """Connect to indiserver as a client and keep the Redis key space current; blocks.

    ``log_lengths`` overrides the default history lengths (see
    ``docs/redis-keys.md``); ``blob_folder`` is where received BLOBs are
    written (BLOBs are enabled on every BLOB property when it is given).
    """
    run_blocking(make_inditoredis(indi_host, redis_host, log_lengths, blob_folder))


def make_driverstoredis(
    drivers: list[str],
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    manager_device: str | None = None,
    give_up: GiveUp | None = None,
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    blob_retention: Retention | None = None,
) -> Bridge:
    """Driver processes ⇄ Redis (no indiserver), as a :class:`Bridge` to run in an event loop.

    ``manager_device`` names the pool's own INDI device (default "Driver Manager"); ``give_up``: leave
    a driver that crashes too often stopped (default: always restart it).  BLOB data streams from the
    drivers' pipes to the blob folder; ``max_blob_size`` bounds one BLOB file.
    """
    redis_link = RedisLink(
        redis_host, log_lengths, blob_folder, max_message_size, max_blob_size, blob_retention
    )
    manager = manager_device or DEFAULT_MANAGER_DEVICE
    pool = DriverPool(
        list(drivers),
        max_message_size,
        manager_device=manager,
        give_up=give_up,
        blobs=redis_link.store.blob_streams,
    )
    return to_redis("driverstoredis", pool, redis_link, buffer_size, memory_budget)


def driverstoredis(
    drivers: list[str],
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
) -> None:
    """Run the INDI driver executables ``drivers`` as child processes and keep Redis current; blocks.

    Routing, snooping and BLOB policy are indiserver's; a driver that exits is
    reported and restarted with back-off; stopping stops every driver.
    """
    run_blocking(make_driverstoredis(drivers, redis_host, log_lengths, blob_folder))


def make_inditomqtt(
    indi_host: IndiServer,
    mqtt_id: str,
    mqtt_host: MQTTServer,
    subscribe_list: list[str] | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    mqtt_batching: bool = True,
) -> Bridge:
    """indiserver ⇄ MQTT broker (the instrument side), as a :class:`Bridge`."""
    shares = MemoryShares.split(memory_budget)
    return Bridge(
        "inditomqtt",
        IndiServerLink(indi_host, max_message_size),
        with_send_budget(
            MqttInstrumentLink(mqtt_id, mqtt_host, subscribe_list, max_message_size, mqtt_batching),
            shares.link,
        ),
        buffer_size,
        shares,
    )


def inditomqtt(
    indi_host: IndiServer, mqtt_id: str, mqtt_host: MQTTServer, subscribe_list: list[str] | None = None
) -> None:
    """Connect indiserver to an MQTT broker under the unique ``mqtt_id``; blocks.

    ``subscribe_list``: serve only the client bridges with these ids (all when empty).
    """
    run_blocking(make_inditomqtt(indi_host, mqtt_id, mqtt_host, subscribe_list))


def make_driverstomqtt(
    drivers: list[str],
    mqtt_id: str,
    mqtt_host: MQTTServer,
    subscribe_list: list[str] | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    manager_device: str | None = None,
    give_up: GiveUp | None = None,
    mqtt_batching: bool = True,
) -> Bridge:
    """Driver processes ⇄ MQTT broker, snooping across observatories, as a :class:`Bridge`.

    ``manager_device`` names the pool's own INDI device (default "Driver Manager <host name>", the short
    name without dots, which INDI's command-line tools read as separators, so that several observatories
    stay apart); ``give_up`` as for :func:`make_driverstoredis`.
    """
    shares = MemoryShares.split(memory_budget)
    return Bridge(
        "driverstomqtt",
        DriverPool(
            list(drivers),
            max_message_size,
            forward_snoop_requests=True,
            manager_device=manager_device or f"{DEFAULT_MANAGER_DEVICE} {socket.gethostname().split('.')[0]}",
            give_up=give_up,
        ),
        with_send_budget(
            MqttInstrumentLink(mqtt_id, mqtt_host, subscribe_list, max_message_size, mqtt_batching),
            shares.link,
        ),
        buffer_size,
        shares,
    )


def driverstomqtt(
    drivers: list[str], mqtt_id: str, mqtt_host: MQTTServer, subscribe_list: list[str] | None = None
) -> None:
    """Run the INDI driver executables ``drivers`` and connect them to an MQTT broker; blocks."""
    run_blocking(make_driverstomqtt(drivers, mqtt_id, mqtt_host, subscribe_list))


def make_mqtttoredis(
    mqtt_id: str,
    mqtt_host: MQTTServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subscribe_list: list[str] | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    mqtt_batching: bool = True,
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    blob_retention: Retention | None = None,
) -> Bridge:
    """MQTT broker ⇄ Redis (the GUI side), as a :class:`Bridge` (BLOB data streams from each MQTT payload
    to the blob folder)."""
    redis_link = RedisLink(
        redis_host, log_lengths, blob_folder, max_message_size, max_blob_size, blob_retention
    )
    client_link = MqttClientLink(
        mqtt_id,
        mqtt_host,
        subscribe_list,
        max_message_size,
        mqtt_batching,
        blobs=redis_link.store.blob_streams,
    )
    link = with_send_budget(client_link, MemoryShares.split(memory_budget).link)
    return to_redis("mqtttoredis", link, redis_link, buffer_size, memory_budget)


def mqtttoredis(
    mqtt_id: str,
    mqtt_host: MQTTServer,
    redis_host: RedisServer,
    log_lengths: dict[str, int] | None = None,
    blob_folder: str | None = None,
    subscribe_list: list[str] | None = None,
) -> None:
    """Keep the Redis key space current from the instrument bridges on an MQTT broker; blocks.

    ``subscribe_list``: listen only to the instrument bridges with these ids (all when empty).
    """
    run_blocking(
        make_mqtttoredis(
            mqtt_id, mqtt_host, redis_host, log_lengths, blob_folder, subscribe_list=subscribe_list
        )
    )


def make_mqtttoport(
    mqtt_id: str,
    mqtt_host: MQTTServer,
    port: int = 7624,
    host: str = "localhost",
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subscribe_list: list[str] | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    mqtt_batching: bool = True,
    max_clients: int = DEFAULT_MAX_CLIENTS,
) -> Bridge:
    """MQTT broker ⇄ a listening port for classic INDI clients, as a :class:`Bridge`.

    ``max_clients``: connections beyond it are refused (and logged); each client may fall behind by
    its share of ``memory_budget`` (half of it) before it is disconnected, as indiserver's ``maxqsiz``.
    """
    shares = MemoryShares.split(memory_budget, link_queues=True)
    return Bridge(
        "mqtttoport",
        with_send_budget(
            MqttClientLink(
                mqtt_id, mqtt_host, subscribe_list, max_message_size, mqtt_batching, reset_on_restart=True
            ),
            shares.to_indi,
        ),
        PortLink(port, host, max_message_size, max_clients=max_clients, client_budget=shares.link),
        buffer_size,
        shares,
    )


def mqtttoport(
    mqtt_id: str,
    mqtt_host: MQTTServer,
    port: int = 7624,
    host: str = "localhost",
    subscribe_list: list[str] | None = None,
) -> None:
    """Serve the instruments on an MQTT broker to INDI clients (KStars/Ekos) on ``host:port``; blocks.

    ``subscribe_list``: serve only the instrument bridges with these ids (all when empty).
    """
    run_blocking(make_mqtttoport(mqtt_id, mqtt_host, port, host, subscribe_list=subscribe_list))
