"""The Driver Manager device under driverstoredis, end to end: Debian's simulators run by the bridge,
a real Redis, requests through ``indiredis.tools`` as a GUI sends them."""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from indiredis import tools
from indiredis.bridges import make_driverstoredis
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE as MANAGER
from indiredis.links.indi_side.manager import GiveUp
from tests.e2e import test_driverstoredis as driverstoredis_tests
from tests.support.bridgethread import run_bridge
from tests.support.indiclient import connect_device
from tests.support.servers import wait_for

# the simulators under driverstoredis, with Redis: test_driverstoredis's fixtures
bridge, drivers_host = driverstoredis_tests.bridge, driverstoredis_tests.drivers_host
CCD, TELESCOPE = driverstoredis_tests.CCD, driverstoredis_tests.TELESCOPE
DRIVERS = driverstoredis_tests.DRIVERS


@pytest.fixture
def server(drivers_host):
    """The key space the bridge writes."""
    return drivers_host


class FromIndi:
    """What the bridge publishes on the from_indi channel, parsed, in order."""

    def __init__(self, rconn, server) -> None:
        self.pubsub = rconn.pubsub()
        self.pubsub.subscribe(server.from_indi_channel)
        self.seen: list[ET.Element] = []

    def drain(self) -> list[ET.Element]:
        while (item := self.pubsub.get_message(timeout=0.05)) is not None:
            if item["type"] == "message":
                self.seen.append(ET.fromstring(item["data"]))
        return self.seen

    def states(self, name: str) -> list[str]:
        """The states of the manager's ``name`` vector, in the order they were published."""
        return [
            e.get("state", "")
            for e in self.drain()
            if e.tag.startswith("set") and e.get("device") == MANAGER and e.get("name") == name
        ]

    def deleted(self, device: str) -> bool:
        return any(e.tag == "delProperty" and e.get("device") == device for e in self.drain())

    def close(self) -> None:
        self.pubsub.close()


def light(rconn, server, driver: str) -> str:
    return tools.attributes_dict(rconn, server, f"{driver}_STATUS", MANAGER).get("state", "")


def control(rconn, server, driver: str, switch: str) -> None:
    tools.newswitchvector(rconn, server, f"{driver}_CONTROL", MANAGER, {switch: "On"})


def info(rconn, server, driver: str, element: str) -> str:
    return tools.elements_dict(rconn, server, element, f"{driver}_INFO", MANAGER).get("value", "")


def test_the_driver_manager_device_appears_in_redis(bridge, rconn, server):
    wait_for(lambda: MANAGER in tools.devices(rconn, server), what="the Driver Manager device")
    properties = set(tools.properties(rconn, server, MANAGER))
    for driver in DRIVERS:
        assert {f"{driver}_{p}" for p in ("STATUS", "INFO", "RESTARTS", "STDERR", "CONTROL")} <= properties
        wait_for(lambda d=driver: light(rconn, server, d) == "Ok", what=f"{driver} shown running")
    ccd = bridge.indi_side.router.owner(CCD) or bridge.indi_side.drivers[1]
    wait_for(lambda: info(rconn, server, "indi_simulator_ccd", "PID") == str(ccd.process.pid), what="its pid")
    assert tools.attributes_dict(rconn, server, "indi_simulator_ccd_CONTROL", MANAGER)["perm"] == "rw"


def test_restarting_the_ccd_goes_busy_then_ok_while_the_telescope_stays_connected(bridge, rconn, server):
    wait_for(lambda: {TELESCOPE, CCD, MANAGER} <= set(tools.devices(rconn, server)), what="devices")
    connect_device(rconn, server, TELESCOPE)
    pool = bridge.indi_side
    telescope, ccd = pool.router.owner(TELESCOPE), pool.router.owner(CCD)
    telescope_pid, ccd_pid = telescope.process.pid, ccd.process.pid
    channel = FromIndi(rconn, server)
    try:
        channel.drain()
        control(rconn, server, "indi_simulator_ccd", "RESTART")
        wait_for(
            lambda: "Ok" in channel.states("indi_simulator_ccd_STATUS")[1:],
            timeout=20,
            what="the CCD's light Busy, then Ok",
        )
        states = channel.states("indi_simulator_ccd_STATUS")
        assert states[0] == "Busy" and states.index("Ok") > 0, states
        assert channel.states("indi_simulator_ccd_CONTROL")[0] == "Busy"
        wait_for(lambda: "Ok" in channel.states("indi_simulator_ccd_CONTROL"), what="the switches Ok")
        wait_for(lambda: "CONNECTION" in tools.properties(rconn, server, CCD), timeout=20, what="CCD back")
        assert ccd.process.pid != ccd_pid
        # the telescope: same process, never deleted, connected throughout
        assert telescope.process.pid == telescope_pid and not channel.deleted(TELESCOPE)
        assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", TELESCOPE)["value"] == "On"
        restarts = tools.elements_dict(rconn, server, "COUNT", "indi_simulator_ccd_RESTARTS", MANAGER)
        assert float(restarts["value"]) == 1
    finally:
        channel.close()


