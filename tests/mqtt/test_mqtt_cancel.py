"""A session's publishing task stopped just as a batch arrives on a lost connection: cancelled, its
batch left in the channel, and no ``Task exception was never retrieved`` (issue 24, soak: seen in
``mqtttoredis`` and ``inditomqtt`` when the broker was killed while the CCD streamed frames).

A real mosquitto; the moment of the race is made exact by doing in one step of the event loop what
happens then: a message arrives for the broker, paho reports the connection lost, and the session
cancels its publishing task.
"""

from __future__ import annotations

import asyncio

import indiredis
from indiredis.core.channel import Channel
from indiredis.links.mqtt import MqttConnection, MqttIndiSideLink
from indiredis.protocol import Message


def test_publishing_cancelled_as_a_batch_arrives_on_a_lost_connection_is_cancelled(mosquitto_proc):
    server = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)

    async def scenario() -> tuple[bool, BaseException | None, int, int]:
        link = MqttIndiSideLink("cancel-test", server)
        connection = MqttConnection(server, "cancel-test")
        await connection.connect([])
        channel: Channel[Message] = Channel()
        try:
            publishing = asyncio.ensure_future(link.publish_forever(connection, channel))
            for _ in range(100):  # until it waits on the empty channel
                await asyncio.sleep(0)
            assert not publishing.done()
            channel.put_nowait(Message.get_properties())  # a message comes ...
            connection.closed.set()  # ... as paho reports the broker gone ...
            publishing.cancel()  # ... and the session stops publishing
            await asyncio.wait([publishing])
            error = None if publishing.cancelled() else publishing.exception()
            return publishing.cancelled(), error, len(channel), len(link.pending)
        finally:
            await connection.close()

    cancelled, error, in_channel, pending = asyncio.run(scenario())
    assert error is None and cancelled
    assert in_channel + pending == 1  # the message is kept for the next connection
