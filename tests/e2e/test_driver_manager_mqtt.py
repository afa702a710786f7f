"""The Driver Manager through driverstomqtt -> mosquitto -> mqtttoport, driven with INDI's own
command-line clients (``indi_setprop`` / ``indi_getprop`` from indi-bin), as a KStars user would."""

from __future__ import annotations

import socket
import subprocess
import threading
from pathlib import Path

import pytest

import indiredis
from indiredis.bridges import make_driverstomqtt, make_mqtttoport
from indiredis.links.indi_side.manager import DEFAULT_MANAGER_DEVICE
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import IndiStreamParser
from tests.support.bridgethread import run_bridge
from tests.support.inditools import getprop, wait_listed
from tests.support.servers import MosquittoProcess, free_port, port_open, wait_for

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"
SIMULATORS = ["indi_simulator_telescope", "indi_simulator_ccd"]
MANAGER = f"{DEFAULT_MANAGER_DEVICE} {socket.gethostname().split('.')[0]}"


class IndiWatcher:
    """A classic INDI client on the port that keeps every message it receives, in order."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.sock.sendall(b'<getProperties version="1.7"/>')
        self.messages: list[Message] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        parser = IndiStreamParser()
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            events = [e for e in parser.feed(data) if isinstance(e, Message)]
            with self.lock:
                self.messages.extend(events)

    def seen(self) -> list[Message]:
        with self.lock:
            return list(self.messages)

    def states(self, name: str, since: int = 0) -> list[str]:
        """States of the manager's ``name`` vector in the set messages received from ``since`` on."""
        return [
            m.attrs.get("state", "")
            for m in self.seen()[since:]
            if m.tag.startswith("set") and m.device == MANAGER and m.name == name
        ]

    def deleted(self, device: str, since: int = 0) -> bool:
        return any(m.tag == "delProperty" and m.device == device for m in self.seen()[since:])

    def said(self, text: str) -> bool:
        return any(m.tag == "message" and text in m.attrs.get("message", "") for m in self.seen())

    def close(self) -> None:
        self.sock.close()
        self.thread.join(10)


def setprop(port: int, *spec: str) -> None:
    """``indi_setprop``; with a type flag (``-s``) it sends at once, reading nothing back (a client that
    leaves with unread definitions may lose its command through mqtttoport: issue 17, item 1)."""
    subprocess.run(["indi_setprop", "-h", "127.0.0.1", "-p", str(port), *spec], check=True, timeout=30)


@pytest.fixture
def chain():
    """driverstomqtt (the simulators) -> mosquitto -> mqtttoport; yields the port and a watching client."""
    port = free_port()
    with MosquittoProcess() as broker:
        mqtt = indiredis.mqtt_server("127.0.0.1", broker.port)
        instruments = make_driverstomqtt(SIMULATORS, "obs-manager", mqtt)
        with (
            run_bridge(instruments),
            run_bridge(make_mqtttoport("kstars-manager", mqtt, port=port, host="127.0.0.1")),
        ):
            wait_for(lambda: port_open(port) and instruments.ready, what="the chain up")
            watcher = IndiWatcher(port)
            try:
                yield port, watcher, instruments.indi_side
            finally:
                watcher.close()


def test_driver_manager_through_mqtt_and_the_port_with_indi_tools(chain):
    port, watcher, pool = chain
    listing = wait_listed(
        port,
        f"{MANAGER}.*.*",
        "indi_simulator_ccd_STATUS.STATE=Ok",
        "the Driver Manager listed by indi_getprop",
    )
    assert f"{MANAGER}.indi_simulator_telescope_STATUS.STATE=Ok" in listing
    setprop(port, "-s", f"{TELESCOPE}.CONNECTION.CONNECT=On")
    wait_listed(
        port, f"{TELESCOPE}.CONNECTION.*", f"{TELESCOPE}.CONNECTION.CONNECT=On", "the telescope connected"
    )
    telescope_pid = pool.router.owner(TELESCOPE).process.pid
    ccd_pid = pool.router.owner(CCD).process.pid

    # restart: Busy, then Ok; the telescope's process and connection untouched
    mark = len(watcher.seen())
    setprop(port, "-s", f"{MANAGER}.indi_simulator_ccd_CONTROL.RESTART=On")
    wait_for(
        lambda: "Ok" in watcher.states("indi_simulator_ccd_STATUS", mark)[1:],
        timeout=30,
        what="the CCD's light Busy, then Ok",
    )
    assert watcher.states("indi_simulator_ccd_STATUS", mark)[0] == "Busy"
    assert pool.router.owner(TELESCOPE).process.pid == telescope_pid and not watcher.deleted(TELESCOPE, mark)
    wait_for(lambda: pool.router.owner(CCD) is not None, timeout=20, what="the CCD back")
    assert pool.router.owner(CCD).process.pid != ccd_pid
    assert f"{TELESCOPE}.CONNECTION.CONNECT=On" in getprop(port, f"{TELESCOPE}.CONNECTION.*").stdout

    # stop deletes the CCD's device; start brings it back
    mark = len(watcher.seen())
    setprop(port, "-s", f"{MANAGER}.indi_simulator_ccd_CONTROL.STOP=On")
    wait_for(lambda: watcher.deleted(CCD, mark), timeout=20, what="the CCD deleted")
    wait_listed(
        port,
        f"{MANAGER}.indi_simulator_ccd_STATUS.*",
        "indi_simulator_ccd_STATUS.STATE=Idle",
        "the CCD shown stopped",
    )
    assert not getprop(port, f"{CCD}.CONNECTION.*").stdout
    setprop(port, "-s", f"{MANAGER}.indi_simulator_ccd_CONTROL.START=On")
    wait_listed(port, f"{CCD}.CONNECTION.*", f"{CCD}.CONNECTION.CONNECT", "the CCD back after start")
    assert pool.router.owner(TELESCOPE).process.pid == telescope_pid


def test_an_unconfigured_executable_is_refused_through_the_port(chain, tmp_path):
    port, watcher, pool = chain
    wait_for(lambda: pool.router.owner(CCD) is not None, timeout=20, what="the CCD running")
    pids = pool.child_pids()
    marker = tmp_path / "ran"
    # sent unchecked (-s / -x): neither property exists, so indi_setprop could not look them up
    setprop(port, "-s", f"{MANAGER}.indi_simulator_focus_CONTROL.START=On")
    setprop(port, "-x", f"{MANAGER}.DRIVERS.START=/usr/bin/touch {marker}")
    wait_for(lambda: watcher.said("refused newSwitchVector 'indi_simulator_focus_CONTROL'"), what="refused")
    wait_for(lambda: watcher.said("refused newTextVector 'DRIVERS'"), what="the second refusal")
    assert pool.child_pids() == pids and not marker.exists()
    assert not [
        path for path in Path("/proc").glob("[0-9]*/cmdline") if b"indi_simulator_focus" in _read(path)
    ]


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError:
        return b""
