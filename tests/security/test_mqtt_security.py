"""mosquitto with a password file, an ACL file and a TLS listener: the chain works, outsiders read nothing."""

from __future__ import annotations

import logging
import queue
import ssl
import subprocess

import paho.mqtt.client as mqtt
import pytest

import indiredis
from indiredis import bridges, tools
from tests.support.bridgethread import run_bridge
from tests.support.certs import make_certificates
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import MosquittoProcess, wait_for

DEF = (
    b'<defNumberVector device="Fake" name="N" state="Idle" perm="rw">'
    b'<defNumber name="X" format="%.0f" min="0" max="9" step="1">1</defNumber></defNumberVector>'
)

USERS = {"observatory": "obs-pw", "gui": "gui-pw", "outsider": "outsider-pw"}


@pytest.fixture(scope="module")
def certificates(tmp_path_factory):
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def secure_mosquitto(certificates, tmp_path_factory):
    folder = tmp_path_factory.mktemp("mosquitto-auth")
    passwords = folder / "passwords"
    passwords.touch(mode=0o600)
    for user, password in USERS.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), user, password], check=True, capture_output=True
        )
    acl = folder / "acl"
    acl.write_text(
        "user observatory\ntopic readwrite to_indi/#\ntopic readwrite from_indi/#\n"
        "topic readwrite snoop_control/#\ntopic readwrite snoop_data/#\n\n"
        "user gui\ntopic readwrite to_indi/#\ntopic read from_indi/#\n\n"
        "user outsider\ntopic readwrite public/#\n"
    )
    config = (
        f"password_file {passwords}\nacl_file {acl}\n"
        f"cafile {certificates.ca}\ncertfile {certificates.server_cert}\nkeyfile {certificates.server_key}\n"
        "require_certificate false\n"
    )
    with MosquittoProcess(extra_config=config, anonymous=False) as proc:
        yield proc


def mqtt_host(proc, certificates, **changes):
    options = dict(
        host="127.0.0.1",
        port=proc.port,
        username="observatory",
        password="obs-pw",
        ssl=True,
        ssl_ca_certs=str(certificates.ca),
    )
    options.update(changes)
    return indiredis.mqtt_server(**options)


class RawClient:
    """A plain paho client, as any other program on the network would be."""

    def __init__(self, proc, certificates, username: str | None, password: str | None) -> None:
        if hasattr(mqtt, "CallbackAPIVersion"):
            self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        else:  # paho-mqtt 1.x
            self.client = mqtt.Client()
        if username:
            self.client.username_pw_set(username, password)
        self.client.tls_set(ca_certs=str(certificates.ca), cert_reqs=ssl.CERT_REQUIRED)
        self.received: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self.connect_results: queue.Queue[int] = queue.Queue()
        self.client.on_message = lambda client, userdata, message: self.received.put(
            (message.topic, message.payload)
        )
        self.client.on_connect = lambda client, userdata, flags, rc, *rest: self.connect_results.put(
            int(getattr(rc, "value", rc))
        )
        self.client.connect("127.0.0.1", proc.port)
        self.client.loop_start()

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def test_without_credentials_the_broker_refuses(secure_mosquitto, certificates):
    anonymous = RawClient(secure_mosquitto, certificates, None, None)
    wrong = RawClient(secure_mosquitto, certificates, "observatory", "not-the-password")
    try:
        assert anonymous.connect_results.get(timeout=10) != 0
        assert wrong.connect_results.get(timeout=10) != 0
    finally:
        anonymous.close()
        wrong.close()


def test_an_authenticated_outsider_cannot_read_the_topics(secure_mosquitto, certificates):
    observatory = RawClient(secure_mosquitto, certificates, "observatory", "obs-pw")
    outsider = RawClient(secure_mosquitto, certificates, "outsider", "outsider-pw")
    try:
        assert observatory.connect_results.get(timeout=10) == 0
        assert outsider.connect_results.get(timeout=10) == 0
        outsider.client.subscribe([("from_indi/#", 1), ("public/marker", 1)])
        outsider.client.publish("public/marker", b"subscribed", qos=1)
        assert outsider.received.get(timeout=10) == (
            "public/marker",
            b"subscribed",
        )  # the subscription is live
        # the observatory publishes INDI traffic, then the outsider publishes a marker on its own topic; the
        # broker keeps order per client, so when the marker arrives the INDI message would have arrived first
        observatory.client.publish("from_indi/observatory", DEF, qos=1).wait_for_publish(10)
        outsider.client.publish("public/marker", b"after", qos=1).wait_for_publish(10)
        seen = []
        while not seen or seen[-1] != ("public/marker", b"after"):
            seen.append(outsider.received.get(timeout=10))
        assert all(topic == "public/marker" for topic, _ in seen), seen
    finally:
        observatory.close()
        outsider.close()


def test_chain_works_through_tls_and_passwords(secure_mosquitto, certificates, redis_host, rconn):
    if not (hasattr(bridges, "make_inditomqtt") and hasattr(bridges, "make_mqtttoredis")):
        pytest.skip("the MQTT bridges are not built yet")
    with FakeIndiServer() as fake:
        instrument = bridges.make_inditomqtt(
            indiredis.indi_server("127.0.0.1", fake.port),
            "observatory",
            mqtt_host(secure_mosquitto, certificates),
        )
        gui = bridges.make_mqtttoredis(
            "gui", mqtt_host(secure_mosquitto, certificates, username="gui", password="gui-pw"), redis_host
        )
        with run_bridge(instrument), run_bridge(gui):
            wait_for(lambda: instrument.ready and gui.ready, timeout=15, what="both bridges through TLS")
            fake.send(DEF)
            wait_for(
                lambda: tools.devices(rconn, redis_host) == ["Fake"], timeout=15, what="device through TLS"
            )
            tools.newnumbervector(rconn, redis_host, "N", "Fake", {"X": "5"})
            wait_for(
                lambda: b'<oneNumber name="X">5</oneNumber>' in fake.received, what="request through TLS"
            )
            assert "gui-pw" not in gui.status and "obs-pw" not in instrument.status


@pytest.mark.parametrize(
    "case, changes",
    [
        ("wrong password", {"password": "nope"}),
        ("untrusted certificate", {"ssl_ca_certs": "OTHER"}),
    ],
)
def test_bad_credentials_give_one_clear_error_and_retry(
    secure_mosquitto, certificates, caplog, case, changes
):
    if not hasattr(bridges, "make_inditomqtt"):
        pytest.skip("the MQTT bridges are not built yet")
    caplog.set_level(logging.INFO, logger="indiredis")
    if changes.get("ssl_ca_certs") == "OTHER":
        changes = {"ssl_ca_certs": str(certificates.other_ca)}
    with FakeIndiServer() as fake:
        bridge = bridges.make_inditomqtt(
            indiredis.indi_server("127.0.0.1", fake.port),
            "observatory",
            mqtt_host(secure_mosquitto, certificates, **changes),
        )
        with run_bridge(bridge) as thread:
            wait_for(
                lambda: "waiting for" in bridge.status and "retry in" in bridge.status, timeout=15, what=case
            )
            first = bridge.status
            wait_for(lambda: bridge.status != first, timeout=15, what="a second try")
            assert thread.alive
    lines = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(lines) == 1, lines  # one line for the state change, not one per retry
    assert "nope" not in caplog.text and "obs-pw" not in caplog.text
