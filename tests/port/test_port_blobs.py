"""BLOBs through mqtttoport as from indiserver: frames after restarts, FITS files byte for byte."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

import indiredis
from indiredis.bridges import make_driverstomqtt, make_inditomqtt, make_mqtttoport
from indiredis.protocol.routing import BlobDemand
from tests.port.conftest import PortChain
from tests.support.bridgethread import run_bridge
from tests.support.inditools import HOST, RawClient, setprop, wait_until_listed
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, wait_for

CCD = "CCD Simulator"
FRAME = rb"<setBLOBVector[^>]*CCD1.*?</setBLOBVector>"


class RestartingIndiServer(IndiServerProcess):
    """indiserver that restarts a driver that died (as deployed; the fixtures' indiserver does not)."""

    def command(self) -> list[str]:
        command = list(super().command())
        command[command.index("-r") + 1] = "5"
        return command

    def driver_pid(self, executable: str) -> int:
        assert self.proc is not None
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                    cmdline = (entry / "cmdline").read_bytes()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid and executable.encode() in cmdline:
                    return int(entry.name)
        raise LookupError(f"{executable} is not running under indiserver")


def ccd_ready_for_frames(client: RawClient, mark: int) -> None:
    """After ``mark``: wait for the CCD's definitions, connect it, wait until it can expose."""
    client.read_until(rb"<defSwitchVector[^>]*CCD Simulator[^>]*CONNECTION", start=mark)
    client.send(
        f"<newSwitchVector device='{CCD}' name='CONNECTION'><oneSwitch name='CONNECT'>On</oneSwitch>"
        "</newSwitchVector>"
    )
    client.read_until(rb"<defNumberVector[^>]*CCD Simulator[^>]*CCD_EXPOSURE", start=mark)
    client.read_until(rb"<defBLOBVector[^>]*CCD Simulator[^>]*CCD1", start=mark)


def frame(client: RawClient, mark: int) -> None:
    """Expose and wait for the frame (received after ``mark``)."""
    client.send(
        f"<newNumberVector device='{CCD}' name='CCD_EXPOSURE'>"
        "<oneNumber name='CCD_EXPOSURE_VALUE'>0.5</oneNumber></newNumberVector>"
    )
    client.read_until(FRAME, start=mark, timeout=60)


def frames_before_and_after(port: int, restart: Callable[[], None], told_after_restart: bytes = b"") -> None:
    """A client enables BLOBs once and gets a frame; after ``restart`` (and, if given, a message matching
    the pattern ``told_after_restart``) it gets one again without asking."""
    with RawClient(port) as client:
        client.send("<getProperties version='1.7'/>")
        ccd_ready_for_frames(client, 0)
        client.send(f"<enableBLOB device='{CCD}'>Also</enableBLOB>")
        frame(client, 0)
        mark = len(client.received)
        restart()
        if told_after_restart:
            client.read_until(told_after_restart, start=mark, timeout=60)
        ccd_ready_for_frames(client, mark)
        frame(client, mark)


def test_frames_still_arrive_after_the_ccd_driver_restarts_under_indiserver() -> None:
    """The reference: indiserver keeps a client's BLOB choice across a driver's restart."""
    with RestartingIndiServer(["indi_simulator_ccd"]) as server:
        frames_before_and_after(
            server.port, lambda: os.kill(server.driver_pid("indi_simulator_ccd"), signal.SIGKILL)
        )


def test_frames_still_arrive_after_the_instrument_bridge_restarts(
    port_chain: PortChain, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    frames_before_and_after(port_chain.port, port_chain.restart_instrument_bridge)
    assert not [r for r in caplog.records if r.name.startswith("asyncio") or r.exc_info]


@pytest.fixture
def connected_ccd(port_chain: PortChain) -> Iterator[PortChain]:
    indiserver = port_chain.indiserver.port
    wait_until_listed(indiserver, f"{CCD}.CONNECTION.CONNECT")
    assert setprop(indiserver, f"{CCD}.CONNECTION.CONNECT=On").returncode == 0
    wait_until_listed(port_chain.port, f"{CCD}.CCD_EXPOSURE.CCD_EXPOSURE_VALUE")
    yield port_chain


def same_fits_from_getprop(reference_port: int, port: int, expose: Callable[[], None], folder: Path) -> bytes:
    """One exposure, two indi_getprop waiting for it: from the reference indiserver and from ``port``;
    the FITS files they write must be the same, byte for byte; returns it."""
    runs = {}
    for name, server in (("indiserver", reference_port), ("port", port)):
        (folder / name).mkdir()
        with open(folder / name / "stderr", "w") as stderr:
            runs[name] = subprocess.Popen(
                ["indi_getprop", "-v", "-h", HOST, "-p", str(server), "-t", "60", f"{CCD}.CCD1.CCD1"],
                cwd=folder / name,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
    try:
        for name in runs:
            wait_for(
                lambda name=name: "sending enableBLOB" in (folder / name / "stderr").read_text(),
                timeout=30,
                what=f"indi_getprop via {name} to enable BLOBs",
            )
        expose()
        for name, run in runs.items():
            assert run.wait(90) == 0, (folder / name / "stderr").read_text()
    finally:
        for run in runs.values():
            if run.poll() is None:
                run.kill()
                run.wait()
    reference = (folder / "indiserver" / f"{CCD}.CCD1.CCD1.fits").read_bytes()
    through_port = (folder / "port" / f"{CCD}.CCD1.CCD1.fits").read_bytes()
    assert reference[:6] == b"SIMPLE" and len(reference) % 2880 == 0
    assert len(through_port) == len(reference) and through_port == reference
    return reference


def expose_through(chain_port: int, demand: BlobDemand) -> Callable[[], None]:
    """Expose through the port once it asks for CCD1 upstream, so that the exposure reaches the
    instrument side after the port's enableBLOB (both travel on the port's one topic, in order)."""

    def expose() -> None:
        wait_for(lambda: demand.wants(CCD, "CCD1"), what="the port to ask for CCD1 upstream")
        assert setprop(chain_port, f"{CCD}.CCD_EXPOSURE.CCD_EXPOSURE_VALUE=0.5").returncode == 0

    return expose


def test_getprop_writes_the_same_fits_through_the_port_as_from_indiserver(
    connected_ccd: PortChain, tmp_path: Path
) -> None:
    """indiserver -> inditomqtt -> mosquitto -> mqtttoport, the reference straight from that indiserver."""
    chain = connected_ccd
    same_fits_from_getprop(
        chain.indiserver.port,
        chain.port,
        expose_through(chain.port, chain.portside.client_side.demand),
        tmp_path,
    )


def test_getprop_writes_the_same_fits_from_driverstomqtt_as_from_indiserver(
    broker: MosquittoProcess, tmp_path: Path
) -> None:
    """The CCD driver's own output (base64 wrapped at 72 characters) through driverstomqtt -> mosquitto ->
    mqtttoport; the reference is an indiserver that takes the CCD from the port as a remote driver
    (``"CCD Simulator@host:port"``), so both clients get the same exposure."""
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    port = free_port()
    portside = make_mqtttoport("kstars-drv", mqtt_host, port=port, host="127.0.0.1")
    with (
        run_bridge(make_driverstomqtt(["indi_simulator_ccd"], "camera-pc", mqtt_host)),
        run_bridge(portside),
    ):
        wait_until_listed(port, f"{CCD}.CONNECTION.CONNECT")
        assert setprop(port, f"{CCD}.CONNECTION.CONNECT=On").returncode == 0
        wait_until_listed(port, f"{CCD}.CCD_EXPOSURE.CCD_EXPOSURE_VALUE")
        with IndiServerProcess([f"{CCD}@127.0.0.1:{port}"]) as chained:
            wait_until_listed(chained.port, f"{CCD}.CCD_EXPOSURE.CCD_EXPOSURE_VALUE")
            fits = same_fits_from_getprop(
                chained.port, port, expose_through(port, portside.client_side.demand), tmp_path
            )
    assert b"FILTER  = 'Red" in fits  # the CCD snooped its own filter wheel (driver pool, issue 17)


def test_after_indiserver_restarts_clients_get_delproperty_for_what_vanished_and_frames_again(
    broker: MosquittoProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """indiserver restarts behind inditomqtt: the CCD comes back disconnected, without the properties
    it defines once connected.  Port clients are told (delProperty), get the definitions anew, and the
    client that enabled BLOBs gets frames again once it connected the CCD, without asking again."""
    caplog.set_level(logging.INFO)
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    port = free_port()
    with IndiServerProcess(["indi_simulator_ccd"]) as indi:
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", indi.port), "restarting", mqtt_host)
        with (
            run_bridge(instrument),
            run_bridge(make_mqtttoport("kstars-restart", mqtt_host, port=port, host="127.0.0.1")),
        ):
            wait_until_listed(port, f"{CCD}.CONNECTION.CONNECT")
            frames_before_and_after(
                port, indi.restart, told_after_restart=rb"<delProperty[^>]*CCD Simulator[^>]*CCD_EXPOSURE"
            )
    assert not [r for r in caplog.records if r.name.startswith("asyncio") or r.exc_info]
