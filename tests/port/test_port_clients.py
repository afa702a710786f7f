"""mqtttoport under INDI's own command-line clients, each test run against indiserver as the reference."""

from __future__ import annotations

import logging

import pytest

from tests.support.inditools import RawClient, listing_names, setprop, value, wait_until_listed
from tests.support.servers import IndiServerProcess, wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
TOGGLES = 50


def assert_no_asyncio_noise(caplog: pytest.LogCaptureFixture) -> None:
    """Clients that simply left leave no asyncio warning or traceback in the log."""
    noise = [
        r.getMessage()
        for r in caplog.records
        if r.name.startswith("asyncio") or r.exc_info or "socket.send() raised" in r.getMessage()
    ]
    assert noise == []


@pytest.mark.timeout(900)
def test_setprop_toggles_are_never_lost(
    target: int, simulators: IndiServerProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """indi_setprop sends its command and leaves while definitions still arrive: no command is lost."""
    caplog.set_level(logging.INFO)
    wait_until_listed(target, f"{TELESCOPE}.CONNECTION.CONNECT")
    lost = []
    for toggle in range(TOGGLES):
        wanted = "Off" if toggle % 2 else "On"
        element = "DISCONNECT" if toggle % 2 else "CONNECT"
        done = setprop(target, f"{TELESCOPE}.CONNECTION.{element}=On")
        assert done.returncode == 0, done.stderr
        try:  # the simulator's own state, read straight from indiserver
            wait_for(
                lambda wanted=wanted: value(simulators.port, f"{TELESCOPE}.CONNECTION.CONNECT") == wanted,
                timeout=8,
                interval=0.1,
                what=f"toggle {toggle} to {wanted}",
            )
        except TimeoutError:
            lost.append(toggle)
    print(f"toggles lost: {len(lost)} of {TOGGLES}: {lost}")
    assert lost == []
    assert_no_asyncio_noise(caplog)


def test_enableblob_only_of_one_client_changes_nothing_for_another(
    target: int, caplog: pytest.LogCaptureFixture
) -> None:
    """indiserver keeps BLOB policy per client: one client's ``Only`` hides nothing from the others."""
    caplog.set_level(logging.INFO)
    before = wait_until_listed(target, f"{TELESCOPE}.CONNECTION.CONNECT", f"{CCD}.CONNECTION.CONNECT")
    with RawClient(target) as only, RawClient(target) as other:
        only.send("<getProperties version='1.7'/>")
        other.send("<getProperties version='1.7'/>")
        only.read_until(rb"<defSwitchVector[^>]*CCD Simulator")
        only.send(f"<enableBLOB device='{CCD}'>Only</enableBLOB>")
        only.send(f"<enableBLOB device='{TELESCOPE}'>Only</enableBLOB>")
        mark = len(other.received)
        assert listing_names(target) == before  # while it is connected
        other.send("<getProperties version='1.7'/>")  # the other connected client is still answered
        other.read_until(rb"<defSwitchVector[^>]*CCD Simulator[^>]*CONNECTION", start=mark)
        other.read_until(rb"<defSwitchVector[^>]*Telescope Simulator[^>]*CONNECTION", start=mark)
    assert listing_names(target) == before  # and after it left
    assert_no_asyncio_noise(caplog)
