"""The INDI port is bounded (issue 25): a client that reads nothing is cut off at its share of the
memory budget while another keeps receiving; a connection beyond ``max_clients`` is refused; running
out of file descriptors in accept drops nobody; a flood of bad input writes a bounded number of lines.

Real programs throughout: indiserver with the CCD and telescope simulators -> inditomqtt -> a stock
mosquitto -> mqtttoport (in a thread, or as a process of its own with few file descriptors).
"""

from __future__ import annotations

import contextlib
import logging
import re
import resource
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import indiredis
from indiredis.bridges import make_inditomqtt, make_mqtttoport
from indiredis.links.loglimit import BURST
from tests.port.test_port_blobs import CCD, ccd_ready_for_frames, frame
from tests.support.bridgethread import run_bridge
from tests.support.inditools import HOST, RawClient
from tests.support.servers import IndiServerProcess, MosquittoProcess, free_port, port_open, wait_for

MIB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = rb"<defSwitchVector[^>]*CCD Simulator[^>]*CONNECTION"


@contextlib.contextmanager
def port_chain(simulators: IndiServerProcess, broker: MosquittoProcess, **port_options: int) -> Iterator[int]:
    """indiserver -> inditomqtt -> mosquitto -> mqtttoport (with ``port_options``); yields the port."""
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    port = free_port()
    instrument = make_inditomqtt(
        indiredis.indi_server("127.0.0.1", simulators.port), "observatory", mqtt_host
    )
    portside = make_mqtttoport("kstars", mqtt_host, port=port, host="127.0.0.1", **port_options)
    with run_bridge(instrument), run_bridge(portside):
        wait_for(lambda: port_open(port), what="mqtttoport listening")
        yield port


def peer_of(sock: socket.socket) -> str:
    return "{}:{}".format(*sock.getsockname()[:2])


