"""The web client at WSGI level: every page, every kind of set request, escaping, BLOB download
confinement."""

from __future__ import annotations

import base64
import gzip
import json
import os
from urllib.parse import quote

import pytest

from tests.support.servers import wait_for
from tests.support.webworld import Client, sent_after


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
    assert headers["ETag"]

    def current_copy_is_not_sent_again() -> bool:
        # the bridge's heartbeat or a late definition may change the state between two requests:
        # ask again until one pair of requests sees the same state
        etag = client.get("/api/device/Mount")[1]["ETag"]
        return client.get("/api/device/Mount", **{"If-None-Match": etag})[0].startswith("304")

    wait_for(current_copy_is_not_sent_again, what="304 Not Modified for the current ETag")
    fake.send(
        b'<setNumberVector device="Mount" name="COORD" state="Busy"><oneNumber name="DEC">10</oneNumber>'
        b"</setNumberVector>"
    )
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
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        )
    for name, (filename, data) in files.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
            f"Content-Type: application/octet-stream\r\n\r\n".encode()
            + data
            + b"\r\n"
        )
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


@pytest.mark.parametrize("compress", [False, True])
def test_blob_upload_with_optional_gzip(world, compress):
    client, fake, _ = world
    data = bytes(range(256)) * 40
    fields = {"gzip": "on"} if compress else {}
    body, content_type = _multipart(fields, {"FILE": ("frame.fits", data)})
    mark = len(fake.received)
    status, _, answer = client.request(
        "POST",
        "/set/Mount/UPLOAD",
        body,
        content_type,
        {"X-Requested-With": "fetch", "X-CSRF-Token": client.token()},
    )
    assert status == "200 OK", answer
    wait_for(lambda: b"</newBLOBVector>" in bytes(fake.received[mark:]), what="the whole BLOB")
    received = bytes(fake.received[mark:])
    sent = received[received.index(b"<newBLOBVector") :]  # enableBLOB messages of the bridge may come first
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
    for attempt in [
        "../secret.txt",
        quote("../secret.txt", safe=""),
        "%2e%2e%2fsecret.txt",
        "escape.fits",
        quote(str(secret), safe=""),
        ".hidden",
        "..",
        "%00image.fits",
    ]:
        status = client.get(f"/blobs/{attempt}")[0]
        assert status[:3] in ("403", "404"), (attempt, status)


def test_received_blobs_link_live_and_download(world):
    client, fake, blobs = world
    page = client.get("/device/Mount")[2].decode()
    assert "data-blob='/blobs/'" in page  # the IMAGE cell is a link, empty until a BLOB arrives
    fake.send(
        b'<setBLOBVector device="Mount" name="IMAGE" state="Ok"><oneBLOB name="IMG" size="6" format=".fits">'
        + base64.b64encode(b"SIMPLE")
        + b"</oneBLOB></setBLOBVector>"
    )

    def received() -> str:  # the element's value (the file list can show the file a moment before)
        return str(json.loads(client.get("/api/device/Mount")[2])["properties"]["IMAGE"]["elements"]["IMG"])

    file = wait_for(received, what="the file name in the live JSON")
    assert (blobs / file).is_file()
    page = client.get("/device/Mount")[2].decode()
    assert f"href='/blobs/{quote(file, safe='')}'" in page
    assert client.get(f"/blobs/{quote(file, safe='')}")[2] == b"SIMPLE"


def test_messages_shown_and_escaped(world):
    client, fake, _ = world
    fake.send(
        b'<message device="Mount" message="slewing &lt;fast&gt;"/><message message="system &lt;i&gt;up"/>'
    )
    wait_for(lambda: b"slewing" in client.get("/api/device/Mount")[2], what="the device message")
    assert "slewing &lt;fast&gt;" in client.get("/device/Mount")[2].decode()
    wait_for(
        lambda: b"system &lt;i&gt;up" in client.get("/")[2], what="the system message on the device list"
    )


def test_device_names_with_slash_and_percent(world):
    client, fake, _ = world
    fake.send(
        b'<defNumberVector device="Cam/1 50%41" name="GAIN" group="Main" state="Idle" perm="rw">'
        b'<defNumber name="G" format="%.1f" min="0" max="9" step="1">2</defNumber></defNumberVector>'
    )
    device = quote("Cam/1 50%41", safe="")
    wait_for(lambda: device.encode() in client.get("/")[2], what="the device listed")
    status, _, body = client.get(f"/device/{device}")
    assert status == "200 OK" and b"2.0" in body and f"action='/set/{device}/GAIN'".encode() in body
    mark = len(fake.received)
    assert client.post(f"/set/{device}/GAIN", {"G": "3"})[0] == "200 OK"
    assert b'device="Cam/1 50%41"' in sent_after(fake, mark)
    assert client.get(f"/api/device/{device}")[0] == "200 OK"


def test_plain_path_info_is_not_decoded_twice(world):
    client, _, _ = world
    box = {}
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/device/Mount%2e", "SCRIPT_NAME": ""}
    client.app(environ, lambda status, headers: box.setdefault("status", status))
    assert box["status"].startswith("404")  # a server without REQUEST_URI: PATH_INFO taken as decoded
    box.clear()
    environ["PATH_INFO"] = "/device/Mount"
    client.app(environ, lambda status, headers: box.setdefault("status", status))
    assert box["status"] == "200 OK"


def test_mounted_under_a_url(new_app, world, redis_host):
    _, _, blobs = world
    client = Client(new_app(redis_host, blobs, "/indi/"))
    assert client.get("/")[0].startswith("404")
    status, _, body = client.get("/indi/")
    assert status == "200 OK" and b"href='/indi/device/Mount'" in body
    page = client.get("/indi/device/Mount")[2].decode()
    assert "action='/indi/set/Mount/COORD'" in page and "data-api='/indi/api/device/Mount'" in page
    assert "src='/indi/static/live.js'" in page
    assert client.post("/indi/set/Mount/SITE", {"NAME": "x"})[0] == "200 OK"
    # a WSGI dispatcher mounting the app: SCRIPT_NAME prefixes every link
    box = {}
    environ = {
        "REQUEST_METHOD": "GET",
        "SCRIPT_NAME": "/obs",
        "PATH_INFO": "/indi/",
        "REQUEST_URI": "/obs/indi/",
    }
    body = b"".join(client.app(environ, lambda status, headers: box.setdefault("status", status)))
    assert box["status"] == "200 OK" and b"href='/obs/indi/device/Mount'" in body
