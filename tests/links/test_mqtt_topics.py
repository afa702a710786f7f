"""Where the MQTT instrument side publishes each message (docs/mqtt.md), no broker needed."""

from __future__ import annotations

import indiredis
from indiredis.links.mqtt import MqttInstrumentLink
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import parse_message
from indiredis.protocol.routing import Snoop


def msg(xml: str) -> Message:
    message = parse_message(xml.encode())
    assert isinstance(message, Message)
    return message


NUMBER = msg(
    '<setNumberVector device="Mount" name="COORD"><oneNumber name="RA">1</oneNumber></setNumberVector>'
)


def test_from_indi_and_snoop_data_topics_and_delproperty_ends_matching_snoops():
    link = MqttInstrumentLink("mount-pc", indiredis.mqtt_server("127.0.0.1"))
    link.remote_snoops = {"camera-pc": {Snoop("Mount", "COORD")}, "guider-pc": {Snoop("Mount", "")}}
    assert sorted(link.topics_for(NUMBER)) == [
        "from_indi/mount-pc",
        "snoop_data/camera-pc",
        "snoop_data/guider-pc",
    ]
    # a property's delProperty ends the records for that property, not a record for the whole device
    link.topics_for(msg('<delProperty device="Mount" name="COORD"/>'))
    assert link.remote_snoops == {"camera-pc": set(), "guider-pc": {Snoop("Mount", "")}}
    assert sorted(link.topics_for(NUMBER)) == ["from_indi/mount-pc", "snoop_data/guider-pc"]
    # the device's delProperty reaches its snoopers, then ends their records
    assert sorted(link.topics_for(msg('<delProperty device="Mount"/>'))) == [
        "from_indi/mount-pc",
        "snoop_data/guider-pc",
    ]
    assert link.topics_for(NUMBER) == ["from_indi/mount-pc"]
    # a local driver's snoop request goes to the snoop control topic
    assert link.topics_for(msg('<getProperties version="1.7" device="Dome"/>')) == ["snoop_control/mount-pc"]