def test_stopping_a_driver_deletes_its_devices_and_starting_it_brings_them_back(bridge, rconn, server):
    wait_for(lambda: {TELESCOPE, CCD, MANAGER} <= set(tools.devices(rconn, server)), what="devices")
    telescope_pid = bridge.indi_side.router.owner(TELESCOPE).process.pid
    control(rconn, server, "indi_simulator_ccd", "STOP")
    wait_for(lambda: CCD not in tools.devices(rconn, server), what="the CCD's device deleted")
    wait_for(lambda: light(rconn, server, "indi_simulator_ccd") == "Idle", what="the CCD shown stopped")
    assert info(rconn, server, "indi_simulator_ccd", "STATE") == "stopped"
    assert "stopped at a client's request" in (tools.last_message(rconn, server) or "")
    control(rconn, server, "indi_simulator_ccd", "START")
    wait_for(lambda: CCD in tools.devices(rconn, server), timeout=20, what="the CCD back")
    wait_for(lambda: light(rconn, server, "indi_simulator_ccd") == "Ok", what="the CCD shown running")
    assert bridge.indi_side.router.owner(TELESCOPE).process.pid == telescope_pid


def our_commands() -> list[str]:
    """The command lines of this test process's children (the bridge runs in one of its threads, so
    the drivers it starts are among them, as ``/proc/<pid>/task/<tid>/children`` lists them per
    thread); not every process on the machine: a test of another file, on another worker, may run the
    same driver at the same time."""
    commands = []
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            commands.append(cmdline.replace(b"\0", b" ").decode(errors="replace"))
    return commands


def test_a_request_naming_an_unconfigured_executable_is_refused_and_nothing_runs(bridge, rconn, server):
    wait_for(lambda: MANAGER in tools.devices(rconn, server), what="the Driver Manager device")
    pids = bridge.indi_side.child_pids()
    control(rconn, server, "indi_simulator_focus", "START")  # installed, but not configured
    wait_for(
        lambda: (
            "refused newSwitchVector 'indi_simulator_focus_CONTROL'"
            in (tools.last_message(rconn, server, MANAGER) or "")
        ),
        what="the refusal",
    )
    tools.newtextvector(rconn, server, "DRIVERS", MANAGER, {"START": "indi_simulator_focus"})
    wait_for(
        lambda: "refused newTextVector 'DRIVERS'" in (tools.last_message(rconn, server, MANAGER) or ""),
        what="the second refusal",
    )
    assert bridge.indi_side.child_pids() == pids
    assert not [c for c in our_commands() if "indi_simulator_focus" in c]
    assert "Focuser Simulator" not in tools.devices(rconn, server)


def test_a_driver_that_keeps_crashing_is_left_failed_until_a_client_starts_it(server, rconn, tmp_path):
    crashing = tmp_path / "indi_crashing_driver"
    crashing.write_text("#!/bin/sh\necho 'cannot open the port' >&2\nexit 2\n")
    crashing.chmod(0o755)
    bridge = make_driverstoredis(["indi_simulator_telescope", str(crashing)], server, give_up=GiveUp(2, 60))
    with run_bridge(bridge):
        wait_for(lambda: light(rconn, server, "indi_crashing_driver") == "Alert", timeout=20, what="failed")
        assert "indi_crashing_driver crashed 2 times in 60 s: given up" in (
            tools.last_message(rconn, server) or ""
        )
        assert info(rconn, server, "indi_crashing_driver", "LAST_EXIT") == "exit status 2"
        stderr = tools.elements_dict(rconn, server, "LINES", "indi_crashing_driver_STDERR", MANAGER)
        assert "cannot open the port" in stderr["value"]
        assert TELESCOPE in tools.devices(rconn, server)
        crashed = bridge.indi_side.drivers[1]
        control(rconn, server, "indi_crashing_driver", "START")  # a client tries it again: it runs again
        supervisor = bridge.indi_side.supervisor
        wait_for(
            lambda: supervisor.crashes(crashed) == 2 and crashed.restarts >= 3, timeout=20, what="ran again"
        )
        wait_for(lambda: light(rconn, server, "indi_crashing_driver") == "Alert", what="failed again")
