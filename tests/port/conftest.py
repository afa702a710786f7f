"""The chain the port tests drive: indiserver (simulators) -> inditomqtt -> mosquitto -> mqtttoport.

Each test runs its INDI clients against ``target``: once straight against
indiserver (the reference) and once through mqtttoport, and both must agree.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import indiredis
from indiredis.bridges import make_inditomqtt, make_mqtttoport
from tests.support.bridgethread import LoopThread, run_bridge
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, port_open, wait_for


@pytest.fixture(scope="module")
def broker() -> Iterator[MosquittoProcess]:
    with MosquittoProcess() as proc:
        yield proc


@dataclass
class PortChain:
    """indiserver -> inditomqtt -> mosquitto -> mqtttoport, with handles on each part."""

    indiserver: IndiServerProcess
    mqtt_host: Any
    port: int
    instrument: Any
    instrument_thread: LoopThread
    portside: Any

    def restart_instrument_bridge(self) -> None:
        """Stop inditomqtt and start a fresh one (a new connection to indiserver, BLOBs Never there)."""
        self.instrument_thread.stop()
        self.instrument = make_inditomqtt(
            indiredis.indi_server("127.0.0.1", self.indiserver.port), "observatory", self.mqtt_host
        )
        self.instrument_thread = run_bridge(self.instrument).start()


@pytest.fixture
def port_chain(simulators: IndiServerProcess, broker: MosquittoProcess) -> Iterator[PortChain]:
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    port = free_port()
    instrument = make_inditomqtt(
        indiredis.indi_server("127.0.0.1", simulators.port), "observatory", mqtt_host
    )
    portside = make_mqtttoport("kstars", mqtt_host, port=port, host="127.0.0.1")
    chain = PortChain(simulators, mqtt_host, port, instrument, run_bridge(instrument).start(), portside)
    with run_bridge(portside):
        wait_for(lambda: port_open(port), what="mqtttoport listening")
        try:
            yield chain
        finally:
            chain.instrument_thread.stop()


@pytest.fixture(params=["indiserver", "port"])
def target(request: pytest.FixtureRequest, simulators: IndiServerProcess) -> int:
    """The port INDI clients talk to: indiserver itself (the reference) or mqtttoport."""
    if request.param == "indiserver":
        return simulators.port
    chain: PortChain = request.getfixturevalue("port_chain")
    return chain.port
