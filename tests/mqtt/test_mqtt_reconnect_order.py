"""An instrument side that reaches the broker before the client sides do (a broker restarted without
persistence: the client sides' subscriptions are gone until they reconnect) holds back what its INDI
side sends until a client side is heard, so that no frame is published to nobody (issue 24, soak:
frames lost when inditomqtt came back a second before mqtttoredis)."""

from __future__ import annotations

import asyncio
import threading

import paho.mqtt.client as mqtt

import indiredis
from indiredis.core.channel import Channel
from indiredis.links.mqtt import MqttClientSideLink, MqttIndiSideLink
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import parse_message
from tests.support.bridgethread import LoopThread
from tests.support.servers import wait_for

FRAME = b'<setNumberVector device="Cam" name="N"><oneNumber name="x">1234.5678</oneNumber></setNumberVector>'


def new_client(client_id: str) -> mqtt.Client:
    if hasattr(mqtt, "CallbackAPIVersion"):
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    return mqtt.Client(client_id=client_id)


def test_what_the_indi_side_sends_before_a_client_side_subscribed_reaches_it(mosquitto_proc):
    host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    link = MqttClientSideLink("site", host)
    link.receivers_wait = 60  # longer than this test takes: only a client side heard releases it
    from_indi: Channel = Channel(1000)

    async def main() -> None:
        await link.run(from_indi, Channel(1000))

    received: list[bytes] = []
    subscribed = threading.Event()
    with LoopThread(main) as thread:
        wait_for(lambda: "as site" in mosquitto_proc.output(), timeout=30, what="the instrument side")
        message = parse_message(FRAME)
        thread.call(lambda: from_indi.put_nowait(message))  # sent by the INDI side: nobody subscribed yet
        receiver = new_client("central")
        receiver.on_message = lambda client, userdata, msg: received.append(msg.payload)
        receiver.on_subscribe = lambda *args: subscribed.set()
        receiver.connect("127.0.0.1", mosquitto_proc.port)
        receiver.loop_start()
        try:
            receiver.subscribe(f"{host.from_indi_topic}/#", qos=2)
            assert subscribed.wait(30)
            # what every client side does once subscribed: ask for the properties
            receiver.publish(f"{host.to_indi_topic}/central", b"<getProperties version='1.7'/>", qos=2)
            wait_for(
                lambda: any(b"1234.5678" in payload for payload in received), timeout=30, what="the frame"
            )
        finally:
            receiver.loop_stop()
            receiver.disconnect()


def test_an_instrument_side_that_connects_after_the_client_side_does_not_wait_out_its_hold(mosquitto_proc):
    """The client side subscribed before the instrument side connected (a bridge started after
    mqtttoredis, or the broker restarted and mqtttoredis came back first): its getProperties went to
    nobody.  The instrument side announces itself right after connecting, the client side answers as it
    does on first hearing an instrument side, and the hold ends then, not after ``receivers_wait``
    (the fault suite: a 3 s hold at every start and broker restart left the chains seconds behind, so a
    Redis or broker kill then lost or repeated messages sent long before it)."""
    host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    client = MqttIndiSideLink("central", host)
    from_indi: Channel = Channel(1000)
    received: list[bytes] = []

    async def client_main() -> None:
        async def collect() -> None:
            while True:
                received.extend(item.raw for item in await from_indi.get_batch() if isinstance(item, Message))

        await asyncio.gather(client.run(from_indi, Channel(1000)), collect())

    instrument = MqttClientSideLink("site", host)
    instrument.receivers_wait = 60  # longer than this test takes: only a client side heard releases it
    from_indi: Channel = Channel(1000)

    async def instrument_main() -> None:
        await instrument.run(from_indi, Channel(1000))

    with LoopThread(client_main):
        wait_for(lambda: client.state.connected, timeout=30, what="the client side subscribed")
        with LoopThread(instrument_main) as thread:
            wait_for(lambda: instrument.state.connected, timeout=30, what="the instrument side")
            message = parse_message(FRAME)
            thread.call(lambda: from_indi.put_nowait(message))
            wait_for(lambda: any(b"1234.5678" in raw for raw in received), timeout=30, what="the frame")
