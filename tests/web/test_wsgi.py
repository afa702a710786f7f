"""The web client at WSGI level: every page, every kind of set request, escaping, BLOB download confinement."""

from __future__ import annotations

import gzip
import io
import base64
import os
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import redis

from bridgethread import run_bridge
from fakeindi import FakeIndiServer
from servers import wait_for

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from indiredis.indiwsgi import make_wsgi_app

DEFS = b"""<defNumberVector device="Mount" name="COORD" label="Coordinates" group="Motion" state="Idle" perm="rw">
<defNumber name="RA" label="RA" format="%010.6m" min="0" max="24" step="0">12.5</defNumber>
<defNumber name="DEC" label="Dec" format="%.2f" min="-90" max="90" step="0">45</defNumber></defNumberVector>
<defSwitchVector device="Mount" name="TRACK" group="Motion" state="Ok" perm="rw" rule="OneOfMany">
<defSwitch name="ON">On</defSwitch><defSwitch name="OFF">Off</defSwitch></defSwitchVector>
<defSwitchVector device="Mount" name="OPTIONS" group="Options" state="Ok" perm="rw" rule="AnyOfMany">
<defSwitch name="A">Off</defSwitch><defSwitch name="B">Off</defSwitch></defSwitchVector>
<defSwitchVector device="Mount" name="PARK" group="Options" state="Ok" perm="rw" rule="AtMostOne">
<defSwitch name="PARK">Off</defSwitch><defSwitch name="UNPARK">Off</defSwitch></defSwitchVector>
<defTextVector device="Mount" name="SITE" group="Site" state="Idle" perm="rw"><defText name="NAME">home</defText></defTextVector>
<defTextVector device="Mount" name="INFO" group="Site" state="Alert" perm="ro">
<defText name="NOTE" label="&lt;script&gt;alert(1)&lt;/script&gt;">&lt;b&gt;bold&lt;/b&gt;</defText></defTextVector>
<defLightVector device="Mount" name="STATUS" group="Site" state="Busy"><defLight name="L">Ok</defLight></defLightVector>
<defBLOBVector device="Mount" name="UPLOAD" group="Files" state="Idle" perm="wo"><defBLOB name="FILE"/></defBLOBVector>
<defBLOBVector device="Mount" name="IMAGE" group="Files" state="Idle" perm="ro"><defBLOB name="IMG"/></defBLOBVector>
"""


class Client:
    """Calls the WSGI app the way a server would."""

    def __init__(self, app) -> None:
        self.app = app

    def request(self, method: str, path: str, body: bytes = b"", content_type: str = "",
                headers: dict[str, str] | None = None) -> tuple[str, dict[str, str], bytes]:
        environ = {"REQUEST_METHOD": method, "PATH_INFO": path, "wsgi.input": io.BytesIO(body),
                   "CONTENT_LENGTH": str(len(body)), "CONTENT_TYPE": content_type}
        for key, value in (headers or {}).items():
            environ["HTTP_" + key.upper().replace("-", "_")] = value
        box: dict[str, object] = {}

        def start_response(status, response_headers):
            box["status"], box["headers"] = status, dict(response_headers)

        data = b"".join(self.app(environ, start_response))
        return box["status"], box["headers"], data  # type: ignore[return-value]

    def get(self, path: str, **headers: str):
        return self.request("GET", path, headers=headers)

    def post(self, path: str, fields: dict[str, str | list[str]]):
        pairs = [(k, v) for k, values in fields.items() for v in (values if isinstance(values, list) else [values])]
        return self.request("POST", path, urlencode(pairs).encode(), "application/x-www-form-urlencoded",
                            {"X-Requested-With": "fetch"})


@pytest.fixture
def world(redis_host, rconn, tmp_path):
    blobs = tmp_path / "blobs"
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), redis_host, blob_folder=str(blobs))
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and fake.clients, what="bridge connected")
            fake.send(DEFS)
            wait_for(lambda: len(tools.properties(rconn, redis_host, "Mount")) == 9, what="Mount defined")
            wait_for(lambda: fake.received.count(b"</enableBLOB>") == 2, what="the bridge's enableBLOBs")
            yield Client(make_wsgi_app(redis_host, blob_folder=blobs)), fake, blobs


def sent_after(fake, marker: int) -> bytes:
    wait_for(lambda: len(fake.received) > marker, what="a request at the INDI side")
    return bytes(fake.received[marker:])


def test_pages(world):
    client, _, _ = world
    status, _, body = client.get("/")
    assert status == "200 OK" and b"/device/Mount" in body
    status, headers, body = client.get("/device/Mount")
    assert status == "200 OK" and "nosniff" in headers["X-Content-Type-Options"]
    text = body.decode()
    for group in ("Motion", "Options", "Site", "Files"):
        assert f"<h2>{group}</h2>" in text
    assert "12:30:00" in text  # %m formats are sexagesimal
    assert "data-state='Alert'" in text and "data-state='Busy'" in text
    # perm rules: ro and light vectors show no form; wo/rw do
    assert "action='/set/Mount/INFO'" not in text and "action='/set/Mount/STATUS'" not in text
    assert "action='/set/Mount/UPLOAD'" in text and "action='/set/Mount/COORD'" in text
    assert client.get("/device/Nobody")[0].startswith("404")
    assert client.get("/nothing/here")[0].startswith("404")
    status, headers, body = client.get("/static/live.js")
    assert status == "200 OK" and b"indiredisStates" in body


