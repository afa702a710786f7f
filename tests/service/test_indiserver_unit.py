"""``indiredis-indiserver`` (the ExecStart of indiredis-indiserver.service): it checks indiserver.ini,
makes the FIFO and becomes Debian's indiserver with the configured drivers; the units that use
indiserver order themselves after it without requiring it."""

from __future__ import annotations

import configparser
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.support.daemons import BIN
from tests.support.inditools import wait_listed
from tests.support.servers import free_port, port_open, wait_for

ROOT = Path(__file__).parents[2]


def helper(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "indiredis-indiserver"), *args], capture_output=True, text=True, timeout=30
    )


def test_the_shipped_example_is_valid_and_gives_indiservers_command_line(tmp_path):
    assert helper("--config", str(ROOT / "etc/indiserver.ini"), "--check").returncode == 0
    (tmp_path / "common.ini").write_text("[indi]\nport = 7700\n")
    (tmp_path / "indiserver.ini").write_text((ROOT / "etc/indiserver.ini").read_text())
    printed = helper("--config", str(tmp_path / "indiserver.ini"), "--print").stdout.split()
    assert printed[0].endswith("/indiserver")
    assert printed[1:] == [
        "-p",
        "7700",  # the port the bridges connect to, from common.ini
        "-r",
        "10",
        "-m",
        "128",
        "-f",
        "/run/indiredis/indiserver.fifo",
        "indi_simulator_telescope",
        "indi_simulator_ccd",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[service]\n", "drivers is required"),
        ("[service]\ndrivers = indi_simulator_ccd\ncolour = red\n", "unknown key 'colour'"),
        ("[indi]\nport = 1\n", "unknown section [indi]"),
        ("[service]\ndrivers = indi_no_such_driver\n", "indi_no_such_driver not found on PATH"),
        ("[service]\ndrivers = indi_simulator_ccd\nport = many\n", "port = 'many' is not a whole number"),
        ("[service]\ndrivers = indi_simulator_ccd\nfifo = relative\n", "is not an absolute path"),
    ],
)
def test_a_mistake_is_one_line_and_status_78(text, expected, tmp_path):
    (tmp_path / "indiserver.ini").write_text(text)
    result = helper("--config", str(tmp_path / "indiserver.ini"))
    assert result.returncode == 78 and expected in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_it_becomes_indiserver_and_drivers_start_through_the_fifo(tmp_path):
    port, fifo = free_port(), tmp_path / "indiserver.fifo"
    (tmp_path / "indiserver.ini").write_text(
        f"[service]\ndrivers = indi_simulator_telescope indi_simulator_ccd\nport = {port}\nfifo = {fifo}\n"
    )
    with open(tmp_path / "indiserver.log", "wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "indiredis-indiserver"), "--config", str(tmp_path / "indiserver.ini")],
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: port_open(port), timeout=20, what="indiserver listening")
        assert Path(f"/proc/{proc.pid}/exe").resolve().name == "indiserver"  # exec'd: systemd watches it
        assert fifo.is_fifo() and oct(fifo.stat().st_mode & 0o777) == "0o600"
        wait_listed(
            port, "CCD Simulator.CONNECTION.*", "CCD Simulator.CONNECTION.CONNECT", "the drivers' devices"
        )
        with open(fifo, "w") as control:
            control.write("start indi_simulator_focus\n")
        wait_listed(
            port, "Focuser Simulator.CONNECTION.*", "Focuser Simulator.CONNECTION", "a FIFO-started driver"
        )
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)


def test_the_indiserver_bridges_order_themselves_after_it_without_requiring_it():
    for name in ("inditoredis", "inditomqtt", "inditoredis@"):
        unit = configparser.ConfigParser(strict=False, interpolation=None)
        unit.read(ROOT / "systemd" / f"indiredis-{name}.service")
        assert "indiredis-indiserver.service" in unit["Unit"]["After"].split()
        for requirement in ("Wants", "Requires", "BindsTo", "Requisite"):
            assert "indiredis-indiserver" not in unit["Unit"].get(requirement, "")
    unit = (ROOT / "systemd" / "indiredis-indiserver.service").read_text()
    for line in (
        "User=indiredis",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "RuntimeDirectory=indiredis",
    ):
        assert f"\n{line}\n" in unit
    assert "ExecStart=/usr/bin/indiredis-indiserver --config /etc/indiredis/indiserver.ini" in unit
