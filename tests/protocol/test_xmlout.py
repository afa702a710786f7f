"""XML output: timestamps, element serialisation and re-serialisation of parsed messages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from indiredis.protocol import Message, parse_message
from indiredis.protocol.messages import message_xml
from indiredis.protocol.xmlout import BLOB_INSTRUCTIONS, element_xml, indi_timestamp


def test_indi_timestamp_is_utc_without_zone() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    assert indi_timestamp(moment) == "2026-01-02T03:04:05.000006"
    east = moment.astimezone(timezone(timedelta(hours=2)))
    assert indi_timestamp(east) == "2026-01-02T03:04:05.000006"
    assert indi_timestamp(datetime(2026, 1, 2)) == "2026-01-02T00:00:00.000000"
    assert len(indi_timestamp()) == 26


def test_element_xml_escapes_attributes_and_text() -> None:
    xml = element_xml(
        "newTextVector", {"device": 'a"<&', "name": "n"}, [("oneText", {"name": "t"}, "<x & y>")]
    )
    assert xml == (
        b'<newTextVector device="a&quot;&lt;&amp;" name="n"><oneText name="t">&lt;x &amp; y&gt;</oneText>'
        b"</newTextVector>"
    )
    parsed = parse_message(xml)
    assert isinstance(parsed, Message)
    assert parsed.device == 'a"<&' and parsed.members[0].text == "<x & y>"


def test_element_xml_is_utf8() -> None:
    assert element_xml("message", {"message": "é"}) == '<message message="é" />'.encode()


def test_message_xml_round_trips() -> None:
    raw = (
        b'<setNumberVector device="Tel" name="COORD" state="Ok">'
        b'<oneNumber name="RA">1.5</oneNumber><oneNumber name="DEC">-2</oneNumber></setNumberVector>'
    )
    message = parse_message(raw)
    assert isinstance(message, Message)
    assert parse_message(message_xml(message)) == message


def test_message_xml_puts_the_enable_blob_instruction_back_as_text() -> None:
    message = Message.enable_blob("CCD", "CCD1", "Only")
    assert message_xml(message) == message.raw


def test_message_xml_strips_blob_data_on_request() -> None:
    message = Message.new_blob_vector("CCD", "UPLOAD", [("FILE", 3, ".fits", b"abc")], "2026-01-01T00:00:00")
    stripped = parse_message(message_xml(message, strip_blob_data=True))
    assert isinstance(stripped, Message)
    assert stripped.members[0].text == "" and stripped.members[0].attrs == message.members[0].attrs
    assert parse_message(message_xml(message)) == message


def test_blob_instructions() -> None:
    assert BLOB_INSTRUCTIONS == ("Never", "Also", "Only")
