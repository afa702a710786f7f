#!/usr/bin/env python3
"""A stand-in INDI driver that streams numbered setNumberVector messages at a steady rate.

Used in addition to the real simulators, by the fault suite and ``bench/chaos.py``:
run by indiserver or by driverstoredis (it speaks INDI on stdin/stdout, stdlib only).

Environment:
- ``STANDIN_DEVICE`` (default ``Stream``): the device name;
- ``STANDIN_RATE`` (default 2000): setNumberVector messages per second;
- ``STANDIN_EPHEMERAL``: when set, also defines a device of that name (to test that keys of a
  device that vanished while a part was down do not linger).

Each message carries ``RUN`` (this process's pid) and ``N`` (a sequence number counted from 1
in this run) and the send time as its INDI ``timestamp``, so a watcher can tell a lost message
from one that was never sent, and when it was sent.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from datetime import UTC, datetime

DEVICE = os.environ.get("STANDIN_DEVICE", "Stream")
RATE = float(os.environ.get("STANDIN_RATE", "2000"))
EPHEMERAL = os.environ.get("STANDIN_EPHEMERAL", "")
TICK = 0.01  # seconds between writes
RUN = os.getpid()

out = sys.stdout.buffer
out_lock = threading.Lock()
defined = threading.Event()
sequence = 0


def timestamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3]


def definitions() -> bytes:
    parts = [
        f'<defNumberVector device="{DEVICE}" name="SEQ" label="Sequence" group="Stream" state="Ok" perm="ro" '
        f'timeout="0" timestamp="{timestamp()}">'
        f'<defNumber name="RUN" label="Run" format="%.0f" min="0" max="0" step="0">{RUN}</defNumber>'
        f'<defNumber name="N" label="Number" format="%.0f" min="0" max="0" step="0">{sequence}</defNumber>'
        f"</defNumberVector>"
    ]
    if EPHEMERAL:
        parts.append(
            f'<defTextVector device="{EPHEMERAL}" name="INFO" state="Idle" perm="ro"'
            f' timestamp="{timestamp()}">'
            f'<defText name="RUN">{RUN}</defText></defTextVector>'
        )
    return "\n".join(parts).encode() + b"\n"


def write(data: bytes) -> None:
    with out_lock:
        out.write(data)
        out.flush()


def read_commands() -> None:
    """Answer every getProperties with the definitions; exit when the other end closes."""
    buffer = b""
    for chunk in iter(lambda: os.read(0, 65536), b""):
        buffer += chunk
        if b"getProperties" in buffer:
            write(definitions())
            defined.set()
            buffer = b""
        buffer = buffer[-64:]
    os._exit(0)


def stream() -> None:
    """Emit numbered setNumberVector messages at RATE per second, paced every TICK."""
    global sequence
    defined.wait()
    start = time.monotonic()
    while True:
        due = int((time.monotonic() - start) * RATE)
        batch = []
        while sequence < due and len(batch) < RATE:
            sequence += 1
            batch.append(
                f'<setNumberVector device="{DEVICE}" name="SEQ" state="Ok" timestamp="{timestamp()}">'
                f'<oneNumber name="RUN">{RUN}</oneNumber><oneNumber name="N">{sequence}</oneNumber>'
                f"</setNumberVector>\n"
            )
        if batch:
            write("".join(batch).encode())
        time.sleep(TICK)


if __name__ == "__main__":
    threading.Thread(target=read_commands, daemon=True).start()
    try:
        stream()
    except (BrokenPipeError, KeyboardInterrupt):
        os._exit(0)
