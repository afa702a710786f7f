"""BLOBs towards port clients in indiserver's layout: base64 on one unbroken line."""

from __future__ import annotations

import base64
import textwrap

from indiredis.protocol.clientlayout import indiserver_layout
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import parse_message


def msg(xml: bytes) -> Message:
    message = parse_message(xml)
    assert isinstance(message, Message)
    return message


DATA = bytes(range(256)) * 40
WRAPPED = "\n".join(textwrap.wrap(base64.b64encode(DATA).decode(), 72))


def test_driver_wrapped_base64_goes_out_on_one_line_and_nothing_else_changes():
    raw = (
        "<setBLOBVector\n  device='Cam'\n  name='IMG'\n>\n"
        f"  <oneBLOB\n    name='A'\n    size='{len(DATA)}'\n    format='.fits'>\n{WRAPPED}\n  </oneBLOB>\n"
        f"  <oneBLOB name='B' size='3' format='.x>y'>\nYWJj\n  </oneBLOB>\n"
        f"  <oneBLOB name='C' size='{len(DATA)}' format='.fits'>{WRAPPED}</oneBLOB>\n</setBLOBVector>\n"
    ).encode()
    out = b"".join(indiserver_layout(msg(raw)))
    one_line = base64.b64encode(DATA)
    assert out.count(one_line) == 2 and b"YWJj" in out
    start = f'<oneBLOB name="A" size="{len(DATA)}" format=".fits" len="{len(DATA)}">\n'.encode()
    assert out.startswith(
        b"<setBLOBVector\n  device='Cam'\n  name='IMG'\n>\n  " + start + one_line + b"\n  </oneBLOB>"
    )
    again = msg(out)
    assert [base64.b64decode(m.text) for m in again.members] == [DATA, b"abc", DATA]
    assert [m.attrs.get("len") for m in again.members] == [str(len(DATA)), None, str(len(DATA))]
    assert b'format=".x&gt;y"' not in out and b"format='.x>y'" in out  # one line already: as it was


def test_enclen_becomes_len_as_indiserver_writes_it():
    start = b"<setBLOBVector device='Cam' name='IMG'>"
    raw = start + b"<oneBLOB name='A' size='9' enclen='4' format='.z'>YWI=</oneBLOB></setBLOBVector>"
    out = b"".join(indiserver_layout(msg(raw)))
    assert out == start + b'<oneBLOB name="A" size="9" format=".z" len="2">YWI=</oneBLOB></setBLOBVector>'


def test_messages_in_indiserver_layout_already_and_others_are_passed_as_they_are():
    one_line = msg(
        b'<setBLOBVector device="Cam" name="IMG">\n'
        b'    <oneBLOB name="A" size="3" format=".x" len="3">\nYWJj\n    </oneBLOB>\n</setBLOBVector>\n'
    )
    number = msg(
        b'<setNumberVector device="Cam" name="T"><oneNumber name="T">1\n</oneNumber></setNumberVector>'
    )
    for message in (one_line, number):
        pieces = indiserver_layout(message)
        assert len(pieces) == 1 and pieces[0] is message.raw
