"""inditoredis end to end: real indiserver + simulators -> inditoredis -> real Redis."""

from __future__ import annotations

from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.indiclient import connect_device
from tests.support.servers import wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"


@pytest.fixture
def bridge(simulators, redis_host, tmp_path):
    indi = indiredis.indi_server(host="127.0.0.1", port=simulators.port)
    bridge = make_inditoredis(indi, redis_host, blob_folder=str(tmp_path / "blobs"))
    with run_bridge(bridge):
        yield bridge


def test_key_space_holds_every_property(bridge, rconn, redis_host):
    wait_for(lambda: {TELESCOPE, CCD} <= set(tools.devices(rconn, redis_host)), what="both simulators")
    wait_for(lambda: bridge.ready, what="bridge ready")
    for device in (TELESCOPE, CCD):
        names = wait_for(lambda device=device: tools.properties(rconn, redis_host, device), what="properties")
        assert "CONNECTION" in names
        for name in names:
            attrs = tools.attributes_dict(rconn, redis_host, name, device)
            assert attrs["device"] == device and attrs["name"] == name
            assert attrs["vector"] in (
                "TextVector",
                "NumberVector",
                "SwitchVector",
                "LightVector",
                "BLOBVector",
            )
            assert attrs["state"] in ("Idle", "Ok", "Busy", "Alert")
            element_names = tools.elements(rconn, redis_host, name, device)
            assert element_names, f"{device}.{name} has no elements"
            for element in element_names:
                assert tools.elements_dict(rconn, redis_host, element, name, device)["name"] == element
    # history logs exist for the devices set
    entries = tools.logs(rconn, redis_host, 5, "devices")
    assert entries and set(entries[0][1]) >= {TELESCOPE, CCD}


def test_slew_moves_the_simulated_telescope(bridge, rconn, redis_host):
    wait_for(lambda: TELESCOPE in tools.devices(rconn, redis_host), what="telescope")
    connect_device(rconn, redis_host, TELESCOPE)
    wait_for(
        lambda: "EQUATORIAL_EOD_COORD" in tools.properties(rconn, redis_host, TELESCOPE), what="coordinates"
    )
    ra = float(
        tools.elements_dict(rconn, redis_host, "RA", "EQUATORIAL_EOD_COORD", TELESCOPE)["float_number"]
    )
    target_ra = (ra + 0.25) % 24
    sent = tools.newnumbervector(
        rconn, redis_host, "EQUATORIAL_EOD_COORD", TELESCOPE, {"RA": f"{target_ra:.6f}", "DEC": "45:00:00"}
    )
    assert sent and "newNumberVector" in sent

    def arrived() -> bool:
        dec = tools.elements_dict(rconn, redis_host, "DEC", "EQUATORIAL_EOD_COORD", TELESCOPE)
        ra_now = tools.elements_dict(rconn, redis_host, "RA", "EQUATORIAL_EOD_COORD", TELESCOPE)
        return (
            abs(float(dec["float_number"]) - 45.0) < 0.01
            and abs(float(ra_now["float_number"]) - target_ra) < 0.01
        )

    wait_for(arrived, timeout=60, interval=0.2, what="telescope to reach the target")
    dec = tools.elements_dict(rconn, redis_host, "DEC", "EQUATORIAL_EOD_COORD", TELESCOPE)
    assert dec["formatted_number"].strip().startswith("45:00")
    history = tools.logs(rconn, redis_host, 50, "elementattributes", "DEC", "EQUATORIAL_EOD_COORD", TELESCOPE)
    assert len(history) > 1  # the slew was logged as it moved


def test_ccd_exposure_lands_in_blob_folder(bridge, rconn, redis_host, tmp_path):
    wait_for(lambda: CCD in tools.devices(rconn, redis_host), what="CCD")
    connect_device(rconn, redis_host, CCD)
    wait_for(lambda: "CCD_EXPOSURE" in tools.properties(rconn, redis_host, CCD), what="exposure property")
    wait_for(
        lambda: tools.attributes_dict(rconn, redis_host, "CCD1", CCD).get("blobs") == "Enabled",
        what="BLOBs enabled",
    )
    tools.newnumbervector(rconn, redis_host, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
    element = wait_for(
        lambda: (
            tools.elements_dict(rconn, redis_host, "CCD1", "CCD1", CCD).get("filepath")
            and tools.elements_dict(rconn, redis_host, "CCD1", "CCD1", CCD)
        ),
        timeout=60,
        what="a FITS image",
    )
    path = Path(element["filepath"])
    assert path.parent == (tmp_path / "blobs").resolve()
    assert path.suffix == ".fits"
    assert path.stat().st_size == int(element["size"])
    assert path.read_bytes()[:6] == b"SIMPLE"
    assert element["format"].startswith(".fits")