def test_a_client_that_reads_nothing_is_cut_off_at_its_share_while_another_keeps_receiving(
    simulators: IndiServerProcess, broker: MosquittoProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """Budget 16 MiB: each client may fall 8 MiB behind; CCD frames are 3.5 MB of base64 each."""
    caplog.set_level(logging.INFO)
    with port_chain(simulators, broker, memory_budget=16 * MIB) as port, RawClient(port) as reader:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: a small window
        slow.connect((HOST, port))
        try:
            slow.sendall(
                f"<getProperties version='1.7'/><enableBLOB device='{CCD}'>Also</enableBLOB>".encode()
            )
            reader.send("<getProperties version='1.7'/>")
            ccd_ready_for_frames(reader, 0)
            reader.send(f"<enableBLOB device='{CCD}'>Also</enableBLOB>")
            cut = re.compile(
                rf"INDI client {re.escape(peer_of(slow))} disconnected: it read too slowly and fell "
                r"([\d.]+) MiB \((\d+) messages\) behind, more than its share of 8 MiB"
            )

            def cut_lines() -> list[re.Match[str]]:
                return [m for r in caplog.records if (m := cut.search(r.getMessage()))]

            for _ in range(20):  # far more than the slow client's share and its kernel buffers hold
                frame(reader, len(reader.received))
                if cut_lines():
                    break
            [line] = cut_lines()  # one line, naming it and how far behind it was
            assert float(line.group(1)) > 8
            # the other client is untouched: it still gets frames
            frame(reader, len(reader.received))
            assert not any(
                "disconnected" in r.getMessage() and peer_of(reader.sock) in r.getMessage()
                for r in caplog.records
            )
        finally:
            slow.close()


def test_a_connection_beyond_max_clients_is_refused_and_logged(
    simulators: IndiServerProcess, broker: MosquittoProcess, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    with port_chain(simulators, broker, max_clients=2) as port:
        # the probe that saw the port open was a client too, until the port saw it leave
        wait_for(lambda: " disconnected" in caplog.text, what="the probe gone")
        with RawClient(port) as first, RawClient(port) as second:
            for client in (first, second):
                client.send("<getProperties version='1.7'/>")
                client.read_until(DEFINITIONS)
            with RawClient(port) as third:
                third.send("<getProperties version='1.7'/>")
                with pytest.raises(ConnectionError):  # closed at once, nothing sent
                    third.read_until(DEFINITIONS)
                assert third.received == b""
            refused = [r.getMessage() for r in caplog.records if "refused INDI client" in r.getMessage()]
            assert len(refused) == 1
            wanted = (
                r"refused INDI client 127\.0\.0\.1:\d+: 2 clients connected, the most allowed \(max_clients\)"
            )
            assert re.fullmatch(wanted, refused[0])
            # the clients connected are served on
            first.send("<getProperties version='1.7'/>")
            first.read_until(DEFINITIONS, start=len(first.received))
        # once one has left, a new one is served
        wait_for(lambda: caplog.text.count(" disconnected") >= 3, what="both clients gone")
        with RawClient(port) as fourth:
            fourth.send("<getProperties version='1.7'/>")
            fourth.read_until(DEFINITIONS)


PORT_PROCESS = """
import logging, signal, indiredis
from indiredis.bridges import make_mqtttoport
from indiredis.core.bridge import run_blocking
logging.basicConfig(level=logging.INFO)
signal.signal(signal.SIGTERM, signal.default_int_handler)
run_blocking(make_mqtttoport("kstars", indiredis.mqtt_server("127.0.0.1", {broker}), port={port},
                             host="127.0.0.1", max_clients=1000))
"""


def test_running_out_of_file_descriptors_in_accept_drops_no_client(
    simulators: IndiServerProcess, broker: MosquittoProcess, tmp_path: Path
) -> None:
    """mqtttoport limited to 40 open files (max_clients far above): 60 idle connections exhaust them;
    the client connected before is served on, and once they are gone new clients are accepted."""
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    instrument = make_inditomqtt(
        indiredis.indi_server("127.0.0.1", simulators.port), "observatory", mqtt_host
    )
    port = free_port()
    log_path = tmp_path / "mqtttoport.log"

    def few_files() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (40, 40))

    with run_bridge(instrument), open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", PORT_PROCESS.format(broker=broker.port, port=port)],
            cwd=ROOT,
            stderr=log,
            preexec_fn=few_files,
        )
        idle: list[socket.socket] = []
        try:
            wait_for(lambda: port_open(port), timeout=30, what="mqtttoport listening")
            with RawClient(port) as classic:
                classic.send("<getProperties version='1.7'/>")
                classic.read_until(DEFINITIONS)
                for _ in range(60):
                    idle.append(socket.create_connection((HOST, port), timeout=5))
                wait_for(lambda: "cannot accept INDI clients for now" in log_path.read_text(), timeout=30)
                assert proc.poll() is None
                # the client connected before is still served
                mark = len(classic.received)
                classic.send("<getProperties version='1.7'/>")
                classic.read_until(DEFINITIONS, start=mark)
                for sock in idle:
                    sock.close()
                idle.clear()
                # accepting again
                with RawClient(port) as later:
                    later.send("<getProperties version='1.7'/>")
                    later.read_until(DEFINITIONS)
            assert "Traceback" not in log_path.read_text()
        finally:
            for sock in idle:
                sock.close()
            proc.terminate()
            proc.wait(30)


BAD = 100_000


def test_a_flood_of_bad_input_writes_a_bounded_number_of_lines(
    simulators: IndiServerProcess, broker: MosquittoProcess, caplog: pytest.LogCaptureFixture
) -> None:
    """100 000 pieces of bad input from one client: at most BURST lines and one summary line that counts
    the rest, so nothing goes unsaid; the client is served on."""
    caplog.set_level(logging.INFO)
    piece = f"<enableBLOB device='{CCD}'>Never</enableBLOB>x"
    with port_chain(simulators, broker) as port, RawClient(port) as flooder:
        peer = peer_of(flooder.sock)
        flooder.send(piece * BAD)
        flooder.send("<getProperties version='1.7'/>")
        flooder.read_until(DEFINITIONS, timeout=60)
        flooder.close()
        summary = re.compile(rf"… and (\d+) more from INDI client {re.escape(peer)} in the last minute")
        wait_for(lambda: summary.search(caplog.text), timeout=30, what="the summary line")
    lines = [r.getMessage() for r in caplog.records if f"bad input from INDI client {peer}" in r.getMessage()]
    summaries = [int(m.group(1)) for r in caplog.records if (m := summary.search(r.getMessage()))]
    assert len(lines) <= 2 * BURST and len(summaries) <= 2
    assert len(lines) + sum(summaries) == BAD
