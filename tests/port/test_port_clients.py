"""mqtttoport under INDI's own command-line clients, each test run against indiserver as the reference."""

from __future__ import annotations

import logging

import pytest

from tests.support.inditools import setprop, value, wait_until_listed
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
