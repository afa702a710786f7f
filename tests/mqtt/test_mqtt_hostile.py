"""Hostile MQTT publishers on a stock mosquitto: forged payload headers cannot mute a real publisher,
and the receivers' records of topics and sessions stay bounded."""

from __future__ import annotations

import logging
import os
import secrets
import threading

import paho.mqtt.client as mqtt
import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditomqtt, make_mqtttoport, make_mqtttoredis
from indiredis.protocol.mqttframing import FrameHeader, decode_frame, encode_header
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.inditools import RawClient
from tests.support.servers import free_port, port_open, wait_for

DEF = (
    b'<defNumberVector device="Fake" name="N" state="Idle" perm="rw">'
    b'<defNumber name="X" format="%.0f" min="0" max="1000" step="1">1</defNumber></defNumberVector>'
)


def set_x(value: int) -> bytes:
    return (
        f'<setNumberVector device="Fake" name="N" state="Ok"><oneNumber name="X">{value}</oneNumber>'
        "</setNumberVector>"
    ).encode()


class Forger:
    """Any program on the broker: reads the genuine publisher's payloads and publishes its own."""

    def __init__(self, port: int, topic: str, username: str = "", password: str = "") -> None:
        self.client = mqtt.Client(
            mqtt.CallbackAPIVersion.VERSION2, client_id=f"forger-{os.getpid()}-{secrets.token_hex(3)}"
        )
        if username:
            self.client.username_pw_set(username, password)
        self.headers: list[FrameHeader] = []
        self.bodies: list[bytes] = []
        self.lock = threading.Lock()
        subscribed = threading.Event()
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=2)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        header, body = decode_frame(bytes(message.payload))
        with self.lock:
            self.bodies.append(bytes(body))
            if header is not None and header.count:
                self.headers.append(header)

    def bodies_with(self, text: bytes) -> list[bytes]:
        """The payloads seen on the topic whose body holds ``text``."""
        with self.lock:
            return [body for body in self.bodies if text in body]

    def publish(self, topic: str, header: FrameHeader, body: bytes) -> None:
        self.client.publish(topic, encode_header(header) + body, qos=2).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def site(mosquitto_proc, redis_host, rconn):
    """fake indiserver -> inditomqtt "obs" -> mosquitto -> mqtttoredis "gui" -> Redis, defined."""
    mqtt_host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    with FakeIndiServer() as fake:
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", fake.port), "obs", mqtt_host)
        gui = make_mqtttoredis("gui", mqtt_host, redis_host)
        forger = Forger(mosquitto_proc.port, "from_indi/obs")
        try:
            with run_bridge(instrument), run_bridge(gui):
                wait_for(lambda: instrument.ready and gui.ready, timeout=15, what="both bridges")
                wait_for(
                    lambda: b"getProperties" in fake.received, what="the instrument side's getProperties"
                )
                fake.send(DEF)
                wait_for(lambda: value(rconn, redis_host) == "1", timeout=15, what="the definition in Redis")
                yield fake, gui, forger
        finally:
            forger.close()


def value(rconn, redis_host) -> str | None:
    return tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value")


def genuine_value_follows(fake, rconn, redis_host, number: int) -> None:
    fake.send(set_x(number))
    wait_for(lambda: value(rconn, redis_host) == str(number), timeout=15, what=f"the genuine value {number}")


def test_a_forged_huge_sequence_number_does_not_mute_the_publisher(site, rconn, redis_host, caplog):
    caplog.set_level(logging.WARNING, logger="indiredis")
    fake, gui, forger = site
    genuine_value_follows(fake, rconn, redis_host, 2)
    wait_for(lambda: forger.headers, what="a genuine payload seen by the forger")
    session = forger.headers[-1].session
    forger.publish("from_indi/obs", FrameHeader(session, 10**18, 1), set_x(666))
    for number in (3, 4, 5):
        genuine_value_follows(fake, rconn, redis_host, number)
    assert "ignored the sequence number of a payload on MQTT topic from_indi/obs" in caplog.text
    assert gui.indi_side.receiver.implausible == 1
    assert "10000000000000000" not in " ".join(
        r.getMessage() for r in caplog.records if "lost" in r.getMessage()
    )


