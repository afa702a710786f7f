"""The key space, byte for byte: a recorded INDI stream through a real inditoredis into a real Redis.

The recorded stream (definitions and sets of all five vector kinds, sexagesimal numbers, messages,
delProperty, BLOBs plain and ``.z``, a client's enableBLOB) is sent by a stand-in indiserver to the
bridge; every key Redis then holds (type, value, hash fields, set members, list entries, whether it
has a TTL) and every ``from_indi`` publication are dumped and compared with ``keyspace_golden.txt``,
which the store as it was before the data path was optimised wrote.  Times the bridge takes from
its clock (history receive times, timestamps a message lacks) are normalised to ``<now>``, and the
blob folder to ``<blobs>``, the bridge's heartbeat to its type and expiry; a sorted set is dumped as its members in score order.

Regenerate the golden file only for an intended change of the key space:
``INDIREDIS_WRITE_GOLDEN=1 pytest tests/store/test_keyspace_golden.py``.
"""

# ruff: noqa: E501 - the recorded stream keeps the long lines drivers send
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import zlib
from pathlib import Path
from typing import Any

import pytest

import indiredis
from indiredis.bridges import make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import wait_for
from tests.support.subscriber import Subscriber

GOLDEN = Path(__file__).with_name("keyspace_golden.txt")
T = "2026-01-01T00:00:0"  # recorded timestamps: T + one digit

BLOB_DATA = bytes(range(256)) * 12 + b"FITS-ish tail"
BLOB_Z_DATA = b"SIMPLE  =                    T" * 200


def wrapped_base64(data: bytes) -> str:
    """Base64 in lines of 72 characters, as drivers send it."""
    text = base64.b64encode(data).decode()
    return "\n".join(text[i : i + 72] for i in range(0, len(text), 72))


