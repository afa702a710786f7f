"""inditoredis keeps serving through malformed INDI input and client garbage."""

from __future__ import annotations

import logging

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import wait_for

DEF = (
    b'<defNumberVector device="Fake" name="N" state="Idle" perm="rw">'
    b'<defNumber name="X" format="%.1f" min="0" max="9" step="1">1</defNumber></defNumberVector>'
)


@pytest.fixture
def fake():
    with FakeIndiServer() as server:
        yield server


@pytest.fixture
def bridge(fake, redis_host):
    bridge = make_inditoredis(
        indiredis.indi_server("127.0.0.1", fake.port), redis_host, max_message_size=4096
    )
    with run_bridge(bridge):
        wait_for(lambda: b"getProperties" in fake.received and bridge.ready, what="bridge to connect")
        yield bridge


def test_malformed_input_is_logged_and_skipped(bridge, fake, rconn, redis_host, caplog):
    caplog.set_level(logging.WARNING, logger="indiredis")
    fake.send(DEF)
    fake.send(b"<setNumberVector device='Fake' name='N'><oneNumber name='X'>2</oneText></setNumberVector>")
    fake.send(b"\x00\xff binary garbage \x01")
    fake.send(b"<unknownThing device='Fake'/>")
    fake.send(
        b"<setNumberVector device='Fake' name='N'><oneNumber name='X'>"
        + b"9" * 10000
        + b"</oneNumber></setNumberVector>"
    )
    fake.send(b"<setNumberVector device='Fake' name='N'><oneNumber name='X'>3</oneNumber></setNumberVector>")
    wait_for(
        lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "3",
        what="valid message after the bad ones",
    )
    text = caplog.text
    assert "malformed XML" in text and "text outside any message" in text
    assert "unknown INDI message <unknownThing>" in text and "exceeds the limit of 4096 bytes" in text
    assert bridge.ready


def test_client_garbage_on_to_indi_does_not_reach_indiserver(bridge, fake, rconn, redis_host, caplog):
    caplog.set_level(logging.WARNING, logger="indiredis")
    fake.send(DEF)
    wait_for(lambda: tools.devices(rconn, redis_host) == ["Fake"], what="device")
    rconn.publish("to_indi", b"<newNumberVector device='Fake' name='N'><oneNumber name='X'>")  # incomplete
    rconn.publish("to_indi", b"total garbage")
    rconn.publish("to_indi", b"<!DOCTYPE x><newNumberVector/>")
    tools.newnumbervector(rconn, redis_host, "N", "Fake", {"X": "5"})
    wait_for(lambda: b'<oneNumber name="X">5</oneNumber>' in fake.received, what="the valid request")
    assert b"garbage" not in fake.received and b"DOCTYPE" not in fake.received
    assert fake.received.count(b"newNumberVector") == 2  # open and close tag of the one valid request
    assert "incomplete message" in caplog.text
    fake.send(b"<setNumberVector device='Fake' name='N'><oneNumber name='X'>5</oneNumber></setNumberVector>")
    wait_for(
        lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "5",
        what="connection still serving",
    )


def test_reconnects_and_forgets_vanished_devices(bridge, fake, rconn, redis_host):
    fake.send(DEF)
    wait_for(lambda: tools.devices(rconn, redis_host) == ["Fake"], what="device")
    fake.received.clear()
    fake.drop_clients()  # indiserver went away and came back with no devices
    wait_for(lambda: b"getProperties" in fake.received, timeout=15, what="reconnect and getProperties")
    wait_for(lambda: tools.devices(rconn, redis_host) == [], what="stale device removed")
    fake.send(DEF.replace(b"Fake", b"Other"))
    wait_for(lambda: tools.devices(rconn, redis_host) == ["Other"], what="new device")