def test_a_forged_huge_sequence_number_right_after_a_broker_restart_does_not_mute_the_publisher(
    site, mosquitto_proc, rconn, redis_host, caplog
):
    """The broker restarts; as soon as the bridges are back, a forger publishes seq=10**18 on the
    genuine session and goes on numbering from there: the genuine stream must still reach Redis."""
    caplog.set_level(logging.WARNING, logger="indiredis")
    fake, gui, forger = site
    genuine_value_follows(fake, rconn, redis_host, 2)
    wait_for(lambda: forger.headers, what="a genuine payload seen by the forger")
    session = forger.headers[-1].session
    forger.close()
    asked = fake.received.count(b"getProperties")
    mosquitto_proc.kill()
    wait_for(lambda: not gui.indi_side.state.connected, what="mqtttoredis seeing the broker gone")
    mosquitto_proc.start()
    wait_for(lambda: gui.indi_side.state.connected, timeout=30, what="mqtttoredis back")
    again = Forger(mosquitto_proc.port, "from_indi/obs")
    try:
        forged = iter(range(10**18, 10**18 + 10**6))
        again.publish("from_indi/obs", FrameHeader(session, next(forged), 1), set_x(666))
        # the instrument side is back too (it asks its INDI side for everything): the genuine stream
        # resumes, definitions first (mqtttoredis cleared its store on reconnecting)
        wait_for(lambda: fake.received.count(b"getProperties") > asked, timeout=30, what="inditomqtt back")
        fake.send(DEF)
        fake.send(set_x(3))

        def genuine_arrived() -> bool:
            # the forger keeps talking on the genuine session, each payload following the last
            again.publish("from_indi/obs", FrameHeader(session, next(forged), 1), set_x(666))
            return value(rconn, redis_host) == "3"

        wait_for(genuine_arrived, timeout=30, interval=0.2, what="the genuine value 3 past the forger")
        genuine_value_follows(fake, rconn, redis_host, 4)
    finally:
        again.close()
    assert gui.indi_side.receiver.implausible >= 2


def test_a_hundred_forged_sessions_do_not_push_the_genuine_one_out(site, rconn, redis_host, caplog):
    caplog.set_level(logging.WARNING, logger="indiredis")
    fake, gui, forger = site
    genuine_value_follows(fake, rconn, redis_host, 2)
    wait_for(lambda: forger.headers, what="a genuine payload seen by the forger")
    genuine = forger.headers[-1].session
    for _ in range(100):
        forger.publish("from_indi/obs", FrameHeader(secrets.token_hex(4), 1, 1), set_x(7))
    wait_for(lambda: value(rconn, redis_host) == "7", what="the forged sessions delivered")
    tracker = gui.indi_side.receiver.tracker
    genuine_value_follows(fake, rconn, redis_host, 8)
    assert genuine in tracker.sessions("from_indi/obs")
    assert len(tracker.sessions("from_indi/obs")) <= tracker.SESSIONS_KEPT
    # the genuine publisher was never taken for restarted (nothing of it lost, nothing resent twice)
    assert not [r for r in caplog.records if "lost" in r.getMessage()], caplog.text


def test_forged_sessions_do_not_make_mqtttoport_start_over_for_each_one(mosquitto_proc, caplog):
    """mqtttoport takes a new session as a restarted instrument side (a Reset: its clients are told what
    vanished, and its BLOB requests go upstream again).  Thirty forged sessions while the genuine one is
    live make at most one such Reset, not thirty, and the genuine stream goes on."""
    caplog.set_level(logging.WARNING, logger="indiredis")
    mqtt_host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    port = free_port()
    with FakeIndiServer() as fake:
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", fake.port), "obs", mqtt_host)
        portside = make_mqtttoport("kstars", mqtt_host, port=port, host="127.0.0.1")
        forger = Forger(mosquitto_proc.port, "from_indi/obs")
        requests = Forger(mosquitto_proc.port, "to_indi/kstars")  # what mqtttoport asks upstream
        try:
            with run_bridge(instrument), run_bridge(portside), RawClient_when(port) as client:
                wait_for(lambda: instrument.ready and portside.ready, timeout=15, what="both bridges")
                client.send('<getProperties version="1.7"/><enableBLOB device="Fake">Also</enableBLOB>')
                wait_for(lambda: b"enableBLOB" in fake.received, what="the client's enableBLOB upstream")
                fake.send(DEF)
                client.read_until(rb"<defNumberVector[^>]*Fake")
                fake.send(set_x(2))
                client.read_until(rb"<oneNumber[^>]*>\s*2\s*<")
                before = sum(body.count(b"<enableBLOB") for body in requests.bodies_with(b"enableBLOB"))
                for number in range(30):
                    forger.publish(
                        "from_indi/obs",
                        FrameHeader(secrets.token_hex(4), 1, 1),
                        f'<message device="Fake" message="forged {number}"/>'.encode(),
                    )
                client.read_until(rb'message="forged 29"')
                # whatever mqtttoport asked upstream for those Resets went before this
                client.send(
                    '<newNumberVector device="Fake" name="N"><oneNumber name="X">9</oneNumber>'
                    "</newNumberVector>"
                )
                wait_for(lambda: requests.bodies_with(b"newNumberVector"), what="the client's request")
                after = sum(body.count(b"<enableBLOB") for body in requests.bodies_with(b"enableBLOB"))
                assert after - before <= 1, f"{after - before} Resets for 30 forged sessions"
                fake.send(set_x(3))  # the genuine stream goes on
                client.read_until(rb"<oneNumber[^>]*>\s*3\s*<")
        finally:
            forger.close()
            requests.close()


def RawClient_when(port: int) -> RawClient:
    """A raw INDI client of mqtttoport, once it listens."""
    wait_for(lambda: port_open(port), what="mqtttoport listening")
    return RawClient(port)
