#!/usr/bin/env python3
"""A fake INDI driver for the DriverPool tests: it reports, as INDI messages, everything it receives.

Run by the pool through a small wrapper script (see ``tests/links/test_driverpool.py``) that
sets its environment:

- ``FAKE_DEVICE``: the device it owns (default ``Fake``);
- ``FAKE_SNOOP``: ``Device:Property`` pairs, comma separated (property may be empty), asked for
  with getProperties at start, as real drivers snoop;
- ``FAKE_SNOOP_BLOBS``: devices whose BLOBs it wants too (``enableBLOB Also``), comma separated.

Behaviour:

- a getProperties for no device or its own: it defines ``COORD`` (numbers RA, DEC), ``CMD`` (a
  writable text) and ``IMAGE`` (a BLOB);
- ``newNumberVector COORD``: answered with ``setNumberVector COORD`` carrying the new values;
- ``newTextVector CMD``: ``blob`` sends a 3-byte ``setBLOBVector IMAGE``; ``stderr`` writes a line
  to stderr; ``exit`` exits with status 3; every command is then acknowledged with
  ``setTextVector CMD``;
- every message received but ``message`` and ``pingReply`` is reported as
  ``<message device="FAKE_DEVICE" message="got <tag> <device>/<name> [k=v ...]"/>``.
"""

from __future__ import annotations

import os
import sys
from xml.sax.saxutils import quoteattr

from indiredis.protocol.messages import Message
from indiredis.protocol.parser import IndiStreamParser

DEVICE = os.environ.get("FAKE_DEVICE", "Fake")
SNOOP = [pair.split(":", 1) for pair in os.environ.get("FAKE_SNOOP", "").split(",") if pair]
SNOOP_BLOBS = [device for device in os.environ.get("FAKE_SNOOP_BLOBS", "").split(",") if device]
DEV = quoteattr(DEVICE)


def send(xml: str) -> None:
    sys.stdout.write(xml + "\n")
    sys.stdout.flush()


def definitions() -> None:
    send(
        f'<defNumberVector device={DEV} name="COORD" state="Idle" perm="rw" timeout="0">'
        '<defNumber name="RA" format="%010.6m" min="0" max="24" step="0">0</defNumber>'
        '<defNumber name="DEC" format="%g" min="-90" max="90" step="0">0</defNumber></defNumberVector>'
    )
    send(
        f'<defTextVector device={DEV} name="CMD" state="Idle" perm="rw" timeout="0">'
        '<defText name="TEXT"></defText></defTextVector>'
    )
    send(
        f'<defBLOBVector device={DEV} name="IMAGE" state="Idle" perm="ro" timeout="0">'
        '<defBLOB name="FRAME"/></defBLOBVector>'
    )


def report(message: Message) -> None:
    if message.is_blob:
        values = " ".join(f"{m.name}={m.attrs.get('size', '')}" for m in message.members)
    else:
        values = " ".join(f"{m.name}={m.text}" for m in message.members)
    text = f"got {message.tag} {message.device}/{message.name} {values}".rstrip()
    send(f"<message device={DEV} message={quoteattr(text)}/>")


def command(text: str) -> None:
    if text == "blob":
        send(
            f'<setBLOBVector device={DEV} name="IMAGE" state="Ok">'
            '<oneBLOB name="FRAME" size="3" format=".bin">YWJj</oneBLOB></setBLOBVector>'
        )
    elif text == "stderr":
        sys.stderr.write(f"{DEVICE} says hello on stderr\n")
        sys.stderr.flush()
    elif text == "exit":
        sys.exit(3)
    send(
        f'<setTextVector device={DEV} name="CMD" state="Ok"><oneText name="TEXT">{text}</oneText>'
        f"</setTextVector>"
    )


def handle(message: Message) -> None:
    if message.tag not in ("message", "pingReply"):
        report(message)
    own = message.device == DEVICE
    if message.tag == "getProperties" and (not message.device or own):
        definitions()
    elif own and message.tag == "newNumberVector" and message.name == "COORD":
        values = "".join(f'<oneNumber name="{m.name}">{m.text}</oneNumber>' for m in message.members)
        send(f'<setNumberVector device={DEV} name="COORD" state="Ok">{values}</setNumberVector>')
    elif own and message.tag == "newTextVector" and message.name == "CMD":
        for member in message.members:
            command(member.text)


def main() -> None:
    for device, name in SNOOP:
        send(
            f'<getProperties version="1.7" device={quoteattr(device)}'
            + (f" name={quoteattr(name)}" if name else "")
            + "/>"
        )
    for device in SNOOP_BLOBS:
        send(f"<enableBLOB device={quoteattr(device)}>Also</enableBLOB>")
    parser = IndiStreamParser()
    for chunk in iter(lambda: os.read(0, 65536), b""):
        for event in parser.feed(chunk):
            if isinstance(event, Message):
                handle(event)


if __name__ == "__main__":
    main()
