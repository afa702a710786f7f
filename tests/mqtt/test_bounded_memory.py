"""A broker down while BLOBs arrive (issue 25): inditomqtt's memory stays within its budget, the BLOBs
beyond it are dropped oldest first and counted, and the receivers see the drop as a gap and resync.

Real programs: a stock mosquitto (stopped with SIGKILL, then started again on its port), inditomqtt
and mqtttoport as their daemons, each a process of its own; frames come from a stand-in indiserver
(one ``setBLOBVector`` of 2 MB, base64 wrapped at 72 characters, as drivers send it).
"""

from __future__ import annotations

import base64
import os
import re
import socket
from pathlib import Path

from tests.support.bridgeprocess import BridgeProcess
from tests.support.fakeindi import FakeIndiServer
from tests.support.inditools import RawClient
from tests.support.procstats import peak_rss_mib
from tests.support.servers import MosquittoProcess, free_port, port_open, wait_for

BUDGET_MB = 48
FRAME_BYTES = 2_000_000
FRAMES = 60  # while the broker is down: about 320 MiB held in memory without a bound
DEFINE = (
    b'<defBLOBVector device="Camera" name="CCD1" label="Image" group="Image" state="Idle" perm="ro" '
    b'timeout="60" timestamp="2026-01-01T00:00:00"><defBLOB name="CCD1" label="Image"/></defBLOBVector>\n'
)
FRAME = rb"<setBLOBVector[^>]*Camera.*?</setBLOBVector>"


def frame_message(number: int) -> bytes:
    encoded = base64.b64encode(os.urandom(FRAME_BYTES))
    lines = b"\n".join(encoded[i : i + 72] for i in range(0, len(encoded), 72))
    return (
        b'<setBLOBVector device="Camera" name="CCD1" state="Ok" timestamp="2026-01-01T00:00:%02d">'
        b'<oneBLOB name="CCD1" size="%d" format=".fits">\n'
        % (number % 60, FRAME_BYTES)
        + lines
        + b"\n</oneBLOB></setBLOBVector>\n"
    )


class Camera(FakeIndiServer):
    """A stand-in indiserver whose camera is defined on every getProperties."""

    def on_data(self, conn: socket.socket, data: bytes) -> None:
        if b"getProperties" in data:
            conn.sendall(DEFINE)


def test_a_broker_down_while_frames_arrive_keeps_memory_within_the_budget_and_receivers_resync(
    tmp_path: Path,
) -> None:
    broker = MosquittoProcess().start()
    mqtt = {"host": "127.0.0.1", "port": broker.port}
    port = free_port()
    with Camera() as camera:
        instrument = BridgeProcess(
            "make_inditomqtt",
            {
                "indi_host": {"host": "127.0.0.1", "port": camera.port},
                "mqtt_id": "obs",
                "mqtt_host": mqtt,
                "memory_budget_mb": BUDGET_MB,
            },
            tmp_path,
        ).start()
        receiver = BridgeProcess(
            "make_mqtttoport",
            {"mqtt_id": "kstars", "mqtt_host": mqtt, "port": port, "host": "127.0.0.1"},
            tmp_path,
        ).start()
        try:
            wait_for(
                lambda: instrument.ready and receiver.ready and port_open(port), timeout=30, what="ready"
            )
            with RawClient(port) as client:
                client.send("<getProperties version='1.7'/><enableBLOB device='Camera'>Also</enableBLOB>")
                client.read_until(rb"<defBLOBVector[^>]*Camera")
                wait_for(lambda: b"enableBLOB" in camera.received, what="BLOBs asked of the camera")
                camera.send(frame_message(0))
                client.read_until(FRAME, timeout=60)
                assert instrument.proc is not None
                reference = peak_rss_mib(instrument.proc.pid)  # the bridge with one frame through it

                mark = len(client.received)
                broker.kill()
                wait_for(lambda: not instrument.ready, what="inditomqtt to see the broker gone")
                for number in range(1, FRAMES + 1):
                    camera.send(frame_message(number))
                broker.start()

                # what was dropped is said once, BLOBs apart ...
                dropped_line = re.compile(r"dropped (\d+) messages \((\d+) of them BLOBs, [\d.]+ MiB")
                found = wait_for(lambda: dropped_line.search(instrument.log), timeout=60, what="the drops")
                dropped, blobs = int(found.group(1)), int(found.group(2))
                assert 0 < blobs <= dropped and blobs < FRAMES
                # ... and the receivers see it as a gap, and resync
                lost_line = re.compile(r"lost (\d+) messages on MQTT topic from_indi/obs")
                wait_for(lambda: lost_line.search(receiver.log), timeout=60, what="the gap seen")
                assert sum(int(n) for n in lost_line.findall(receiver.log)) >= dropped
                # resynced: the camera is defined again, and a new frame arrives
                client.read_until(rb"<defBLOBVector[^>]*Camera", start=mark, timeout=60)
                wait_for(lambda: instrument.ready and receiver.ready, timeout=30, what="both back")
                camera.send(frame_message(99))
                client.read_until(
                    rb'<setBLOBVector[^>]*timestamp="2026-01-01T00:00:39"', start=mark, timeout=60
                )
                peak = peak_rss_mib(instrument.proc.pid)
            print(
                f"inditomqtt VmHWM: {reference:.0f} MiB with one frame through it, {peak:.0f} MiB at the end"
            )
            assert peak <= reference + BUDGET_MB, (reference, peak)
        finally:
            instrument.stop()
            receiver.stop()
            broker.stop()
