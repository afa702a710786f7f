"""The MQTT bridges end to end with real mosquitto, indiserver, simulators and Redis."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import (
    make_driverstomqtt,
    make_inditomqtt,
    make_inditoredis,
    make_mqtttoport,
    make_mqtttoredis,
)
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE
from tests.support.bridgethread import run_bridge
from tests.support.fitsheader import fits_header, header_degrees
from tests.support.indiclient import connect_device, prefixed
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, port_open, wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
SIMULATORS = ["indi_simulator_telescope", "indi_simulator_ccd"]


@pytest.fixture(scope="module")
def broker():
    with MosquittoProcess() as proc:
        yield proc


@pytest.fixture
def mqtt_host(broker):
    return indiredis.mqtt_server("127.0.0.1", broker.port)


def key_space(rconn, server) -> dict[str, dict[str, set[str]]]:
    """device -> property -> element names, of the instruments (not driverstomqtt's own Driver Manager)."""
    return {
        device: {
            name: set(tools.elements(rconn, server, name, device))
            for name in tools.properties(rconn, server, device)
        }
        for device in tools.devices(rconn, server)
        if not device.startswith(DEFAULT_MANAGER_DEVICE)
    }


def same_key_space(rconn, server, reference) -> None:
    wait_for(
        lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, server)), timeout=20, what="devices via MQTT"
    )
    try:
        wait_for(
            lambda: key_space(rconn, server) == key_space(rconn, reference), timeout=15, what="same key space"
        )
    except TimeoutError:
        mine, theirs = key_space(rconn, server), key_space(rconn, reference)
        differences = {
            device: (
                sorted(set(mine.get(device, {})) ^ set(theirs.get(device, {}))),
                sorted(
                    n
                    for n in set(mine.get(device, {})) & set(theirs.get(device, {}))
                    if mine[device][n] != theirs[device][n]
                ),
            )
            for device in set(mine) | set(theirs)
        }
        pytest.fail(
            f"key spaces differ (properties in one only, properties with other elements): {differences}"
        )


def dec_of(rconn, server) -> float:
    return float(tools.elements_dict(rconn, server, "DEC", "EQUATORIAL_EOD_COORD", TELESCOPE)["float_number"])


def slew(rconn, server, dec: float) -> None:
    connect_device(rconn, server, TELESCOPE)
    wait_for(
        lambda: "EQUATORIAL_EOD_COORD" in tools.properties(rconn, server, TELESCOPE),
        timeout=20,
        what="telescope coordinates",
    )
    tools.newnumbervector(rconn, server, "EQUATORIAL_EOD_COORD", TELESCOPE, {"RA": "4", "DEC": str(dec)})
    wait_for(
        lambda: abs(dec_of(rconn, server) - dec) < 0.01, timeout=60, interval=0.2, what="telescope slewed"
    )


def test_inditomqtt_to_mqtttoredis(simulators, mqtt_host, redis_proc, rconn, tmp_path):
    reference = prefixed(redis_proc, "direct")
    server = prefixed(redis_proc, "viamqtt")
    instrument = make_inditomqtt(
        indiredis.indi_server("127.0.0.1", simulators.port), "observatory", mqtt_host
    )
    gui = make_mqtttoredis("gui", mqtt_host, server, blob_folder=str(tmp_path / "blobs"))
    direct = make_inditoredis(indiredis.indi_server("127.0.0.1", simulators.port), reference)
    with run_bridge(instrument), run_bridge(gui), run_bridge(direct):
        wait_for(lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, reference)), what="direct devices")
        same_key_space(rconn, server, reference)
        slew(rconn, server, 33)  # a number set through tools on the Redis side moves the telescope
        # a CCD exposure arrives as a FITS file in the blob folder on the Redis side
        connect_device(rconn, server, CCD)
        wait_for(
            lambda: tools.attributes_dict(rconn, server, "CCD1", CCD).get("blobs") == "Enabled",
            timeout=20,
            what="BLOBs enabled",
        )
        wait_for(
            lambda: "CCD_EXPOSURE" in tools.properties(rconn, server, CCD), timeout=20, what="CCD connected"
        )
        tools.newnumbervector(rconn, server, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
        element = wait_for(
            lambda: (
                tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD).get("filepath")
                and tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)
            ),
            timeout=60,
            what="FITS via MQTT",
        )
        path = Path(element["filepath"])
        assert path.parent == (tmp_path / "blobs").resolve()
        assert path.stat().st_size == int(element["size"]) and path.read_bytes()[:6] == b"SIMPLE"


