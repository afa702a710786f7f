"""The bridge functions: each a composition of one INDI-side and one client-side link.

:func:`build` makes a :class:`~indiredis.core.bridge.Bridge` from a bridge's settings, one typed
object (:mod:`indiredis.bridgeconfig`; the daemons use it); ``make_*`` functions fill that object
from their arguments, for use inside an event loop; the plain functions are the classic
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

from .bridgeconfig import (
    DEFAULT_LISTEN_HOST,
    DEFAULT_PORT,
    BridgeConfig,
    DriversToMqtt,
    DriversToRedis,
    IndiToMqtt,
    IndiToRedis,
    Mqtt,
    MqttToPort,
    MqttToRedis,
    Pool,
    Port,
    Queues,
    Store,
)
from .core.bridge import DEFAULT_MEMORY_BUDGET, Bridge, MemoryShares, run_blocking
from .core.channel import DEFAULT_BUFFER_SIZE
from .core.sides import Side
from .hosts import IndiServer, MQTTServer, RedisServer
from .links.client_side.port import DEFAULT_MAX_CLIENTS, PortLink
from .links.client_side.redisside import RedisLink
from .links.indi_side.drivers import DriverPool
from .links.indi_side.indiserver import IndiServerLink
from .links.indi_side.manager import DEFAULT_MANAGER_DEVICE, GiveUp
from .links.mqtt import MqttClientSideLink, MqttIndiSideLink
from .protocol.messages import BlobSinks
from .protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from .store.blobs import DEFAULT_MAX_BLOB_SIZE
from .store.retention import Retention

MqttLinkT = TypeVar("MqttLinkT", MqttIndiSideLink, MqttClientSideLink)


def build(config: BridgeConfig) -> Bridge:
    """The bridge ``config`` describes (nothing connects until it runs)."""
    match config:
        case IndiToRedis():
            return _inditoredis(config)
        case DriversToRedis():
            return _driverstoredis(config)
        case IndiToMqtt():
            return _inditomqtt(config)
        case DriversToMqtt():
            return _driverstomqtt(config)
        case MqttToRedis():
            return _mqtttoredis(config)
        case MqttToPort():
            return _mqtttoport(config)


def to_redis(name: str, indi_side: Side, redis_link: RedisLink, queues: Queues) -> Bridge:
    """A bridge into Redis; its Redis side keeps the bridge's heartbeat (with both sides' states)."""
    redis_link.keep_heartbeat(name, indi_side)
    shares = MemoryShares.split(queues.memory_budget)
    return Bridge(name, indi_side, redis_link, queues.buffer_size, shares)


def redis_link(store: Store, queues: Queues) -> RedisLink:
    """The Redis side of a bridge into Redis."""
    return RedisLink(
        store.redis_host,
        log_lengths=store.log_lengths,
        blob_folder=store.blob_folder,
        max_message_size=queues.max_message_size,
        max_blob_size=store.max_blob_size,
        blob_retention=store.blob_retention,
    )


def with_send_budget(link: MqttLinkT, budget: int) -> MqttLinkT:
    """``link`` with its share of the bridge's memory budget for payloads it has packed."""
    link.send_budget = budget
    return link


def mqtt_instrument_side(mqtt: Mqtt, queues: Queues) -> MqttClientSideLink:
    """The MQTT side of an instrument bridge, with its share of the memory budget."""
    link = MqttClientSideLink(
        mqtt.mqtt_id,
        mqtt.mqtt_host,
        mqtt.subscribe_list,
        queues.max_message_size,
        batching=mqtt.mqtt_batching,
    )
    return with_send_budget(link, MemoryShares.split(queues.memory_budget).link)


def driver_pool(
    pool: Pool,
    queues: Queues,
    manager_device: str,
    *,
    forward_snoop_requests: bool = False,
    blobs: BlobSinks | None = None,
) -> DriverPool:
    """The driver pool of ``pool`` (``manager_device``: its device name unless ``pool`` names one)."""
    return DriverPool(
        list(pool.drivers),
        queues.max_message_size,
        forward_snoop_requests=forward_snoop_requests,
        manager_device=pool.manager_device or manager_device,
        give_up=pool.give_up,
        blobs=blobs,
    )


def _inditoredis(config: IndiToRedis) -> Bridge:
    link = redis_link(config.store, config.queues)
    indi_side = IndiServerLink(config.indi_host, config.queues.max_message_size, link.store.blob_streams)
    return to_redis(config.service, indi_side, link, config.queues)


def _driverstoredis(config: DriversToRedis) -> Bridge:
    link = redis_link(config.store, config.queues)
    pool = driver_pool(config.pool, config.queues, DEFAULT_MANAGER_DEVICE, blobs=link.store.blob_streams)
    return to_redis(config.service, pool, link, config.queues)


def _inditomqtt(config: IndiToMqtt) -> Bridge:
    queues = config.queues
    indi_side = IndiServerLink(config.indi_host, queues.max_message_size)
    mqtt_side = mqtt_instrument_side(config.mqtt, queues)
    return Bridge(
        config.service, indi_side, mqtt_side, queues.buffer_size, MemoryShares.split(queues.memory_budget)
    )


def _driverstomqtt(config: DriversToMqtt) -> Bridge:
    queues = config.queues
    # the short host name (INDI's command-line tools read dots as separators): observatories stay apart
    manager = f"{DEFAULT_MANAGER_DEVICE} {socket.gethostname().split('.')[0]}"
    pool = driver_pool(config.pool, queues, manager, forward_snoop_requests=True)
    mqtt_side = mqtt_instrument_side(config.mqtt, queues)
    return Bridge(
        config.service, pool, mqtt_side, queues.buffer_size, MemoryShares.split(queues.memory_budget)
    )


