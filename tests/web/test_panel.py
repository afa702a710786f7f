"""The control panel's server side: complete sets, one-click switches, the driver's order, the heartbeat,
previews, file lists and blob retention (a fake device behind a real inditoredis and Redis)."""

from __future__ import annotations

import base64
import io
import json
import re
import time
from functools import partial

import pytest

import indiredis
from indiredis.bridges import make_inditoredis
from indiredis.store.retention import Retention, element_files
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import IndiServerProcess, wait_for
from tests.support.webworld import sent_after

SNOOP = (
    b'<defTextVector device="Mount" name="SNOOP" group="Site" state="Idle" perm="rw">'
    b'<defText name="GPS">GPS Simulator</defText><defText name="DOME">Dome Simulator</defText>'
    b"</defTextVector>"
)


def members(sent: bytes, tag: str) -> dict[str, str]:
    """name -> value of the one<tag> members in the newest request."""
    last = sent[sent.rindex(b"<new") :].decode()
    return dict(re.findall(rf'<one{tag} name="([^"]*)">\s*([^<]*?)\s*</one{tag}>', last))


def test_a_number_set_is_complete_with_unchanged_members_at_their_raw_values(world):
    client, fake, _ = world
    mark = len(fake.received)
    assert client.post("/set/Mount/COORD", {"DEC": "-5.5"})[0] == "200 OK"
    assert members(sent_after(fake, mark), "Number") == {"RA": "12.5", "DEC": "-5.5"}
    mark = len(fake.received)  # a field still showing the displayed value is unchanged: its raw value goes
    assert client.post("/set/Mount/COORD", {"RA": "12:30:00", "DEC": "7"})[0] == "200 OK"
    assert members(sent_after(fake, mark), "Number") == {"RA": "12.5", "DEC": "7"}
    status, _, body = client.post("/set/Mount/COORD", {"DEC": "95"})
    assert status.startswith("400") and b"outside" in body  # min/max checked on the server too


def test_a_text_set_keeps_its_other_fields(world, rconn, redis_host):
    client, fake, _ = world
    fake.send(SNOOP)
    wait_for(lambda: b"SNOOP" in client.get("/api/device/Mount")[2], what="the text vector defined")
    mark = len(fake.received)
    assert client.post("/set/Mount/SNOOP", {"DOME": "Dome 2"})[0] == "200 OK"
    assert members(sent_after(fake, mark), "Text") == {"GPS": "GPS Simulator", "DOME": "Dome 2"}


def test_one_click_switches_follow_their_rule(world):
    client, fake, _ = world

    def press(name: str, element: str) -> dict[str, str]:
        mark = len(fake.received)
        assert client.post(f"/set/Mount/{name}", {"press": element})[0] == "200 OK"
        return members(sent_after(fake, mark), "Switch")

    assert press("TRACK", "OFF") == {"ON": "Off", "OFF": "On"}  # OneOfMany: the pressed one, complete
    assert press("PARK", "PARK") == {"PARK": "On", "UNPARK": "Off"}  # AtMostOne
    fake.send(
        b'<setSwitchVector device="Mount" name="PARK" state="Ok"><oneSwitch name="PARK">On</oneSwitch>'
        b"</setSwitchVector>"
    )
    wait_for(lambda: b'"PARK":"On"' in client.get("/api/device/Mount")[2], what="parked")
    assert press("PARK", "PARK") == {"PARK": "Off", "UNPARK": "Off"}  # pressing the On one: none
    assert press("OPTIONS", "B") == {"A": "Off", "B": "On"}  # AnyOfMany toggles one, keeps the others
    assert client.post("/set/Mount/TRACK", {"press": "NOPE"})[0].startswith("400")
    page = client.get("/device/Mount")[2].decode()
    assert "(none)" not in page and "<button type='submit' class='switch' name='press' value='PARK'" in page