PART_ONE = f"""
<defNumberVector device="Mount" name="EQUATORIAL_EOD_COORD" label="Eq. Coordinates" group="Main Control" state="Idle" perm="rw" timeout="60" timestamp="{T}1">
  <defNumber name="RA" label="RA (hh:mm:ss)" format="%010.6m" min="0" max="24" step="0">12:30:00</defNumber>
  <defNumber name="DEC" label="DEC (dd:mm:ss)" format="%010.6m" min="-90" max="90" step="0">-0:30</defNumber>
</defNumberVector>
<defNumberVector device="Mount" name="GEO" group="Site" state="Ok" perm="rw" timestamp="{T}1" message="site loaded">
  <defNumber name="LAT" format="%9.6m" min="-90" max="90" step="0.5">51 28 38.5</defNumber>
  <defNumber name="LONG" format="%08.5m" min="0:00" max="360" step="1:00">359;59;59</defNumber>
  <defNumber name="ELEV" format="%g" min="-200" max="10000" step="1">45</defNumber>
  <defNumber name="PIER" format="%5.2f">bogus</defNumber>
  <defNumber name="COUNT" format="%d" min="0" max="1e3" step="1">7.6</defNumber>
</defNumberVector>
<defSwitchVector device="Mount" name="CONNECTION" label="Connection" group="Main Control" state="Idle" perm="rw" rule="OneOfMany" timeout="60" timestamp="{T}1">
  <defSwitch name="CONNECT" label="Connect">Off</defSwitch>
  <defSwitch name="DISCONNECT" label="Disconnect">On</defSwitch>
</defSwitchVector>
<defSwitchVector device="Mount" name="TRACK" state="Idle" perm="rw" rule="AtMostOne" timestamp="{T}1">
  <defSwitch name="ON">Off</defSwitch>
</defSwitchVector>
<defTextVector device="Mount" name="DRIVER_INFO" label="Driver Info" group="General Info" state="Idle" perm="ro" timeout="0" timestamp="{T}1">
  <defText name="DRIVER_NAME" label="Name">Telescope Simulator</defText>
  <defText name="DRIVER_EXEC" label="Exec">indi_simulator_telescope</defText>
  <defText name="EMPTY"></defText>
  <defText name="ESCAPED">a &lt; b &amp; c &gt; d "quoted" 'single' ünïcode</defText>
</defTextVector>
<defLightVector device="Mount" name="STATUS" label="Status" group="Main Control" state="Idle" timestamp="{T}1">
  <defLight name="PARKED" label="Parked">Idle</defLight>
  <defLight name="SLEWING">Busy</defLight>
</defLightVector>
<defBLOBVector device="Camera" name="CCD1" label="Image" group="Image" state="Idle" perm="ro" timeout="60" timestamp="{T}1">
  <defBLOB name="CCD1" label="Image"/>
  <defBLOB name="THUMB"/>
</defBLOBVector>
<defNumberVector device="Camera" name="CCD_TEMPERATURE" group="Cooling" state="Idle" perm="rw" timestamp="{T}1">
  <defNumber name="CCD_TEMPERATURE_VALUE" format="%6.2f" min="-50" max="50" step="0">20</defNumber>
</defNumberVector>
<message timestamp="{T}2" message="a message for no device"/>
<message device="Mount" timestamp="{T}2" message="Mount is ready"/>
<setNumberVector device="Mount" name="EQUATORIAL_EOD_COORD" state="Busy" timeout="60" timestamp="{T}3">
  <oneNumber name="RA">12:31:15.5</oneNumber>
  <oneNumber name="DEC">-5 30 15.5</oneNumber>
</setNumberVector>
<setNumberVector device="Mount" name="EQUATORIAL_EOD_COORD" state="Busy" timestamp="{T}3">
  <oneNumber name="RA">12:31:15.5</oneNumber>
  <oneNumber name="DEC">-5 30 15.5</oneNumber>
</setNumberVector>
<setNumberVector device="Mount" name="EQUATORIAL_EOD_COORD" state="Ok" timestamp="{T}4" message="slew done">
  <oneNumber name="RA">12.75</oneNumber>
  <oneNumber name="UNKNOWN">3</oneNumber>
</setNumberVector>
<setNumberVector device="Mount" name="GEO" state="Ok" timestamp="{T}4">
  <oneNumber name="LAT" min="-89" max="89:30" step="0">-33:52:04</oneNumber>
  <oneNumber name="ELEV" format="%.1f">12.25</oneNumber>
  <oneNumber name="COUNT">1e3</oneNumber>
</setNumberVector>
<setNumberVector device="Camera" name="CCD_TEMPERATURE" state="Busy">
  <oneNumber name="CCD_TEMPERATURE_VALUE">-10.5</oneNumber>
</setNumberVector>
<setSwitchVector device="Mount" name="CONNECTION" state="Ok" timestamp="{T}4">
  <oneSwitch name="CONNECT">On</oneSwitch>
  <oneSwitch name="DISCONNECT">Off</oneSwitch>
</setSwitchVector>
<setTextVector device="Mount" name="DRIVER_INFO" state="Ok" timestamp="{T}5">
  <oneText name="DRIVER_NAME">Telescope &amp; Co</oneText>
</setTextVector>
<setLightVector device="Mount" name="STATUS" state="Alert" timestamp="{T}5">
  <oneLight name="SLEWING">Ok</oneLight>
</setLightVector>
<setBLOBVector device="Camera" name="CCD1" state="Ok" timeout="60" timestamp="{T}6">
  <oneBLOB name="CCD1" size="{len(BLOB_DATA)}" format=".fits">
{wrapped_base64(BLOB_DATA)}
  </oneBLOB>
  <oneBLOB name="THUMB" size="{len(BLOB_Z_DATA)}" format=".fits.z">{wrapped_base64(zlib.compress(BLOB_Z_DATA))}</oneBLOB>
</setBLOBVector>
<setNumberVector device="Mount" name="NO_SUCH_PROPERTY" state="Ok" timestamp="{T}6">
  <oneNumber name="X">1</oneNumber>
</setNumberVector>
<setNumberVector device="Mount" name="CONNECTION" state="Ok" timestamp="{T}6">
  <oneNumber name="CONNECT">1</oneNumber>
</setNumberVector>
<defTextVector device="Bad:Device" name="X" state="Idle" perm="ro"><defText name="Y">z</defText></defTextVector>
<message device="Mount" timestamp="{T}7" message="END ONE"/>
"""