def _mqtttoredis(config: MqttToRedis) -> Bridge:
    mqtt, queues = config.mqtt, config.queues
    link = redis_link(config.store, queues)
    client_link = MqttIndiSideLink(
        mqtt.mqtt_id,
        mqtt.mqtt_host,
        mqtt.subscribe_list,
        queues.max_message_size,
        batching=mqtt.mqtt_batching,
        blobs=link.store.blob_streams,
    )
    mqtt_side = with_send_budget(client_link, MemoryShares.split(queues.memory_budget).link)
    return to_redis(config.service, mqtt_side, link, queues)


def _mqtttoport(config: MqttToPort) -> Bridge:
    mqtt, port, queues = config.mqtt, config.port, config.queues
    shares = MemoryShares.split(queues.memory_budget, link_queues=True)
    client_link = MqttIndiSideLink(
        mqtt.mqtt_id,
        mqtt.mqtt_host,
        mqtt.subscribe_list,
        queues.max_message_size,
        batching=mqtt.mqtt_batching,
        reset_on_restart=True,
    )
    port_link = PortLink(
        port.listen_port,
        port.listen_host,
        queues.max_message_size,
        max_clients=port.max_clients,
        client_budget=shares.link,
    )
    return Bridge(
        config.service, with_send_budget(client_link, shares.to_indi), port_link, queues.buffer_size, shares
    )


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
    return _inditoredis(
        IndiToRedis(
            indi_host=indi_host,
            store=Store(
                redis_host=redis_host,
                log_lengths=log_lengths,
                blob_folder=blob_folder,
                max_blob_size=max_blob_size,
                blob_retention=blob_retention,
            ),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
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
    return _driverstoredis(
        DriversToRedis(
            pool=Pool(drivers=list(drivers), manager_device=manager_device, give_up=give_up),
            store=Store(
                redis_host=redis_host,
                log_lengths=log_lengths,
                blob_folder=blob_folder,
                max_blob_size=max_blob_size,
                blob_retention=blob_retention,
            ),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
    )


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
    *,
    mqtt_batching: bool = True,
) -> Bridge:
    """indiserver ⇄ MQTT broker (the instrument side), as a :class:`Bridge`."""
    return _inditomqtt(
        IndiToMqtt(
            indi_host=indi_host,
            mqtt=Mqtt(
                mqtt_id=mqtt_id,
                mqtt_host=mqtt_host,
                subscribe_list=subscribe_list,
                mqtt_batching=mqtt_batching,
            ),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
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
    *,
    mqtt_batching: bool = True,
) -> Bridge:
    """Driver processes ⇄ MQTT broker, snooping across observatories, as a :class:`Bridge`.

    ``manager_device`` names the pool's own INDI device (default "Driver Manager <host name>", the short
    name without dots, which INDI's command-line tools read as separators, so that several observatories
    stay apart); ``give_up`` as for :func:`make_driverstoredis`.
    """
    return _driverstomqtt(
        DriversToMqtt(
            pool=Pool(drivers=list(drivers), manager_device=manager_device, give_up=give_up),
            mqtt=Mqtt(
                mqtt_id=mqtt_id,
                mqtt_host=mqtt_host,
                subscribe_list=subscribe_list,
                mqtt_batching=mqtt_batching,
            ),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
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
    *,
    mqtt_batching: bool = True,
    max_blob_size: int = DEFAULT_MAX_BLOB_SIZE,
    blob_retention: Retention | None = None,
) -> Bridge:
    """MQTT broker ⇄ Redis (the GUI side), as a :class:`Bridge` (BLOB data streams from each MQTT payload
    to the blob folder)."""
    return _mqtttoredis(
        MqttToRedis(
            mqtt=Mqtt(
                mqtt_id=mqtt_id,
                mqtt_host=mqtt_host,
                subscribe_list=subscribe_list,
                mqtt_batching=mqtt_batching,
            ),
            store=Store(
                redis_host=redis_host,
                log_lengths=log_lengths,
                blob_folder=blob_folder,
                max_blob_size=max_blob_size,
                blob_retention=blob_retention,
            ),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
    )


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
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_LISTEN_HOST,
    max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    subscribe_list: list[str] | None = None,
    buffer_size: int = DEFAULT_BUFFER_SIZE,
    memory_budget: int = DEFAULT_MEMORY_BUDGET,
    *,
    mqtt_batching: bool = True,
    max_clients: int = DEFAULT_MAX_CLIENTS,
) -> Bridge:
    """MQTT broker ⇄ a listening port for classic INDI clients, as a :class:`Bridge`.

    ``max_clients``: connections beyond it are refused (and logged); each client may fall behind by
    its share of ``memory_budget`` (half of it) before it is disconnected, as indiserver's ``maxqsiz``.
    """
    return _mqtttoport(
        MqttToPort(
            mqtt=Mqtt(
                mqtt_id=mqtt_id,
                mqtt_host=mqtt_host,
                subscribe_list=subscribe_list,
                mqtt_batching=mqtt_batching,
            ),
            port=Port(listen_port=port, listen_host=host, max_clients=max_clients),
            queues=Queues(
                max_message_size=max_message_size, buffer_size=buffer_size, memory_budget=memory_budget
            ),
        )
    )


def mqtttoport(
    mqtt_id: str,
    mqtt_host: MQTTServer,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_LISTEN_HOST,
    subscribe_list: list[str] | None = None,
) -> None:
    """Serve the instruments on an MQTT broker to INDI clients (KStars/Ekos) on ``host:port``; blocks.

    ``subscribe_list``: serve only the instrument bridges with these ids (all when empty).
    """
    run_blocking(make_mqtttoport(mqtt_id, mqtt_host, port, host, subscribe_list=subscribe_list))
