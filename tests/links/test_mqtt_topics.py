"""Where the MQTT instrument side publishes each message (docs/mqtt.md), no broker needed."""

from __future__ import annotations

import asyncio
import logging

import indiredis
from indiredis.core.channel import Channel
from indiredis.core.sides import Reset
from indiredis.links import mqtt
from indiredis.links.mqtt import MqttClientSideLink
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import parse_message
from indiredis.protocol.routing import ClientBlobPolicies, Snoop


def msg(xml: str) -> Message:
    message = parse_message(xml.encode())
    assert isinstance(message, Message)
    return message


NUMBER = msg(
    '<setNumberVector device="Mount" name="COORD"><oneNumber name="RA">1</oneNumber></setNumberVector>'
)


def test_from_indi_and_snoop_data_topics_and_delproperty_ends_matching_snoops():
    link = MqttClientSideLink("mount-pc", indiredis.mqtt_server("127.0.0.1"))
    link.remote_snoops = {"camera-pc": {Snoop("Mount", "COORD")}, "guider-pc": {Snoop("Mount", "")}}
    assert sorted(link.route_outgoing(NUMBER)) == [
        "from_indi/mount-pc",
        "snoop_data/camera-pc",
        "snoop_data/guider-pc",
    ]
    # a property's delProperty ends the records for that property, not a record for the whole device
    link.route_outgoing(msg('<delProperty device="Mount" name="COORD"/>'))
    assert link.remote_snoops == {"camera-pc": set(), "guider-pc": {Snoop("Mount", "")}}
    assert sorted(link.route_outgoing(NUMBER)) == ["from_indi/mount-pc", "snoop_data/guider-pc"]
    # the device's delProperty reaches its snoopers, then ends their records
    assert sorted(link.route_outgoing(msg('<delProperty device="Mount"/>'))) == [
        "from_indi/mount-pc",
        "snoop_data/guider-pc",
    ]
    assert link.route_outgoing(NUMBER) == ["from_indi/mount-pc"]
    # a local driver's snoop request goes to the snoop control topic
    request = msg('<getProperties version="1.7" device="Dome"/>')
    assert link.route_outgoing(request) == ["snoop_control/mount-pc"]


def test_snoop_records_are_bounded_per_asker_and_in_askers_and_expire(caplog):
    link = MqttClientSideLink("mount-pc", indiredis.mqtt_server("127.0.0.1"))
    for number in range(mqtt.SNOOPS_PER_ASKER + 5):
        link.remember_snoop("camera-pc", Snoop(f"Dev{number}", ""), now=0.0)
    assert len(link.remote_snoops["camera-pc"]) == mqtt.SNOOPS_PER_ASKER
    assert "refused a snoop request of camera-pc" in caplog.text
    for number in range(mqtt.SNOOP_ASKERS_KEPT + 10):  # strangers inventing askers
        link.remember_snoop(f"stranger{number}", Snoop("Mount", ""), now=1.0 + number)
    assert len(link.remote_snoops) == mqtt.SNOOP_ASKERS_KEPT
    assert "camera-pc" not in link.remote_snoops  # the one that asked least recently went first
    link.remember_snoop("camera-pc", Snoop("Mount", "COORD"), now=100.0)
    # a day without a renewed request ends an asker's records
    link.remember_snoop("guider-pc", Snoop("Mount", ""), now=100.0 + mqtt.SNOOP_EXPIRY_SECONDS - 1)
    assert set(link.remote_snoops) == {"guider-pc", "camera-pc"}  # the strangers' records expired
    link.remember_snoop("guider-pc", Snoop("Mount", ""), now=100.0 + mqtt.SNOOP_EXPIRY_SECONDS)
    assert set(link.remote_snoops) == {"guider-pc"}


BLOB = msg(
    '<setBLOBVector device="Cam" name="IMG"><oneBLOB name="I" size="1" format=".f">YQ==</oneBLOB>'
    "</setBLOBVector>"
)


def test_blob_data_goes_to_from_indi_only_while_a_client_side_wants_it_and_is_asked_again_after_a_reset():
    link = MqttClientSideLink("camera-pc", indiredis.mqtt_server("127.0.0.1"))
    assert link.route_outgoing(BLOB) == []  # nobody asked: it stays here (the snoopers would still get it)
    link.remote_snoops = {"guider-pc": {Snoop("Cam", "")}}
    assert link.route_outgoing(BLOB) == ["snoop_data/guider-pc"]
    link.client_blobs.update("store", msg('<enableBLOB device="Cam" name="IMG">Also</enableBLOB>'))
    assert link.route_outgoing(BLOB) == ["from_indi/camera-pc", "snoop_data/guider-pc"]
    # the INDI side reconnected (it starts at Never) or defined IMG anew: asked again
    asked: Channel[Message] = Channel()
    link._to_indi = asked
    definition = msg(
        '<defBLOBVector device="Cam" name="IMG" state="Idle" perm="ro"><defBLOB name="I"/></defBLOBVector>'
    )
    link.pack([Reset(), definition])
    requests = [(m.tag, m.device, m.name, m.attrs["instruction"]) for m in asyncio.run(asked.get_batch())]
    assert requests == [("enableBLOB", "Cam", "IMG", "Also")] * 2


def test_client_sides_forgotten_beyond_the_bound_are_logged_rate_limited(caplog) -> None:
    caplog.set_level(logging.WARNING, logger="indiredis")
    link = MqttClientSideLink("camera-pc", indiredis.mqtt_server("127.0.0.1"))
    link.client_blobs = ClientBlobPolicies(kept=3)
    link.apply_enable_blob("store", msg('<enableBLOB device="Cam" name="IMG">Also</enableBLOB>'))
    for index in range(100):  # a stranger inventing client ids
        link.apply_enable_blob(f"forged{index}", msg(f'<enableBLOB device="Fake{index}">Also</enableBLOB>'))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and lines[0].startswith("forgot the BLOB policy of client side store")
    link._blob_log.close()
    assert caplog.records[-1].getMessage().startswith("… and 97 more from client sides' BLOB policies")