PART_TWO = f"""
<defSwitchVector device="Mount" name="TRACK" label="Tracking" state="Ok" perm="rw" rule="OneOfMany" timestamp="{T}8">
  <defSwitch name="ON">On</defSwitch>
  <defSwitch name="OFF">Off</defSwitch>
</defSwitchVector>
<defNumberVector device="Mount" name="GEO" group="Site" state="Ok" perm="ro" timestamp="{T}8">
  <defNumber name="LAT" format="%9.6m" min="-90" max="90" step="0">10:00</defNumber>
</defNumberVector>
<setBLOBVector device="Camera" name="CCD1" state="Ok" timestamp="{T}8">
  <oneBLOB name="THUMB" size="3" format=".raw">{base64.b64encode(b"abc").decode()}</oneBLOB>
</setBLOBVector>
<delProperty device="Mount" name="STATUS" timestamp="{T}8"/>
<delProperty device="Mount" name="DRIVER_INFO" timestamp="{T}8" message="info gone"/>
<delProperty device="Camera" name="CCD_TEMPERATURE"/>
<defTextVector device="Focuser" name="INFO" state="Idle" perm="ro" timestamp="{T}9"><defText name="T">x</defText></defTextVector>
<delProperty device="Focuser" timestamp="{T}9"/>
<message device="Mount" timestamp="{T}9" message="END TWO"/>
"""

_NOW = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}")


def normalise(text: str, blob_folder: Path) -> str:
    """Times from the bridge's clock become ``<now>``; the blob folder becomes ``<blobs>``."""
    text = text.replace(str(blob_folder), "<blobs>")
    return _NOW.sub("<now>", text)


def decoded(value: bytes) -> str:
    return value.decode("utf-8", "backslashreplace")


def dump_keys(rconn: Any, blob_folder: Path) -> list[str]:
    """One JSON line per key: name, type, TTL presence and the whole value."""
    lines = []
    for key in sorted(rconn.keys("*")):
        kind = decoded(rconn.type(key))
        value: Any
        if key == b"indi_heartbeat":
            value = "<the bridge's heartbeat: time, ports>"
        elif kind == "string":
            value = decoded(rconn.get(key))
        elif kind == "hash":
            value = sorted([decoded(k), decoded(v)] for k, v in rconn.hgetall(key).items())
        elif kind == "set":
            value = sorted(decoded(m) for m in rconn.smembers(key))
        elif kind == "list":
            value = [decoded(entry) for entry in rconn.lrange(key, 0, -1)]
        elif kind == "zset":  # members in score order (scores are times: only their order is kept)
            value = [decoded(member) for member in rconn.zrange(key, 0, -1)]
        else:
            value = f"unexpected type {kind}"
        has_ttl = rconn.ttl(key) != -1
        line = json.dumps([decoded(key), kind, has_ttl, value], ensure_ascii=False)
        lines.append(normalise(line, blob_folder))
    return lines


def dump_files(blob_folder: Path) -> list[str]:
    return [
        json.dumps(["file", path.name, path.stat().st_size, hashlib.sha256(path.read_bytes()).hexdigest()])
        for path in sorted(blob_folder.iterdir())
    ]


@pytest.mark.timeout(120)
def test_recorded_stream_writes_the_golden_key_space(redis_proc, redis_host, rconn, tmp_path):
    blob_folder = tmp_path / "blobs"
    publications = Subscriber(rconn)
    try:
        with FakeIndiServer() as fake:
            bridge = make_inditoredis(
                indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(blob_folder)
            )
            with run_bridge(bridge):
                wait_for(lambda: b"getProperties" in fake.received and bridge.ready, what="bridge")
                fake.send(PART_ONE.encode())
                wait_for(lambda: publications.seen(b"END ONE"), what="the first part")
                # a client turns BLOBs off for one property, then back on for the device
                rconn.publish("to_indi", '<enableBLOB device="Camera" name="CCD1">Never</enableBLOB>')
                wait_for(
                    lambda: rconn.hget("indi_attributes:CCD1:Camera", "blobs") == b"Disabled",
                    what="blobs Disabled",
                )
                rconn.publish("to_indi", '<enableBLOB device="Camera">Also</enableBLOB>')
                wait_for(
                    lambda: rconn.hget("indi_attributes:CCD1:Camera", "blobs") == b"Enabled",
                    what="blobs Enabled",
                )
                fake.send(PART_TWO.encode())
                wait_for(lambda: publications.seen(b"END TWO"), what="the second part")
    finally:
        publications.close()
    lines = dump_keys(rconn, blob_folder) + dump_files(blob_folder)
    lines += [
        json.dumps(["from_indi", normalise(decoded(item), blob_folder)], ensure_ascii=False)
        for _, item in publications.items
    ]
    text = "\n".join(lines) + "\n"
    if os.environ.get("INDIREDIS_WRITE_GOLDEN") or not GOLDEN.exists():
        GOLDEN.write_text(text, encoding="utf-8")
        pytest.skip(f"golden file written to {GOLDEN}")
    expected = GOLDEN.read_text(encoding="utf-8")
    assert text.splitlines() == expected.splitlines()
    assert text == expected
