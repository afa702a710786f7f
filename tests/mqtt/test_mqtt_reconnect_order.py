"""An instrument side that reaches the broker before the client sides do (a broker restarted without
persistence: the client sides' subscriptions are gone until they reconnect) holds back what its INDI
side sends until a client side is heard, so that no frame is published to nobody (issue 24, soak:
frames lost when inditomqtt came back a second before mqtttoredis)."""

from __future__ import annotations

import threading

import paho.mqtt.client as mqtt

import indiredis
from indiredis.core.channel import Channel
from indiredis.links.mqtt import MqttInstrumentLink
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
    link = MqttInstrumentLink("site", host)
    link.receivers_wait = 60  # longer than this test takes: only a client side heard releases it
    inbound: Channel = Channel(1000)

    async def main() -> None:
        await link.run(inbound, Channel(1000))

    received: list[bytes] = []
    subscribed = threading.Event()
    with LoopThread(main) as thread:
        wait_for(lambda: "as site" in mosquitto_proc.output(), timeout=30, what="the instrument side")
        message = parse_message(FRAME)
        thread.call(lambda: inbound.put_nowait(message))  # sent by the INDI side: nobody subscribed yet
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
