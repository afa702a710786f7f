"""Each MQTT client side its own BLOB policy: a port client leaving never stops the frames that go to Redis.

indiserver (Debian's CCD simulator) -> inditomqtt -> one stock mosquitto -> both mqtttoredis (blob folder)
and mqtttoport.  A classic client of the port asks for BLOBs, takes a frame and leaves: mqtttoport then
asks for ``Never`` on its own behalf, and the frames after still reach mqtttoredis's blob folder (they
stopped there, before each client side had its own policy at the instrument side).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditomqtt, make_mqtttoport, make_mqtttoredis
from tests.support.bridgethread import run_bridge
from tests.support.inditools import RawClient, setprop, wait_until_listed
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, port_open, wait_for
from tests.support.subscriber import Subscriber

CCD = "CCD Simulator"
FRAME = rb"<setBLOBVector[^>]*CCD1.*?</setBLOBVector>"


@pytest.fixture
def ccd_server() -> Iterator[IndiServerProcess]:
    with IndiServerProcess(["indi_simulator_ccd"]) as server:
        yield server


def frames_published(subscriber: Subscriber) -> int:
    """setBLOBVector CCD1 publications on from_indi (each a frame mqtttoredis stored)."""
    return sum(bool(re.search(rb"<setBLOBVector[^>]*CCD1", data)) for _, data in list(subscriber.items))


def stored_frame(rconn: Any, server: Any, folder: Path) -> Path:
    """The file the store's CCD1 element points at: in the blob folder, a FITS file."""
    path = Path(tools.elements_dict(rconn, server, "CCD1", "CCD1", CCD)["filepath"])
    assert path.parent == folder, path
    assert path.read_bytes()[:6] == b"SIMPLE"
    return path


def test_a_port_client_leaving_does_not_stop_frames_to_redis(
    ccd_server: IndiServerProcess,
    mosquitto_proc: MosquittoProcess,
    redis_host: Any,
    rconn: Any,
    tmp_path: Path,
) -> None:
    mqtt_host = indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)
    folder = tmp_path / "blobs"
    port = free_port()
    instrument = make_inditomqtt(
        indiredis.indi_server("127.0.0.1", ccd_server.port), "observatory", mqtt_host
    )
    store = make_mqtttoredis("store", mqtt_host, redis_host, blob_folder=str(folder))
    portside = make_mqtttoport("kstars", mqtt_host, port=port, host="127.0.0.1")
    demand = portside.client_side.demand
    subscriber = Subscriber(rconn, redis_host.from_indi_channel)
    try:
        with run_bridge(instrument), run_bridge(store), run_bridge(portside):
            wait_for(lambda: port_open(port), what="mqtttoport listening")
            wait_until_listed(ccd_server.port, f"{CCD}.CONNECTION.CONNECT")
            assert setprop(ccd_server.port, f"{CCD}.CONNECTION.CONNECT=On").returncode == 0
            # mqtttoredis asks for BLOBs (enableBLOB Also on its own topic) once CCD1 is defined
            wait_for(lambda: "CCD1" in tools.properties(rconn, redis_host, CCD), timeout=30, what="CCD1")
            wait_until_listed(port, f"{CCD}.CCD_EXPOSURE.CCD_EXPOSURE_VALUE")

            with RawClient(port) as client:  # KStars: wants BLOBs, takes a frame, leaves
                client.send("<getProperties version='1.7'/>")
                client.read_until(rb"<defBLOBVector[^>]*CCD Simulator[^>]*CCD1")
                client.send(f"<enableBLOB device='{CCD}'>Also</enableBLOB>")
                client.send(
                    f"<newNumberVector device='{CCD}' name='CCD_EXPOSURE'>"
                    "<oneNumber name='CCD_EXPOSURE_VALUE'>0.1</oneNumber></newNumberVector>"
                )
                client.read_until(FRAME, timeout=60)
            wait_for(lambda: frames_published(subscriber) >= 1, timeout=30, what="mqtttoredis's frame too")
            first = stored_frame(rconn, redis_host, folder)
            # the port asks the instrument side for Never now that its last BLOB client left
            wait_for(lambda: not demand.wants(CCD, "CCD1"), what="mqtttoport to give up BLOBs")

            for number in range(2, 5):  # the next frames still reach mqtttoredis
                # asked through Redis: indi_setprop would make the CCD define everything again for it, and
                # mqtttoredis would ask for BLOBs again on seeing CCD1 defined (the old way round)
                tools.newnumbervector(rconn, redis_host, "CCD_EXPOSURE", CCD, {"CCD_EXPOSURE_VALUE": "0.1"})
                wait_for(
                    lambda number=number: frames_published(subscriber) >= number,
                    timeout=30,
                    what=f"frame {number} in mqtttoredis",
                )
            assert stored_frame(rconn, redis_host, folder).stat().st_size == first.stat().st_size
            # the instrument side keeps each client side's choice apart, and asks indiserver for the union
            policies = instrument.client_side.client_blobs.policies
            assert set(policies) == {"store"}, policies
    finally:
        subscriber.close()
