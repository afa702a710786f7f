"""A driver that snoops its own device gets its own traffic, as under indiserver (issue 17).

The CCD simulator is its own filter wheel: its ACTIVE_FILTER names its own device, and it learns the
filter it writes into its FITS header (``FILTER``) only by snooping itself.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstoredis, make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.fitsheader import fits_header
from tests.support.indiclient import connect_device, prefixed
from tests.support.servers import IndiServerProcess, wait_for

CCD = "CCD Simulator"


def filter_in_fits(rconn, server) -> str:
    """Connect the CCD, expose once, and return the FITS header's FILTER ('' when absent)."""
    connect_device(rconn, server, CCD)
    wait_for(
        lambda: tools.attributes_dict(rconn, server, "CCD1", CCD).get("blobs") == "Enabled",
        timeout=20,
        what="BLOBs enabled",
    )
    wait_for(lambda: "CCD_EXPOSURE" in tools.properties(rconn, server, CCD), timeout=20, what="CCD_EXPOSURE")
    tools.newnumbervector(rconn, server, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
    element = wait_for(
        lambda: tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD).get("filepath"),
        timeout=60,
        what="a FITS image",
    )
    return fits_header(Path(element))["FILTER"] if "FILTER" in fits_header(Path(element)) else ""


@pytest.mark.parametrize("instrument_side", ["indiserver", "driverstoredis"])
def test_the_ccd_writes_its_own_filter_into_its_fits(instrument_side, redis_proc, rconn, tmp_path):
    server = prefixed(redis_proc, instrument_side)
    blobs = str(tmp_path / "blobs")
    if instrument_side == "indiserver":  # the reference
        with IndiServerProcess(["indi_simulator_ccd"]) as indi:
            with run_bridge(
                make_inditoredis(indiredis.indi_server("127.0.0.1", indi.port), server, blob_folder=blobs)
            ):
                found = filter_in_fits(rconn, server)
    else:
        bridge = make_driverstoredis(["indi_simulator_ccd"], server, blob_folder=blobs)
        with run_bridge(bridge):
            found = filter_in_fits(rconn, server)
            pool = bridge.indi_side
            ccd = pool.router.owner(CCD)
            assert ccd is not None and any(
                s.device == CCD for s in pool.router.snoops[ccd]
            )  # it snoops itself
    assert found == "Red"