def test_the_page_follows_the_drivers_order(world, rconn):
    client, fake, _ = world
    assert [m.decode() for m in rconn.zrange("indi_propertyorder:Mount", 0, -1)] == [
        "COORD", "TRACK", "OPTIONS", "PARK", "SITE", "INFO", "STATUS", "UPLOAD", "IMAGE",
    ]  # fmt: skip
    assert rconn.lrange("indi_elementorder:COORD:Mount", 0, -1) == [b"RA", b"DEC"]
    page = client.get("/device/Mount")[2].decode()
    tabs = re.findall(r"role='tab' data-group='([^']*)'", page)
    assert tabs == ["Motion", "Options", "Site", "Files"]
    assert page.index("data-element='RA'") < page.index("data-element='DEC'")
    state = json.loads(client.get("/api/device/Mount")[2])
    assert state["order"][:2] == ["COORD", "TRACK"]
    fake.send(b'<delProperty device="Mount" name="TRACK"/>')
    wait_for(lambda: rconn.zscore("indi_propertyorder:Mount", "TRACK") is None, what="order forgotten")
    assert not rconn.exists("indi_elementorder:TRACK:Mount")
    fake.send(
        b'<defSwitchVector device="Mount" name="TRACK" group="Motion" state="Ok" perm="rw" rule="OneOfMany">'
        b'<defSwitch name="OFF">On</defSwitch><defSwitch name="ON">Off</defSwitch></defSwitchVector>'
    )
    wait_for(lambda: rconn.zscore("indi_propertyorder:Mount", "TRACK") is not None, what="defined again")
    assert [m.decode() for m in rconn.zrange("indi_propertyorder:Mount", -1, -1)] == ["TRACK"]
    assert rconn.lrange("indi_elementorder:TRACK:Mount", 0, -1) == [b"OFF", b"ON"]


def test_numbers_show_their_format_limits_and_step(world):
    client, fake, _ = world
    fake.send(
        b'<defNumberVector device="Mount" name="FRAME" group="Main" state="Idle" perm="rw">'
        b'<defNumber name="WIDTH" format="%.f" min="1" max="4096" step="1">1280</defNumber></defNumberVector>'
    )
    wait_for(lambda: b"FRAME" in client.get("/api/device/Mount")[2], what="the frame defined")
    page = client.get("/device/Mount")[2].decode()
    block = page[page.index("data-prop='FRAME'") :]
    assert "value='1280'" in block and ">1280</output>" in block and "1 … 4096, step 1" in block
    assert "data-min='1.0' data-max='4096.0'" in block


def test_the_bridge_keeps_a_heartbeat_and_the_page_says_when_data_is_stale(redis_host, rconn):
    from indiredis.indiwsgi import make_wsgi_app
    from tests.support.webworld import Client

    with IndiServerProcess(["indi_simulator_telescope"]) as indiserver:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", indiserver.port), redis_host)
        with run_bridge(bridge):
            beat = json.loads(wait_for(lambda: rconn.get("indi_heartbeat"), what="the heartbeat"))
            wait_for(lambda: bridge.ready, what="bridge connected")
            beat = json.loads(rconn.get("indi_heartbeat"))
            assert beat["bridge"] == "inditoredis" and {link["what"] for link in beat["links"]} == {
                "indiserver",
                "Redis",
            }
            assert 0 < rconn.ttl("indi_heartbeat") <= 5
            app = make_wsgi_app(redis_host)
            client = Client(app)

            def status() -> dict:
                return json.loads(client.get("/api/devices")[2])["status"]

            wait_for(lambda: status()["ok"], what="the live status")
            indiserver.kill()
            wait_for(lambda: not status()["ok"], what="the stale status")
            assert "indiserver is down" in " ".join(status()["problems"])
            app.close()
    wait_for(lambda: not rconn.exists("indi_heartbeat"), what="the heartbeat expired with the bridge")
    assert "No bridge" in " ".join(status()["problems"])


def test_the_banner_follows_the_heartbeat():
    from indiredis.indiwsgi.live import bridge_status

    def link(what: str, connected: bool, partial: bool = False, text: str = "") -> dict:
        return {"what": what, "connected": connected, "partial": partial, "text": text}

    assert bridge_status(None)["ok"] is False  # no bridge, or it stopped 5 s ago
    assert bridge_status(b"garbage")["ok"] is False
    live = json.dumps({"links": [link("indiserver", True), link("Redis", True)]}).encode()
    assert bridge_status(live) == {"ok": True, "problems": []}
    drivers = json.dumps(
        {"links": [link("drivers", True, True, "indi_simulator_ccd exited"), link("Redis", True)]}
    )
    assert bridge_status(drivers.encode())["problems"] == ["drivers: indi_simulator_ccd exited."]
    down = json.dumps({"links": [link("indiserver", False, text="connection refused"), link("Redis", True)]})
    assert "indiserver is down (connection refused)" in bridge_status(down.encode())["problems"][0]


