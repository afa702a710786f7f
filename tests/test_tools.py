"""indiredis.tools, the client API of the contract, against a real Redis."""

from __future__ import annotations

import base64
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import pytest

import indiredis
from indiredis import tools
from tests.support.servers import wait_for


@pytest.fixture
def published(rconn, redis_host):
    """Collects what tools publish on to_indi."""
    pubsub = rconn.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(redis_host.to_indi_channel)
    wait_for(
        lambda: (
            pubsub.get_message(timeout=0.1) is None
            and rconn.pubsub_numsub(redis_host.to_indi_channel)[0][1] == 1
        ),
        what="subscription",
    )
    received: list[bytes] = []

    def collect(count: int) -> list[bytes]:
        deadline = time.monotonic() + 5
        while len(received) < count and time.monotonic() < deadline:
            item = pubsub.get_message(timeout=0.5)
            if item is not None:
                received.append(item["data"])
        return received

    yield collect
    pubsub.close()


def test_open_redis(redis_host):
    assert tools.open_redis(redis_host).ping()
    assert tools.open_redis(indiredis.redis_server(host="127.0.0.1", port=1)) is None


def test_getproperties_records_timestamps(rconn, redis_host, published):
    assert tools.getProperties(rconn, redis_host) == '<getProperties version="1.7" />'
    tools.getProperties(rconn, redis_host, device="Tel")
    xml = tools.getProperties(rconn, redis_host, name="EQ", device="Tel")
    assert ET.fromstring(xml).attrib == {"version": "1.7", "device": "Tel", "name": "EQ"}
    assert tools.getProperties(rconn, redis_host, name="EQ") is None
    for args in ((), ("", "Tel"), ("EQ", "Tel")):
        assert tools.getproperties_timestamp(rconn, redis_host, *args)
    assert (
        rconn.exists(
            "indi_getProperties", "indi_getProperties:device:Tel", "indi_getProperties:property:EQ:Tel"
        )
        == 3
    )
    assert tools.getproperties_timestamp(rconn, redis_host, "X", "Y") is None
    assert len(published(3)) == 3


def test_new_vectors(rconn, redis_host, published):
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    xml = tools.newnumbervector(
        rconn, redis_host, "EQ", "Tel", {"RA": "12:30", "DEC": "-5.5"}, timestamp=when
    )
    root = ET.fromstring(xml)
    assert root.tag == "newNumberVector" and root.attrib["timestamp"].startswith("2026-01-02T03:04:05")
    assert [(c.attrib["name"], c.text) for c in root] == [("RA", "12:30"), ("DEC", "-5.5")]
    assert tools.newnumbervector(rconn, redis_host, "EQ", "Tel", {"RA": "twelve"}) is None
    assert (
        ET.fromstring(tools.newswitchvector(rconn, redis_host, "C", "Tel", {"CONNECT": "On"})).tag
        == "newSwitchVector"
    )
    assert tools.newswitchvector(rconn, redis_host, "C", "Tel", {"CONNECT": "on"}) is None
    text = tools.newtextvector(rconn, redis_host, "T", "Tel", {"NAME": "a <b> & c"})
    assert ET.fromstring(text)[0].text == "a <b> & c"
    assert tools.newtextvector(rconn, redis_host, "T", "", {"NAME": "x"}) is None
    assert published(3) and published(3)[0] == xml.encode()


def test_newblobvector_from_bytes_and_file(rconn, redis_host, tmp_path, published):
    path = tmp_path / "f.bin"
    path.write_bytes(b"\x00\x01\x02")
    xml = tools.newblobvector(
        rconn,
        redis_host,
        "UP",
        "Cam",
        [
            {"name": "A", "size": 5, "format": ".txt", "value": b"hello"},
            {"name": "B", "size": 3, "format": ".bin", "filepath": str(path)},
        ],
    )
    root = ET.fromstring(xml)
    assert [base64.b64decode(c.text) for c in root] == [b"hello", b"\x00\x01\x02"]
    assert root[0].attrib == {"name": "A", "size": "5", "format": ".txt"}
    assert tools.newblobvector(rconn, redis_host, "UP", "Cam", [{"name": "A"}]) is None


def test_enableblob(rconn, redis_host):
    root = ET.fromstring(tools.enableblob(rconn, redis_host, "CCD1", "Cam", "Also"))
    assert (
        root.tag == "enableBLOB" and root.text == "Also" and root.attrib == {"device": "Cam", "name": "CCD1"}
    )
    assert "name" not in ET.fromstring(tools.enableblob(rconn, redis_host, "", "Cam", "Never")).attrib
    assert tools.enableblob(rconn, redis_host, "CCD1", "Cam", "Sometimes") is None


def test_clearredis_keeps_logs(rconn, redis_host):
    rconn.sadd("indi_devices", "Tel")
    rconn.hset("indi_attributes:EQ:Tel", "name", "EQ")
    rconn.lpush("indi_logdata:devices", '2026 ["Tel"]')
    rconn.set("other_key", "x")
    tools.clearredis(rconn, redis_host)
    assert rconn.keys("*") and set(rconn.keys("*")) == {b"indi_logdata:devices", b"other_key"}


def test_number_helpers_are_exported():
    assert tools.number_to_float("-0:30") == -0.5
    assert tools.format_number(12.5, "%010.6m") == "  12:30:00"


def test_property_elements_sorts_labels_naturally(rconn, redis_host):
    for name, label in (("a", "Item 10"), ("b", "Item 2"), ("c", "Item 1")):
        rconn.sadd("indi_elements:P:D", name)
        rconn.hset(f"indi_elementattributes:{name}:P:D", mapping={"name": name, "label": label})
    assert [d["label"] for d in tools.property_elements(rconn, redis_host, "P", "D")] == [
        "Item 1",
        "Item 2",
        "Item 10",
    ]


def test_a_request_nobody_hears_is_logged_as_not_delivered(rconn, redis_host, published, caplog):
    """Redis keeps no pub/sub message: a request published while no bridge is subscribed (one
    restarting, or Redis failing over) is gone, and says so; one that a bridge hears says nothing."""
    caplog.set_level("WARNING", logger="indiredis.tools")
    tools.newnumbervector(rconn, redis_host, "COORD", "Mount", {"RA": "1"})
    assert published(1) and not caplog.records
    nobody = indiredis.redis_server(
        host=redis_host.host, port=redis_host.port, to_indi_channel="nobody_hears"
    )
    tools.newnumbervector(rconn, nobody, "COORD", "Mount", {"RA": "2"})
    [record] = caplog.records
    assert "not delivered" in record.getMessage() and "nobody_hears" in record.getMessage()
