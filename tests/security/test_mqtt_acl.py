"""The shipped broker ACL (etc/mosquitto-indiredis.acl) on a real mosquitto with a password file: the
bridges work confined to their topics, and an authenticated stranger cannot publish as the instruments."""

from __future__ import annotations

import logging
import subprocess
from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditomqtt, make_mqtttoredis
from indiredis.protocol.mqttframing import FrameHeader
from tests.mqtt.test_mqtt_hostile import DEF, Forger, set_x
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import MosquittoProcess, wait_for

ETC = Path(__file__).parents[2] / "etc"
PASSWORDS = {"dome": "dome-pw", "gui": "gui-pw"}


@pytest.fixture
def acl_mosquitto(tmp_path):
    passwords = tmp_path / "passwords"
    passwords.touch(mode=0o600)
    for user, password in PASSWORDS.items():
        subprocess.run(
            ["mosquitto_passwd", "-b", str(passwords), user, password], check=True, capture_output=True
        )
    config = f"password_file {passwords}\nacl_file {ETC / 'mosquitto-indiredis.acl'}\n"
    with MosquittoProcess(extra_config=config, anonymous=False) as proc:
        yield proc


def test_bridges_confined_by_the_shipped_acl_work_and_a_stranger_cannot_forge(
    acl_mosquitto, redis_host, rconn, caplog
):
    caplog.set_level(logging.WARNING, logger="indiredis")

    def value() -> str | None:
        return tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value")

    def host(user: str) -> indiredis.MQTTServer:
        return indiredis.mqtt_server("127.0.0.1", acl_mosquitto.port, username=user, password=PASSWORDS[user])

    with FakeIndiServer() as fake:
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", fake.port), "dome", host("dome"))
        gui = make_mqtttoredis("gui", host("gui"), redis_host)
        # the stranger: the client side's own credentials, under another client id
        forger = Forger(acl_mosquitto.port, "from_indi/dome", username="gui", password=PASSWORDS["gui"])
        try:
            with run_bridge(instrument), run_bridge(gui):
                wait_for(lambda: instrument.ready and gui.ready, timeout=15, what="both bridges")
                wait_for(lambda: b"getProperties" in fake.received, what="the client side's getProperties")
                fake.send(DEF)
                wait_for(lambda: value() == "1", timeout=15, what="the definition in Redis")
                tools.newnumbervector(rconn, redis_host, "N", "Fake", {"X": "5"})
                wait_for(lambda: b'<oneNumber name="X">5</oneNumber>' in fake.received, what="a request")
                fake.send(set_x(2))
                wait_for(lambda: value() == "2" and forger.headers, timeout=15, what="a genuine value")
                # a forged value on the instrument's topic, then a genuine one: the broker refuses the first
                forger.publish("from_indi/dome", FrameHeader("f0f0f0f0", 1, 1), set_x(666))
                forger.publish(
                    "from_indi/dome", FrameHeader(forger.headers[-1].session, 10**18, 1), set_x(667)
                )
                fake.send(set_x(3))
                wait_for(lambda: value() == "3", timeout=15, what="the genuine value after the forgery")
                assert not forger.bodies_with(b">666<") and not forger.bodies_with(b">667<")
                assert instrument.client_side.receiver.implausible == 0
                assert gui.indi_side.receiver.implausible == 0
        finally:
            forger.close()

    assert "refused the subscription" not in caplog.text