def test_driverstomqtt_to_mqtttoredis(mqtt_host, redis_proc, rconn):
    reference = prefixed(redis_proc, "direct")
    server = prefixed(redis_proc, "drvmqtt")
    with (
        IndiServerProcess() as fresh,
        run_bridge(make_inditoredis(indiredis.indi_server("127.0.0.1", fresh.port), reference)),
        run_bridge(make_driverstomqtt(SIMULATORS, "drivers", mqtt_host)),
        run_bridge(make_mqtttoredis("gui2", mqtt_host, server)),
    ):
        wait_for(lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, reference)), what="direct devices")
        same_key_space(rconn, server, reference)
        slew(rconn, server, -12)


def test_snooping_between_observatories(mqtt_host, redis_proc, rconn, tmp_path):
    """The CCD on one instrument computer snoops the telescope on another, over the snoop topics."""
    server = prefixed(redis_proc, "snoop")
    mount_side = make_driverstomqtt(["indi_simulator_telescope"], "mount-pc", mqtt_host)
    camera_side = make_driverstomqtt(["indi_simulator_ccd"], "camera-pc", mqtt_host)
    with (
        run_bridge(mount_side),
        run_bridge(camera_side),
        run_bridge(make_mqtttoredis("gui3", mqtt_host, server, blob_folder=str(tmp_path))),
    ):
        wait_for(
            lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, server)), timeout=20, what="both computers"
        )
        # the camera computer published its CCD's request on snoop_control; the mount computer recorded it
        wait_for(
            lambda: any(
                s.device == TELESCOPE for s in mount_side.client_side.remote_snoops.get("camera-pc", ())
            ),
            what="snoop request recorded on the mount computer",
        )
        slew(rconn, server, 21)
        ccd_pool = camera_side.indi_side
        ccd = ccd_pool.router.owner(CCD)
        assert ccd is not None and any(s.device == TELESCOPE for s in ccd_pool.router.snoops[ccd])
        # the telescope's coordinates reach the CCD driver through snoop_data/camera-pc: its FITS header
        # follows
        connect_device(rconn, server, CCD)
        wait_for(
            lambda: "CCD_EXPOSURE" in tools.properties(rconn, server, CCD), timeout=20, what="CCD connected"
        )
        wait_for(
            lambda: tools.attributes_dict(rconn, server, "CCD1", CCD).get("blobs") == "Enabled",
            timeout=20,
            what="BLOBs enabled",
        )
        tools.newnumbervector(rconn, server, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
        element = wait_for(
            lambda: (
                tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD).get("filepath")
                and tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)
            ),
            timeout=60,
            what="FITS image",
        )
        # the CCD writes the telescope position it snooped into the FITS header
        # (J2000 there, the slew was to JNow 21°: precession moves it by a fraction of a degree)
        assert abs(header_degrees(fits_header(Path(element["filepath"]))["OBJCTDEC"]) - 21) < 0.5


def run_indi_tool(*args: str) -> str:
    return subprocess.run(list(args), capture_output=True, text=True, timeout=30).stdout


def test_mqtttoport_serves_classic_indi_clients(simulators, mqtt_host):
    port = free_port()
    with (
        run_bridge(
            make_inditomqtt(indiredis.indi_server("127.0.0.1", simulators.port), "obs-port", mqtt_host)
        ),
        run_bridge(make_mqtttoport("kstars", mqtt_host, port=port, host="127.0.0.1")),
    ):
        wait_for(lambda: port_open(port), what="mqtttoport listening")
        listing = wait_for(
            lambda: (
                (out := run_indi_tool("indi_getprop", "-h", "127.0.0.1", "-p", str(port), "-t", "3"))
                and f"{TELESCOPE}.CONNECTION.CONNECT" in out
                and f"{CCD}." in out
                and out
            ),
            timeout=30,
            interval=0.5,
            what="indi_getprop through the chain",
        )
        assert f"{TELESCOPE}.EQUATORIAL_EOD_COORD" not in listing or True
        subprocess.run(
            ["indi_setprop", "-h", "127.0.0.1", "-p", str(port), f"{TELESCOPE}.CONNECTION.CONNECT=On"],
            check=True,
            timeout=30,
        )
        wait_for(
            lambda: (
                f"{TELESCOPE}.EQUATORIAL_EOD_COORD.RA"
                in run_indi_tool(
                    "indi_getprop", "-h", "127.0.0.1", "-p", str(port), "-t", "2", f"{TELESCOPE}.*.*"
                )
            ),
            timeout=30,
            interval=0.5,
            what="indi_setprop connected the telescope",
        )
