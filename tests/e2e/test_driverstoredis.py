"""driverstoredis end to end: Debian's real simulator drivers run by the bridge itself -> real Redis."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstoredis, make_inditoredis
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE
from tests.support.bridgethread import run_bridge
from tests.support.fitsheader import fits_header, header_degrees
from tests.support.indiclient import connect_device
from tests.support.servers import wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
DRIVERS = ["indi_simulator_telescope", "indi_simulator_ccd"]


@pytest.fixture
def drivers_host(redis_proc):
    return indiredis.redis_server(
        host="127.0.0.1",
        port=redis_proc.port,
        keyprefix="drv_",
        to_indi_channel="drv_to",
        from_indi_channel="drv_from",
    )


@pytest.fixture
def bridge(drivers_host, tmp_path):
    bridge = make_driverstoredis(DRIVERS, drivers_host, blob_folder=str(tmp_path / "blobs"))
    with run_bridge(bridge):
        wait_for(lambda: bridge.ready, what="drivers running and Redis connected")
        yield bridge


def key_space(rconn, server) -> dict[str, dict[str, set[str]]]:
    """device -> property -> element names (nothing that moves); the drivers' devices only (not the pool's
    own Driver Manager, which indiserver does not have)."""
    return {
        device: {
            name: set(tools.elements(rconn, server, name, device))
            for name in tools.properties(rconn, server, device)
        }
        for device in tools.devices(rconn, server)
        if device != DEFAULT_MANAGER_DEVICE
    }


def test_same_key_space_as_inditoredis_behind_indiserver(bridge, simulators, drivers_host, redis_proc, rconn):
    indiserver_host = indiredis.redis_server(
        host="127.0.0.1",
        port=redis_proc.port,
        keyprefix="srv_",
        to_indi_channel="srv_to",
        from_indi_channel="srv_from",
    )
    with run_bridge(make_inditoredis(indiredis.indi_server("127.0.0.1", simulators.port), indiserver_host)):
        wait_for(
            lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, indiserver_host)), what="inditoredis devices"
        )
        wait_for(
            lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, drivers_host)), what="driverstoredis devices"
        )
        try:
            wait_for(
                lambda: key_space(rconn, drivers_host) == key_space(rconn, indiserver_host),
                timeout=15,
                what="the two key spaces to agree",
            )
        except TimeoutError:
            assert key_space(rconn, drivers_host) == key_space(rconn, indiserver_host)
    assert sum(len(p) for p in key_space(rconn, drivers_host).values()) > 20


def coordinate(rconn, server, element: str) -> float:
    return float(
        tools.elements_dict(rconn, server, element, "EQUATORIAL_EOD_COORD", TELESCOPE)["float_number"]
    )


def current_dec(rconn, server) -> float:
    """The telescope's DEC once it has reported a position (it defines 0, 0, then reports its home, the
    pole)."""
    return wait_for(lambda: coordinate(rconn, server, "DEC") or None, what="the telescope's first position")


def slew(rconn, server, dec: float) -> None:
    """Slew the telescope (through indiredis.tools) to ``dec``, keeping its RA: a short slew."""
    ra = coordinate(rconn, server, "RA")
    tools.newnumbervector(
        rconn, server, "EQUATORIAL_EOD_COORD", TELESCOPE, {"RA": f"{ra:.6f}", "DEC": str(dec)}
    )
    wait_for(
        lambda: abs(coordinate(rconn, server, "DEC") - dec) < 0.01,
        timeout=60,
        interval=0.2,
        what=f"the telescope to reach DEC {dec}",
    )


def expose(rconn, server, previous: str = "") -> Path:
    tools.newnumbervector(rconn, server, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
    element = wait_for(
        lambda: (
            (tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD).get("filepath", previous) != previous)
            and tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)
        ),
        timeout=60,
        what="a FITS image",
    )
    path = Path(element["filepath"])
    assert path.stat().st_size == int(element["size"])
    assert path.read_bytes()[:6] == b"SIMPLE"
    return path


def test_ccd_snoops_the_telescope_and_exposures_land_as_fits(bridge, rconn, drivers_host, tmp_path):
    server = drivers_host
    connect_device(rconn, server, TELESCOPE)
    connect_device(rconn, server, CCD)
    wait_for(lambda: "EQUATORIAL_EOD_COORD" in tools.properties(rconn, server, TELESCOPE), what="coordinates")
    wait_for(
        lambda: tools.attributes_dict(rconn, server, "CCD1", CCD).get("blobs") == "Enabled", what="BLOBs on"
    )
    # the CCD asked the bridge for the telescope's coordinates, as it does under indiserver
    pool = bridge.indi_side
    ccd_driver = pool.router.owner(CCD)
    assert any(
        s.device == TELESCOPE and s.name == "EQUATORIAL_EOD_COORD" for s in pool.router.snoops[ccd_driver]
    )

    start = current_dec(rconn, server)
    targets = (start - 8, start - 16) if start > 0 else (start + 8, start + 16)
    slew(rconn, server, targets[0])
    first = expose(rconn, server)
    assert first.parent == (tmp_path / "blobs").resolve() and first.suffix == ".fits"
    dec_first = header_degrees(fits_header(first)["OBJCTDEC"])

    slew(rconn, server, targets[1])
    second = expose(rconn, server, str(first))
    dec_second = header_degrees(fits_header(second)["OBJCTDEC"])
    # the CCD writes the snooped telescope position (J2000, the slews were JNow) into its FITS header
    assert abs(dec_first - targets[0]) < 0.5 and abs(dec_second - targets[1]) < 0.5, (
        targets,
        dec_first,
        dec_second,
    )


def test_killed_driver_is_restarted_and_nothing_else_stops(bridge, rconn, drivers_host):
    server = drivers_host
    wait_for(lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, server)), what="devices")
    connect_device(rconn, server, TELESCOPE)
    pool = bridge.indi_side
    ccd = pool.router.owner(CCD)
    old_pid = ccd.process.pid
    os.kill(old_pid, signal.SIGKILL)
    wait_for(
        lambda: any(
            "indi_simulator_ccd killed by SIGKILL" in str(entry)
            for entry in tools.logs(rconn, server, 50, "messages") or []
        ),
        what="the death reported in Redis",
    )
    wait_for(lambda: ccd.running and ccd.process.pid != old_pid, timeout=15, what="the CCD driver restarted")
    wait_for(
        lambda: (
            "CCD_EXPOSURE" in tools.properties(rconn, server, CCD)
            or "CONNECTION" in tools.properties(rconn, server, CCD)
        ),
        timeout=15,
        what="CCD properties back",
    )
    # the telescope never stopped: still connected, still answering
    assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", TELESCOPE).get("value") == "On"
    wait_for(lambda: "EQUATORIAL_EOD_COORD" in tools.properties(rconn, server, TELESCOPE), what="coordinates")
    start = current_dec(rconn, server)
    slew(rconn, server, start - 4 if start > 0 else start + 4)
    assert bridge.ready


def test_stopping_leaves_no_driver_processes(drivers_host, tmp_path):
    bridge = make_driverstoredis(DRIVERS, drivers_host)
    with run_bridge(bridge):
        wait_for(lambda: bridge.ready, what="ready")
        pids = bridge.indi_side.child_pids()
        assert len(pids) == 2
    for pid in pids:  # reaped: not even a zombie is left
        assert not Path(f"/proc/{pid}").exists(), f"driver {pid} still exists"


def test_drivers_die_with_a_killed_bridge(redis_proc, tmp_path):
    """Even SIGKILL of the bridge (no clean-up possible) leaves no driver running."""
    from tests.support.bridgeprocess import STANDIN, BridgeProcess

    bridge = BridgeProcess(
        "make_driverstoredis",
        {"drivers": [STANDIN], "redis_host": {"host": "127.0.0.1", "port": redis_proc.port}},
        tmp_path,
    ).start()
    try:
        children = wait_for(bridge.children, what="the driver process")
        os.kill(bridge.proc.pid, signal.SIGKILL)
        bridge.proc.wait(10)
        wait_for(
            lambda: (
                not any(
                    Path(f"/proc/{pid}").exists()
                    and "Z" not in Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0]
                    for pid in children
                )
            ),
            what="the driver to be killed too",
        )
    finally:
        bridge.stop()
