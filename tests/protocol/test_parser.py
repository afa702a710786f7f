"""The incremental INDI stream parser."""

from __future__ import annotations

import pytest

from indiredis.protocol import IndiStreamParser, Malformed, Message, parse_message

EVERY_MESSAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<defTextVector device="Tel" name="INFO" label="Info" group="Main" state="Idle" perm="ro" timeout="0" timestamp="2026-01-01T00:00:00">
  <defText name="NAME" label="Name">
Telescope &amp; Co
  </defText>
</defTextVector>
<defNumberVector device="Tel" name="EQ" state="Ok" perm="rw" timeout="60"><defNumber name="RA" label="RA" format="%010.6m" min="0" max="24" step="0">12:30:00</defNumber><defNumber name="DEC" format="%9.6m" min="-90" max="90" step="0">-5 30</defNumber></defNumberVector>
<defSwitchVector device="Tel" name="CONNECTION" state="Idle" perm="rw" rule="OneOfMany"><defSwitch name="CONNECT">Off</defSwitch><defSwitch name="DISCONNECT">On</defSwitch></defSwitchVector>
<defLightVector device="Tel" name="STATUS" state="Idle"><defLight name="TRACKING" label="Tracking">Busy</defLight></defLightVector>
<defBLOBVector device="Cam" name="CCD1" state="Idle" perm="ro"><defBLOB name="CCD1" label="Image"/></defBLOBVector>
<setTextVector device="Tel" name="INFO"><oneText name="NAME">x</oneText></setTextVector>
<setNumberVector device="Tel" name="EQ" state="Busy"><oneNumber name="RA">1.5</oneNumber></setNumberVector>
<setSwitchVector device="Tel" name="CONNECTION"><oneSwitch name="CONNECT">On</oneSwitch></setSwitchVector>
<setLightVector device="Tel" name="STATUS"><oneLight name="TRACKING">Ok</oneLight></setLightVector>
<setBLOBVector device="Cam" name="CCD1" state="Ok"><oneBLOB name="CCD1" size="3" format=".bin">AQID</oneBLOB></setBLOBVector>
<newTextVector device="Tel" name="INFO"><oneText name="NAME">y</oneText></newTextVector>
<newNumberVector device="Tel" name="EQ"><oneNumber name="RA">2</oneNumber></newNumberVector>
<newSwitchVector device="Tel" name="CONNECTION"><oneSwitch name="CONNECT">On</oneSwitch></newSwitchVector>
<newBLOBVector device="Cam" name="UP"><oneBLOB name="F" size="1" format=".txt">YQ==</oneBLOB></newBLOBVector>
<message device="Tel" timestamp="2026-01-01T00:00:01" message="slewing &lt;fast&gt;"/>
<message message="system wide"/>
<delProperty device="Tel" name="STATUS"/>
<delProperty device="Cam"/>
<getProperties version="1.7"/>
<getProperties version="1.7" device="Tel" name="EQ"/>
<enableBLOB device="Cam" name="CCD1">Also</enableBLOB>
<pingRequest uid="1"/>
"""  # noqa: E501 - INDI XML samples, one message per line

EXPECTED_TAGS = [
    "defTextVector",
    "defNumberVector",
    "defSwitchVector",
    "defLightVector",
    "defBLOBVector",
    "setTextVector",
    "setNumberVector",
    "setSwitchVector",
    "setLightVector",
    "setBLOBVector",
    "newTextVector",
    "newNumberVector",
    "newSwitchVector",
    "newBLOBVector",
    "message",
    "message",
    "delProperty",
    "delProperty",
    "getProperties",
    "getProperties",
    "enableBLOB",
    "pingRequest",
]


def parse_all(data: bytes, chunk: int | None = None, **options) -> list:
    parser = IndiStreamParser(**options)
    if chunk is None:
        return parser.feed(data)
    events = []
    for i in range(0, len(data), chunk):
        events += parser.feed(data[i : i + chunk])
    return events


def test_every_message_type():
    events = parse_all(EVERY_MESSAGE)
    assert all(isinstance(e, Message) for e in events), [e for e in events if isinstance(e, Malformed)]
    assert [e.tag for e in events] == EXPECTED_TAGS
    text = events[0]
    assert (
        text.device == "Tel" and text.name == "INFO" and text.action == "def" and text.vector == "TextVector"
    )
    assert text.members[0].text == "Telescope & Co"
    number = events[1]
    assert [m.name for m in number.members] == ["RA", "DEC"]
    assert number.members[1].attrs["format"] == "%9.6m"
    assert events[4].members[0].name == "CCD1" and events[4].is_blob
    assert events[14].attrs["message"] == "slewing <fast>"
    assert events[20].attrs["instruction"] == "Also"
    assert events[5].raw.startswith(b"<setTextVector") and events[5].raw.endswith(b"</setTextVector>")


def test_split_at_every_byte_position_gives_the_same_result():
    whole = parse_all(EVERY_MESSAGE)
    for cut in range(1, len(EVERY_MESSAGE)):
        parser = IndiStreamParser()
        events = parser.feed(EVERY_MESSAGE[:cut]) + parser.feed(EVERY_MESSAGE[cut:])
        assert events == whole, f"differs when split at byte {cut}"
        assert [e.raw for e in events] == [e.raw for e in whole]


def test_byte_at_a_time_and_several_messages_per_read():
    assert parse_all(EVERY_MESSAGE, chunk=1) == parse_all(EVERY_MESSAGE)
    assert parse_all(EVERY_MESSAGE * 3, chunk=4096) == parse_all(EVERY_MESSAGE) * 3


VALID = b'<message device="ok" message="after"/>'


@pytest.mark.parametrize(
    "bad, reason",
    [
        (
            b'<setNumberVector device="a" name="b"><oneNumber name="x">1</oneText></setNumberVector>',
            "malformed",
        ),
        (b"<bogusVector device='a'/>", "unknown INDI message"),
        (b"garbage between messages", "text outside"),
        (
            b'<setNumberVector name="b"><oneNumber name="x">1</oneNumber></setNumberVector>',
            "lacks the 'device'",
        ),
        (
            b'<setNumberVector device="a" name="b"><oneNumber>1</oneNumber></setNumberVector>',
            "lacks the 'name'",
        ),
        (b'<message device="a" message="\xff\xfe"/>', "malformed XML"),
        (b'<message device="a" message="&undefined;"/>', "malformed XML"),
        (b"</setNumberVector>", "end tag outside"),
        (b'<!DOCTYPE x [<!ENTITY a "aaaa">]>', "DTD"),
        (b'<message device="a"><![CDATA[x]]></message>', "DTD"),
    ],
)
def test_malformed_input_is_reported_and_skipped(bad, reason):
    events = parse_all(VALID + bad + VALID)
    messages = [e for e in events if isinstance(e, Message)]
    errors = [e for e in events if isinstance(e, Malformed)]
    assert [m.device for m in messages] == ["ok", "ok"]
    assert errors and reason in errors[0].reason
    # the same holds when the stream arrives a byte at a time
    assert [e for e in parse_all(VALID + bad + VALID, chunk=1) if isinstance(e, Message)] == messages


def test_billion_laughs_is_refused_without_expansion():
    bomb = (
        b'<!DOCTYPE lolz [<!ENTITY lol "lol">'
        b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
        b'<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
        b'<message device="x" message="&lol3;"/>'
    )
    events = parse_all(bomb + VALID)
    assert isinstance(events[0], Malformed)
    assert [e for e in events if isinstance(e, Message)] == [parse_message(VALID)]
    assert not any(isinstance(e, Message) and "lol" in e.attrs.get("message", "") for e in events)


def test_external_entity_is_refused():
    xxe = b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]><message device="a" message="&x;"/>'
    events = parse_all(xxe + VALID)
    assert not any(isinstance(e, Message) and "root" in e.attrs.get("message", "") for e in events)
    assert events[-1] == parse_message(VALID)


def test_oversized_message_is_rejected_with_bounded_memory():
    limit = 10_000
    parser = IndiStreamParser(max_message_size=limit)
    head = b'<setBLOBVector device="c" name="b"><oneBLOB name="x" size="1" format=".f">'
    events = parser.feed(head)
    peak = parser.buffered
    for _ in range(1000):  # 4 MB of BLOB data in 4 kB reads
        events += parser.feed(b"QUJD" * 1024)
        peak = max(peak, parser.buffered)
    events += parser.feed(b"</oneBLOB></setBLOBVector>" + VALID)
    assert peak <= limit + 4096 + len(head)
    assert isinstance(events[0], Malformed) and "exceeds the limit" in events[0].reason
    assert events[1:] == [parse_message(VALID)]
    assert parser.buffered == 0


def test_message_under_the_limit_passes():
    data = (
        b'<setBLOBVector device="c" name="b"><oneBLOB name="x" size="3" format=".f">AQID</oneBLOB>'
        b"</setBLOBVector>"
    )
    assert isinstance(parse_all(data, max_message_size=len(data))[0], Message)
    assert isinstance(parse_all(data, max_message_size=len(data) - 1)[0], Malformed)


def test_attribute_values_may_contain_angle_bracket_and_quotes():
    data = b"""<message device='a "b"' message="x > y"/>"""
    (event,) = parse_all(data, chunk=1)
    assert event.device == 'a "b"' and event.attrs["message"] == "x > y"


def test_unknown_children_are_ignored():
    data = b'<setNumberVector device="a" name="b"><foo/><oneNumber name="x">1</oneNumber></setNumberVector>'
    (event,) = parse_all(data)
    assert [m.name for m in event.members] == ["x"]


@pytest.mark.parametrize(
    "hostile",
    [
        b"<" + b"A" * 200_000,  # a tag name with no end
        b"<message " + b"a" * 200_000,  # attributes with no end
        b"<message device='" + b"d" * 200_000,  # an unclosed quoted value
        b"<setTextVector device='a' name='b'>" + b"<x " * 50_000,  # many unfinished children
    ],
)
def test_pathological_markup_is_handled_in_linear_time(hostile):
    # with a backtracking tokenizer these take minutes (and hit the test timeout)
    events = parse_all(hostile + VALID, chunk=4096, max_message_size=1 << 20)
    assert events[-1] == parse_message(VALID)