def fits_bytes(width: int, height: int) -> bytes:
    import numpy as np
    from astropy.io import fits

    data = (np.random.default_rng(1).poisson(1000, (height, width))).astype(np.uint16)
    data[height // 2 - 5 : height // 2 + 5, width // 3] = 60000  # a star
    out = io.BytesIO()
    fits.PrimaryHDU(data).writeto(out)  # uint16: stored as int16 with BZERO 32768
    return out.getvalue()


def test_a_received_fits_gets_a_preview_a_file_list_and_a_delete(world):
    from PIL import Image

    client, fake, blobs = world
    frame = fits_bytes(2400, 1600)
    for count in (1, 2):
        fake.send(
            b'<setBLOBVector device="Mount" name="IMAGE" state="Ok" timestamp="2026-01-01T00:00:0'
            + str(count).encode()
            + f'"><oneBLOB name="IMG" size="{len(frame)}" format=".fits">'.encode()
            + base64.b64encode(frame)
            + b"</oneBLOB></setBLOBVector>"
        )
        wait_for(lambda: len(list(blobs.glob("Mount_IMAGE_IMG_*"))) == count, what="the file written")  # noqa: B023

    def files() -> list[str]:
        return json.loads(client.get("/api/device/Mount")[2])["properties"]["IMAGE"]["files"]["IMG"]

    wait_for(lambda: len(files()) == 2, what="both files listed")
    newest = files()[0]
    status, headers, body = client.get(f"/preview/{newest}")
    assert status == "200 OK" and headers["Content-Type"] == "image/jpeg"
    image = Image.open(io.BytesIO(body))
    assert max(image.size) <= 1024 and image.size[0] > image.size[1]
    (blobs / "broken.fits").write_bytes(b"SIMPLE  = nonsense")
    assert client.get("/preview/broken.fits")[0].startswith("415")
    assert client.get("/preview/..%2fsecret.fits")[0].startswith("404")
    status, _, _ = client.request("POST", f"/delete/{files()[1]}", b"", "", {"X-CSRF-Token": client.token()})
    assert status == "200 OK"
    wait_for(lambda: files() == [newest], what="the deleted file gone from the list")


def test_retention_keeps_the_newest_files_per_element(tmp_path):
    for index in range(5):
        path = tmp_path / f"Cam_IMAGE_IMG_2026-01-0{index}.fits"
        path.write_bytes(b"x" * 1000)
        stamp = time.time() - 100 + index
        import os

        os.utime(path, (stamp, stamp))
    (tmp_path / "Cam_IMAGE_OTHER_2026.fits").write_bytes(b"other element")
    assert Retention().prune(tmp_path, "Cam", "IMAGE", "IMG") == []
    assert len(Retention(keep_files=3).prune(tmp_path, "Cam", "IMAGE", "IMG")) == 2
    assert len(Retention(keep_bytes=1500).prune(tmp_path, "Cam", "IMAGE", "IMG")) == 2
    assert [f.name for f in element_files(tmp_path, "Cam", "IMAGE", "IMG")] == [
        "Cam_IMAGE_IMG_2026-01-04.fits"
    ]
    assert (tmp_path / "Cam_IMAGE_OTHER_2026.fits").exists()
    assert len(Retention(keep_bytes=1).prune(tmp_path, "Cam", "IMAGE", "IMG")) == 0  # the newest stays


def test_the_bridge_applies_the_retention(redis_host, rconn, tmp_path):
    from tests.support.webworld import DEFS

    def stored_as(ending: str) -> bool:
        path = rconn.hget("indi_elementattributes:IMG:IMAGE:Mount", "filepath") or b""
        return path.decode().endswith(ending)

    blobs = tmp_path / "blobs"
    with FakeIndiServer() as fake:
        bridge = make_inditoredis(
            indiredis.indi_server("127.0.0.1", fake.port),
            redis_host,
            blob_folder=str(blobs),
            blob_retention=Retention(keep_files=2),
        )
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and fake.clients, what="bridge connected")
            fake.send(DEFS)
            for index in range(4):
                fake.send(
                    f'<setBLOBVector device="Mount" name="IMAGE" timestamp="2026-01-01T00:00:0{index}">'
                    f'<oneBLOB name="IMG" size="5" format=".bin">{base64.b64encode(b"frame").decode()}'
                    "</oneBLOB></setBLOBVector>".encode()
                )
                wait_for(partial(stored_as, f"0{index}.bin"), what="the BLOB stored")
            wait_for(lambda: len(list(blobs.iterdir())) == 2, what="two files kept")
    assert sorted(p.name[-6:] for p in blobs.iterdir()) == ["02.bin", "03.bin"]


@pytest.mark.parametrize("path", ["/static/theme.js", "/static/live.js"])
def test_scripts_are_served(world, path):
    client, _, _ = world
    status, headers, body = client.get(path)
    assert status == "200 OK" and headers["Content-Type"].startswith("text/javascript") and body
