"""Message constructors: what they build is what the parser reads from their ``raw`` bytes."""

from __future__ import annotations

import base64

import pytest

from indiredis.protocol import Action, BlobInstruction, Message, Tag, VectorKind, parse_message
from indiredis.protocol.messages import Member

STAMP = "2026-01-02T03:04:05.000006"

BUILT = [
    Message.get_properties(),
    Message.get_properties("Telescope"),
    Message.get_properties("Telescope", "EQUATORIAL_EOD_COORD"),
    Message.enable_blob("CCD"),
    Message.enable_blob("CCD", "CCD1", BlobInstruction.ONLY),
    Message.enable_blob("CCD", "", "Never"),
    Message.new_vector(VectorKind.NUMBER, "Tel", "COORD", {"RA": "1.5", "DEC": "-20"}, STAMP),
    Message.new_vector("Switch", "Tel", "CONNECTION", {"CONNECT": "On", "DISCONNECT": "Off"}, STAMP),
    Message.new_vector(VectorKind.TEXT, "Tel", "SITE", {"NAME": "<&\"'> é"}, STAMP),
    Message.new_blob_vector("CCD", "UPLOAD", [("FILE", 3, ".fits", b"\x00\x01\x02")], STAMP),
    Message.indi_message("driver x died", timestamp=STAMP),
    Message.indi_message("hello", device="Tel", timestamp=STAMP),
    Message.del_property("Tel", timestamp=STAMP),
    Message.del_property("Tel", "SITE", STAMP),
    Message.ping_request("17"),
    Message.ping_reply("17"),
]


@pytest.mark.parametrize("message", BUILT, ids=lambda m: m.raw.decode()[:60])
def test_raw_parses_back_to_the_same_message(message: Message) -> None:
    assert parse_message(message.raw) == message
    assert parse_message(message.raw).raw == message.raw


def test_get_properties() -> None:
    everything = Message.get_properties()
    assert everything.tag == Tag.GET_PROPERTIES and everything.attrs == {"version": "1.7"}
    assert everything.action is None and everything.kind is None and everything.vector == ""
    assert Message.get_properties(name="ignored without a device").attrs == {"version": "1.7"}
    one = Message.get_properties("Tel", "COORD")
    assert (one.device, one.name) == ("Tel", "COORD")


def test_enable_blob() -> None:
    message = Message.enable_blob("CCD", "CCD1", BlobInstruction.ONLY)
    assert message.raw == b'<enableBLOB device="CCD" name="CCD1">Only</enableBLOB>'
    assert message.attrs["instruction"] == "Only"
    assert Message.enable_blob("CCD").attrs == {"device": "CCD", "instruction": "Also"}
    with pytest.raises(ValueError):
        Message.enable_blob("CCD", "", "Sometimes")


def test_new_vector() -> None:
    message = Message.new_vector("Number", "Tel", "COORD", {"RA": "1.5"}, STAMP)
    assert (
        message.tag == "newNumberVector"
        and message.action is Action.NEW
        and message.kind is VectorKind.NUMBER
    )
    assert message.members == (Member("oneNumber", {"name": "RA"}, "1.5"),)
    assert message.attrs == {"device": "Tel", "name": "COORD", "timestamp": STAMP}
    assert Message.new_vector("Text", "Tel", "SITE", {}).attrs["timestamp"]  # now, by default
    with pytest.raises(ValueError):
        Message.new_vector(VectorKind.LIGHT, "Tel", "STATUS", {"A": "Ok"}, STAMP)
    with pytest.raises(ValueError):
        Message.new_vector("Colour", "Tel", "X", {"A": "1"}, STAMP)


def test_new_blob_vector_carries_base64() -> None:
    message = Message.new_blob_vector("CCD", "UPLOAD", [("FILE", 3, ".fits", b"abc")], STAMP)
    (member,) = message.members
    assert member.attrs == {"name": "FILE", "size": "3", "format": ".fits"}
    assert base64.b64decode(member.text) == b"abc"
    assert message.is_blob


def test_system_message_and_deletion() -> None:
    notice = Message.indi_message("driver gone", timestamp=STAMP)
    assert notice.tag == Tag.MESSAGE and notice.device == "" and notice.attrs["message"] == "driver gone"
    assert notice.from_device
    gone = Message.del_property("Tel", timestamp=STAMP)
    assert gone.attrs == {"device": "Tel", "timestamp": STAMP} and gone.from_device


def test_ping_reply_answers_the_request() -> None:
    assert Message.ping_reply("42").attrs == {"uid": "42"}
    assert Message.ping_reply("42").tag == Tag.PING_REPLY
    assert Message.ping_request("42").tag == Tag.PING_REQUEST


def test_action_and_kind_of_parsed_messages() -> None:
    definition = parse_message(
        b'<defSwitchVector device="D" name="P"><defSwitch name="A">On</defSwitch></defSwitchVector>'
    )
    assert isinstance(definition, Message)
    assert definition.action is Action.DEF and definition.kind is VectorKind.SWITCH
    assert definition.vector == "SwitchVector" and definition.from_device
    request = Message.new_vector("Switch", "D", "P", {"A": "On"}, STAMP)
    assert not request.from_device