def test_device_strings_are_escaped(world):
    client, _, _ = world
    text = client.get("/device/Mount")[2].decode()
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<b>bold</b>" not in text


def test_live_state_json_with_etag(world, rconn, redis_host):
    client, fake, _ = world
    status, headers, body = client.get("/api/device/Mount")
    assert status == "200 OK" and b'"COORD"' in body and b"12:30:00" in body
    assert client.get("/api/device/Mount", **{"If-None-Match": headers["ETag"]})[0].startswith("304")
    fake.send(b'<setNumberVector device="Mount" name="COORD" state="Busy"><oneNumber name="DEC">10</oneNumber>'
              b'</setNumberVector>')
    wait_for(lambda: b'"10.00"' in client.get("/api/device/Mount")[2], what="the new value in the JSON")
    assert b'"Busy"' in client.get("/api/device/Mount")[2]


def test_set_numbers_including_sexagesimal(world):
    client, fake, _ = world
    mark = len(fake.received)
    status, _, _ = client.post("/set/Mount/COORD", {"RA": "10:30:00", "DEC": "-5.5"})
    assert status == "200 OK"
    sent = sent_after(fake, mark)
    assert b"newNumberVector" in sent and b"10:30:00" in sent and b"-5.5" in sent
    status, _, body = client.post("/set/Mount/COORD", {"RA": "ten"})
    assert status.startswith("400") and b"not a number" in body


def test_set_text(world):
    client, fake, _ = world
    mark = len(fake.received)
    assert client.post("/set/Mount/SITE", {"NAME": "Mauna <Kea>"})[0] == "200 OK"
    assert b"Mauna &lt;Kea&gt;" in sent_after(fake, mark)


def test_switch_rules(world):
    client, fake, _ = world
    mark = len(fake.received)
    assert client.post("/set/Mount/TRACK", {"switch": "OFF"})[0] == "200 OK"
    sent = sent_after(fake, mark)
    assert b'<oneSwitch name="OFF">On</oneSwitch>' in sent and b'<oneSwitch name="ON">Off</oneSwitch>' in sent
    assert client.post("/set/Mount/TRACK", {"switch": ["ON", "OFF"]})[0].startswith("400")  # OneOfMany
    assert client.post("/set/Mount/TRACK", {})[0].startswith("400")
    assert client.post("/set/Mount/PARK", {"switch": ["PARK", "UNPARK"]})[0].startswith("400")  # AtMostOne
    assert client.post("/set/Mount/PARK", {})[0] == "200 OK"  # none is allowed
    assert client.post("/set/Mount/OPTIONS", {"switch": ["A", "B"]})[0] == "200 OK"  # AnyOfMany
    assert client.post("/set/Mount/OPTIONS", {"switch": "C"})[0].startswith("400")


def test_read_only_and_unknown_properties_cannot_be_set(world):
    client, _, _ = world
    assert client.post("/set/Mount/INFO", {"NOTE": "x"})[0].startswith("400")
    assert client.post("/set/Mount/NOPE", {"X": "1"})[0].startswith("400")
    assert client.post("/set/Ghost/NOPE", {"X": "1"})[0].startswith("404")


def _multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    boundary = "testboundary1234"
    parts = []
    for name, value in fields.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode())
    for name, (filename, data) in files.items():
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
                     f"Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("compress", [False, True])
def test_blob_upload_with_optional_gzip(world, compress):
    client, fake, _ = world
    data = bytes(range(256)) * 40
    fields = {"gzip": "on"} if compress else {}
    body, content_type = _multipart(fields, {"FILE": ("frame.fits", data)})
    mark = len(fake.received)
    status, _, answer = client.request("POST", "/set/Mount/UPLOAD", body, content_type, {"X-Requested-With": "fetch"})
    assert status == "200 OK", answer
    wait_for(lambda: b"</newBLOBVector>" in bytes(fake.received[mark:]), what="the whole BLOB")
    received = bytes(fake.received[mark:])
    sent = received[received.index(b"<newBLOBVector"):]  # enableBLOB messages of the bridge may come first
    assert f'size="{len(data)}"'.encode() in sent  # the uncompressed size, as INDI asks
    payload = base64.b64decode(sent.split(b">", 2)[2].split(b"<", 1)[0])
    if compress:
        assert b'format=".fits.gz"' in sent and gzip.decompress(payload) == data
    else:
        assert b'format=".fits"' in sent and payload == data


def test_blob_download_stays_in_the_blob_folder(world, tmp_path):
    client, _, blobs = world
    blobs.mkdir(exist_ok=True)
    (blobs / "image.fits").write_bytes(b"SIMPLE")
    secret = tmp_path / "secret.txt"
    secret.write_text("do not serve")
    os.symlink(secret, blobs / "escape.fits")
    status, headers, body = client.get("/blobs/image.fits")
    assert status == "200 OK" and body == b"SIMPLE" and "attachment" in headers["Content-Disposition"]
    for attempt in ["../secret.txt", quote("../secret.txt", safe=""), "%2e%2e%2fsecret.txt", "escape.fits",
                    quote(str(secret), safe=""), ".hidden", "..", "%00image.fits"]:
        status = client.get(f"/blobs/{attempt}")[0]
        assert status[:3] in ("403", "404"), (attempt, status)
