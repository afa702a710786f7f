"""A service's settings become its bridge's one settings object, by key name (no signature restated)."""

from __future__ import annotations

import dataclasses

from indiredis.bridgeconfig import BRIDGE_CONFIGS, PARTS, DriversToRedis, MqttToPort, Queues
from indiredis.hosts import IndiServer, MQTTServer, RedisServer
from indiredis.links.indi_side.manager import GiveUp
from indiredis.service import config
from indiredis.service.catalog import bridge_config, by_name

#: [service] keys read under another name (see catalog.values), and the one no bridge reads
DERIVED = {"memory_budget_mb", "blob_keep_files", "blob_keep_mb", "blob_min_free_mb", "give_up_crashes"}
NOT_A_BRIDGE_KEY = {"log_level", "give_up_seconds"}


def field_names(kind: type) -> set[str]:
    names = set()
    for field in dataclasses.fields(kind):
        part = next((p for p in PARTS if p.__name__ == field.type), None)
        names |= field_names(part) if part else {field.name}
    return names


def test_every_service_key_of_a_bridge_is_a_field_of_its_settings():
    for service, kind in BRIDGE_CONFIGS.items():
        keys = set(config.SCHEMAS[service].service) - DERIVED - NOT_A_BRIDGE_KEY
        assert keys <= field_names(kind), (service, keys - field_names(kind))


def test_a_driver_pool_service_is_filled_by_name(tmp_path):
    path = tmp_path / "driverstoredis.ini"
    path.write_text(
        "[service]\ndrivers = indi_a indi_b\nmanager_device = Pool\n"
        "give_up_crashes = 3\ngive_up_seconds = 9\n"
        f"blob_folder = {tmp_path}\nblob_keep_files = 4\nbuffer_size = 500\nmemory_budget_mb = 16\n"
        "max_blob_size = 4096\n[redis]\nport = 7000\n[log_lengths]\nmessages = 9\n"
    )
    made = bridge_config(config.load("driverstoredis", path))
    assert isinstance(made, DriversToRedis)
    assert (made.pool.drivers, made.pool.manager_device, made.pool.give_up) == (
        ["indi_a", "indi_b"],
        "Pool",
        GiveUp(3, 9),
    )
    assert made.store.redis_host == RedisServer(port=7000) and made.store.log_lengths == {"messages": 9}
    assert (made.store.blob_folder, made.store.max_blob_size) == (str(tmp_path), 4096)
    assert made.store.blob_retention is not None and made.store.blob_retention.keep_files == 4
    assert made.queues == Queues(buffer_size=500, memory_budget=16 * 1024 * 1024)


def test_the_port_service_and_the_defaults(tmp_path):
    path = tmp_path / "mqtttoport.ini"
    path.write_text("[service]\nmqtt_id = k\nlisten_port = 7700\nmqtt_batching = no\n")
    made = bridge_config(config.load("mqtttoport", path))
    assert isinstance(made, MqttToPort)
    assert (made.port.listen_port, made.port.listen_host, made.port.max_clients) == (7700, "localhost", 100)
    assert (made.mqtt.mqtt_id, made.mqtt.mqtt_host, made.mqtt.mqtt_batching) == (
        "k",
        MQTTServer("localhost"),
        False,
    )
    assert made.queues == Queues()  # the configuration's defaults are the bridges'


def test_by_name_fills_parts_and_keeps_defaults():
    made = by_name(
        BRIDGE_CONFIGS["inditomqtt"],
        {"indi_host": IndiServer(), "mqtt_id": "x", "mqtt_host": MQTTServer("b")},
    )
    assert made.queues == Queues() and made.mqtt.subscribe_list is None
