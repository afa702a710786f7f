#!/usr/bin/env python3
"""Benchmark: a bridge's peak memory while BLOBs wait — a broker down, and a port client that reads nothing.

Frames come from a stand-in indiserver on 127.0.0.1 (one ``setBLOBVector`` of ``--frame-mb`` MB,
base64 wrapped at 72 characters as drivers send it, every ``--every`` seconds); the broker is a real
mosquitto in its default configuration; each bridge is a child process of its own (``benchbridge``).

1. **broker down**: inditomqtt gets frames while mosquitto is stopped for ``--minutes`` (the issue's
   scenario: 10 minutes of 50 MB frames every 2 s); then mosquitto starts again on the same port.
   Printed: inditomqtt's peak RSS (VmHWM) before the outage (the same-run reference: the bridge with
   one frame through it) and at the end, and what its log says it dropped.
2. **slow port client**: indiserver stand-in -> inditomqtt -> mosquitto -> mqtttoport; one INDI client
   enables BLOBs and reads nothing, another reads everything, while ``--frames`` frames arrive.
   Printed: mqtttoport's peak RSS before the first frame (reference) and at the end, frames the
   reading client got, and whether the port cut the slow one off.

``--budget-mb`` passes ``memory_budget`` to the bridges (leave it out on code that predates it).
"""

from __future__ import annotations

import argparse
import base64
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchbridge import peak_rss_mib, start_bridge  # noqa: E402

from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import MosquittoProcess, free_port, port_open, wait_for  # noqa: E402

MB = 1_000_000
DEFINE = (
    b'<defBLOBVector device="Camera" name="CCD1" label="Image" group="Image" state="Idle" perm="ro" '
    b'timeout="60" timestamp="2026-01-01T00:00:00"><defBLOB name="CCD1" label="Image"/></defBLOBVector>\n'
)


