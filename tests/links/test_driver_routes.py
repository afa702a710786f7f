"""The driver pool's routing decisions and reload plan, without processes or I/O."""

from __future__ import annotations

import pytest

from indiredis.links.indi_side.process import DriverProcess
from indiredis.links.indi_side.reload import plan_drivers
from indiredis.links.indi_side.routes import BlobRoute, DriverRoutes, Route
from indiredis.protocol.parser import parse_message

MANAGER = "Driver Manager"


def msg(xml: str):
    return parse_message(xml.encode())


DEF_MOUNT = msg(
    '<defTextVector device="Mount" name="A" perm="ro" state="Idle"><defText name="x"/></defTextVector>'
)
SET_CAM = msg('<setNumberVector device="Cam" name="T"><oneNumber name="t">1</oneNumber></setNumberVector>')
BLOB_CAM = msg(
    '<setBLOBVector device="Cam" name="IMG"><oneBLOB name="I" size="1" format=".f">YQ==</oneBLOB>'
    "</setBLOBVector>"
)
NEW_MOUNT = msg(
    '<newNumberVector device="Mount" name="N"><oneNumber name="n">2</oneNumber></newNumberVector>'
)
GET_ALL = msg("<getProperties/>")


def routes(*, forward: bool = False) -> DriverRoutes[str]:
    return DriverRoutes(MANAGER, forward_snoop_requests=forward)


def test_a_drivers_message_is_routed_by_its_class():
    pool = routes()
    assert pool.from_driver("cam", msg('<pingRequest uid="1"/>'), ["mount", "cam"]) == Route(ping_reply=True)
    assert pool.from_driver("cam", msg('<pingReply uid="1"/>'), ["mount", "cam"]) == Route(unexpected=True)
    assert pool.from_driver("cam", NEW_MOUNT, ["mount", "cam"]) == Route(unexpected=True)
    assert pool.from_driver("cam", msg('<enableBLOB device="Mount">Also</enableBLOB>'), ["cam"]) == Route()
    assert pool.from_driver("mount", DEF_MOUNT, ["mount", "cam"]) == Route(clients=True)


def test_a_bare_get_properties_goes_to_the_manager_and_to_every_driver():
    pool = routes()
    assert pool.from_client(GET_ALL, ["mount", "cam"]) == Route(("mount", "cam"), definitions=True)
    own = msg(f'<getProperties device="{MANAGER}"/>')
    assert pool.from_client(own, ["mount", "cam"]) == Route(definitions=True)
    request = msg(
        f'<newSwitchVector device="{MANAGER}" name="cam_CONTROL"><oneSwitch name="STOP">On</oneSwitch>'
        "</newSwitchVector>"
    )
    assert pool.from_client(request, ["mount", "cam"]) == Route(manager=True)


def test_client_requests_go_to_the_owner_or_are_dropped():
    pool = routes()
    assert pool.from_client(NEW_MOUNT, ["mount", "cam"]) == Route(unowned=True)
    assert pool.from_driver("mount", DEF_MOUNT, ["mount", "cam"]) == Route(clients=True)
    assert pool.from_client(NEW_MOUNT, ["mount", "cam"]) == Route(("mount",))
    assert pool.from_client(msg('<getProperties device="Mount"/>'), ["mount", "cam"]) == Route(("mount",))


def test_snoop_requests_and_snooped_traffic():
    pool = routes(forward=True)
    ask = msg('<getProperties device="Cam"/>')
    assert pool.from_driver("mount", ask, ["mount", "cam"]) == Route(("cam",), clients=True)  # no owner yet
    assert pool.from_driver("cam", SET_CAM, ["mount", "cam"]) == Route(("mount",), clients=True)
    assert pool.from_client(SET_CAM, ["mount", "cam"]) == Route()  # owned here: not snoop data from elsewhere
    elsewhere = msg(
        '<setNumberVector device="Far" name="T"><oneNumber name="t">1</oneNumber></setNumberVector>'
    )
    pool.from_driver("cam", msg('<getProperties device="Far"/>'), ["mount", "cam"])
    assert pool.from_client(elsewhere, ["mount", "cam"]) == Route(("cam",))
    assert pool.from_driver("cam", msg('<pingRequest uid="7"/>'), ["cam"]) == Route(ping_reply=True)
    assert pool.from_driver("cam", NEW_MOUNT, ["cam"]) == Route(unexpected=True)
    manager = msg(f'<getProperties device="{MANAGER}"/>')
    assert pool.from_driver("cam", manager, ["mount", "cam"]) == Route(definitions=True)


def test_where_a_drivers_blob_goes():
    pool = routes()
    pool.from_driver("cam", SET_CAM, ["cam"])
    assert pool.blob_route(BLOB_CAM) is BlobRoute.WITHHELD  # the client side's default is Never
    pool.from_client(msg('<enableBLOB device="Cam">Also</enableBLOB>'), ["cam"])
    assert pool.blob_route(BLOB_CAM) is BlobRoute.STREAMED
    pool.from_driver("mount", msg('<getProperties device="Cam"/>'), ["mount", "cam"])
    pool.from_driver("mount", msg('<enableBLOB device="Cam">Also</enableBLOB>'), ["mount", "cam"])
    assert pool.blob_route(BLOB_CAM) is BlobRoute.WHOLE  # a snooping driver wants it as sent


def test_a_reload_keeps_matching_drivers_and_names_new_ones_apart():
    ccd, mount = DriverProcess("indi_simulator_ccd"), DriverProcess("indi_simulator_telescope")
    plan = plan_drivers([ccd, mount], ["indi_simulator_ccd", "indi_simulator_ccd", "/opt/indi_focus"])
    assert plan.drivers[0] is ccd and plan.removed == [mount]
    assert [d.key for d in plan.added] == ["indi_simulator_ccd_2", "indi_focus"]
    assert plan.drivers[1:] == plan.added
    with pytest.raises(ValueError, match="at least one driver"):
        plan_drivers([ccd], [])
