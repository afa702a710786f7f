"""An MQTT connection leaves no descriptor behind once closed, also when the broker went away under
it (issue 24, soak: ``mqtttoredis``'s open descriptors grew by two with each broker restart, paho's
wake-up socket pair, until the garbage collector came by).  A real mosquitto, killed and restarted."""

from __future__ import annotations

import asyncio
import gc
import os

import indiredis
from indiredis.links.mqtt import MqttConnection
from tests.support.servers import MosquittoProcess

CYCLES = 5


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def test_a_closed_connection_leaves_no_descriptor_across_broker_restarts():
    broker = MosquittoProcess().start()
    server = indiredis.mqtt_server("127.0.0.1", broker.port)

    async def cycle() -> None:
        connection = MqttConnection(server, "fd-test")
        await connection.connect([])
        broker.restart()  # the connection is lost under it
        await asyncio.wait_for(connection.closed.wait(), 30)
        await connection.close()

    gc.disable()  # what is left is left: the collector would hide it now and then
    try:
        asyncio.run(cycle())  # a first one: the executor's threads and the like
        before = open_fds()
        for _ in range(CYCLES):
            asyncio.run(cycle())
        after = open_fds()
    finally:
        gc.enable()
        broker.stop()
    assert after == before, f"{after - before} descriptors more after {CYCLES} broker restarts"