def frame_message(size: int) -> bytes:
    """One setBLOBVector of ``size`` bytes of data (base64, 72 characters a line)."""
    data = os.urandom(54 * 1000) * (size // 54_000 + 1)
    encoded = base64.b64encode(data[:size])
    lines = b"\n".join(encoded[i : i + 72] for i in range(0, len(encoded), 72))
    return (
        b'<setBLOBVector device="Camera" name="CCD1" state="Ok" timestamp="2026-01-01T00:00:01">'
        b'<oneBLOB name="CCD1" size="%d" format=".fits">\n' % size + lines + b"\n</oneBLOB></setBLOBVector>\n"
    )


class StandIn(FakeIndiServer):
    """A stand-in indiserver that answers getProperties with the camera's definition."""

    def on_data(self, conn: socket.socket, data: bytes) -> None:
        if b"getProperties" in data:
            conn.sendall(DEFINE)


def send_frames(server: StandIn, frame: bytes, every: float, until: float) -> int:
    """Send ``frame`` every ``every`` seconds until ``until`` (monotonic); return how many were sent."""
    sent = 0
    next_at = time.monotonic()
    while next_at < until:
        time.sleep(max(0.0, next_at - time.monotonic()))
        server.send(frame)
        sent += 1
        next_at += every
    return sent


def budget_argument(args: argparse.Namespace) -> str:
    return f", memory_budget={args.budget_mb} * 1024 * 1024" if args.budget_mb else ""


def log_lines(path: Path, *needles: str) -> list[str]:
    text = path.read_text(errors="replace")
    return [line for line in text.splitlines() if any(needle in line for needle in needles)]


def broker_down(args: argparse.Namespace, frame: bytes, workdir: Path) -> None:
    broker = MosquittoProcess().start()
    stderr_path = workdir / "inditomqtt.log"
    with StandIn() as standin, open(stderr_path, "wb") as stderr:
        bridge = start_bridge(
            "make_inditomqtt",
            f"indiredis.indi_server('127.0.0.1', {standin.port}), 'bench', "
            f"indiredis.mqtt_server('127.0.0.1', {broker.port}){budget_argument(args)}",
            stderr=stderr,
        )
        try:
            wait_for(lambda: standin.clients, timeout=30, what="inditomqtt to connect")
            wait_for(lambda: b"getProperties" in standin.received, timeout=30, what="getProperties")
            time.sleep(1)  # a benchmark, not a test: let the broker connection settle
            standin.send(frame)
            time.sleep(max(2.0, args.every))
            reference = peak_rss_mib(bridge.pid)
            broker.stop()
            sent = send_frames(standin, frame, args.every, time.monotonic() + args.minutes * 60)
            during = peak_rss_mib(bridge.pid)
            broker.start()
            try:  # the code before the memory bound dropped nothing (it had room for 10 000 messages)
                wait_for(lambda: log_lines(stderr_path, "dropped"), timeout=20, what="the drop count")
            except TimeoutError:
                pass
            time.sleep(2 * args.every)
            after = peak_rss_mib(bridge.pid)
        finally:
            bridge.terminate()
            bridge.wait(30)
            broker.stop()
    print(
        f"broker down {args.minutes:g} min, {sent} frames of {len(frame) / MB:.1f} MB (base64) every "
        f"{args.every:g} s: inditomqtt VmHWM {reference:.0f} MiB with one frame through it (reference), "
        f"{during:.0f} MiB at the end of the outage, {after:.0f} MiB after the broker returned"
    )
    for line in log_lines(stderr_path, "dropped"):
        print(f"  log: {line}")


def slow_port_client(args: argparse.Namespace, frame: bytes, workdir: Path) -> None:
    broker = MosquittoProcess().start()
    port = free_port()
    logs = [workdir / "inditomqtt-port.log", workdir / "mqtttoport.log"]
    mqtt = f"indiredis.mqtt_server('127.0.0.1', {broker.port})"
    with StandIn() as standin, open(logs[0], "wb") as log0, open(logs[1], "wb") as log1:
        bridges = [
            start_bridge(
                "make_inditomqtt",
                f"indiredis.indi_server('127.0.0.1', {standin.port}), 'bench', {mqtt}{budget_argument(args)}",
                stderr=log0,
            ),
            start_bridge(
                "make_mqtttoport",
                f"'benchport', {mqtt}, port={port}, host='127.0.0.1'{budget_argument(args)}",
                stderr=log1,
            ),
        ]
        slow = reader = None
        try:
            wait_for(lambda: port_open(port), timeout=30, what="mqtttoport listening")
            slow, reader = (
                socket.create_connection(("127.0.0.1", port)),
                socket.create_connection(("127.0.0.1", port)),
            )
            slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            frames_read = [0]

            def read_all() -> None:
                assert reader is not None
                tail = b""
                while chunk := reader.recv(1 << 20):
                    joined = tail + chunk  # an end tag split between two reads is counted once
                    frames_read[0] += joined.count(b"</setBLOBVector>") - tail.count(b"</setBLOBVector>")
                    tail = joined[-20:]

            threading.Thread(target=read_all, daemon=True).start()
            reader.sendall(b"<getProperties version='1.7'/><enableBLOB device='Camera'>Also</enableBLOB>")
            time.sleep(3)  # a benchmark, not a test: the definitions and the BLOB requests go round
            standin.send(frame)
            wait_for(lambda: frames_read[0] >= 1, timeout=60, what="the first frame")
            reference = peak_rss_mib(bridges[1].pid)  # with one frame through it to the reading client
            slow.sendall(b"<getProperties version='1.7'/><enableBLOB device='Camera'>Also</enableBLOB>")
            time.sleep(1)
            sent = send_frames(standin, frame, args.every, time.monotonic() + args.frames * args.every)
            try:
                wait_for(lambda: frames_read[0] > sent, timeout=60, what="every frame at the reading client")
            except TimeoutError:
                pass  # it was cut off too: printed below
            peak = peak_rss_mib(bridges[1].pid)
        finally:
            for bridge in bridges:
                bridge.terminate()
                bridge.wait(30)
            for client in (slow, reader):
                if client is not None:
                    client.close()
            broker.stop()
    cut = log_lines(logs[1], "read too slowly", "messages behind")
    print(
        f"port client reading nothing, {sent} frames of {len(frame) / MB:.1f} MB (base64) every "
        f"{args.every:g} s: mqtttoport VmHWM {reference:.0f} MiB with one frame through it (reference), "
        f"{peak:.0f} MiB at the end; the reading client got {frames_read[0]} of {sent + 1} frames; "
        f"slow client {'cut off' if cut else 'still connected'}"
    )
    for line in cut:
        print(f"  log: {line}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="broker outage (default 10)")
    parser.add_argument("--frame-mb", type=float, default=50.0, help="frame size in MB (default 50)")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between frames (default 2)")
    parser.add_argument("--frames", type=int, default=20, help="frames for the slow client (default 20)")
    parser.add_argument("--budget-mb", type=int, default=0, help="memory_budget of the bridges, MiB")
    parser.add_argument("--only", choices=("broker", "port"), help="run one scenario")
    args = parser.parse_args()
    frame = frame_message(int(args.frame_mb * MB))
    with tempfile.TemporaryDirectory(prefix="bench-bounded-") as workdir:
        if args.only in (None, "broker"):
            broker_down(args, frame, Path(workdir))
        if args.only in (None, "port"):
            slow_port_client(args, frame, Path(workdir))


if __name__ == "__main__":
    main()
