"""The realistic mount stream of the MQTT tests and benchmarks, and a watcher that counts it.

A mount under a client's eye: 10 number properties of 6 elements each, every
element formatted ``%010.6m`` (sexagesimal, as coordinates are), streamed as
``setNumberVector`` messages going round the 10 properties.  Each message is
numbered: the value of its first element is the message's sequence number in
seconds of arc-hours (``seq / 3600``, so ``5:33:20`` is message 20 000), and its
``timestamp`` is the moment it was built, to the microsecond, so a watcher can
tell a lost message from a late one and measure the latency end to end.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime

STANDIN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mount_standin.py")
PROPERTIES = 10
ELEMENTS = 6
FORMAT = "%010.6m"

_MESSAGE = re.compile(
    rb'<setNumberVector device="([^"]+)" name="P\d" state="Ok" timeout="0" timestamp="([^"]+)">'
    rb'\s*<oneNumber name="E0">\s*([0-9:.-]+)\s*<'
)
#: any message naming a device (members name none)
_DEVICE_MESSAGE = re.compile(rb'<[A-Za-z]+ device="([^"]+)"')
#: the last definition a stand-in sends when asked for its properties
_LAST_DEFINITION = re.compile(rb'<defSwitchVector device="([^"]+)" name="BURST"')


def sexagesimal(value: float) -> str:
    """``value`` as ``%010.6m`` renders it (``  hh:mm:ss``); stdlib only, so that the driver form of
    ``mount_standin.py`` runs under any Python."""
    total = round(abs(value) * 3600)
    hours, rest = divmod(total, 3600)
    text = f"{'-' if value < 0 else ''}{hours}:{rest // 60:02d}:{rest % 60:02d}"
    return text.rjust(10)


def values(seq: int) -> list[str]:
    """The 6 element values of message ``seq`` (0: the values before any message)."""
    return [sexagesimal(seq / 3600)] + [
        sexagesimal((seq * 7 + e * 13) % 360 + e / 7) for e in range(1, ELEMENTS)
    ]


def latest(prop: int, last_seq: int) -> int:
    """The number of the latest message up to ``last_seq`` that set property ``prop`` (0: none)."""
    if last_seq < 1:
        return 0
    seq = last_seq - (last_seq - prop) % PROPERTIES
    return seq if seq >= 1 else 0


def definitions(device: str, last_seq: int = 0) -> bytes:
    """The 10 ``defNumberVector`` messages of ``device``, with the values the stream has set up to
    message ``last_seq`` (as a driver defines its properties with their current values)."""
    parts = []
    for prop in range(PROPERTIES):
        members = "".join(
            f'<defNumber name="E{e}" label="Element {e}" format="{FORMAT}" min="0" max="360" step="0">'
            f"{value}</defNumber>"
            for e, value in enumerate(values(latest(prop, last_seq)))
        )
        parts.append(
            f'<defNumberVector device="{device}" name="P{prop}" label="Property {prop}" group="Mount" '
            f'state="Idle" perm="ro" timeout="0">{members}</defNumberVector>\n'
        )
    return "".join(parts).encode()


def timestamp(moment: float | None = None) -> str:
    """An INDI timestamp with microseconds."""
    return datetime.fromtimestamp(time.time() if moment is None else moment, UTC).strftime(
        "%Y-%m-%dT%H:%M:%S.%f"
    )


def set_message(device: str, seq: int, moment: float | None = None) -> bytes:
    """Message number ``seq`` (from 1) of ``device``'s stream."""
    stamp = timestamp(moment)
    members = "".join(f'<oneNumber name="E{e}">{v}</oneNumber>' for e, v in enumerate(values(seq)))
    return (
        f'<setNumberVector device="{device}" name="P{seq % PROPERTIES}" state="Ok" timeout="0" '
        f'timestamp="{stamp}">{members}</setNumberVector>\n'
    ).encode()


def burst(device: str, first: int, count: int) -> bytes:
    """Messages ``first`` .. ``first + count - 1`` back to back."""
    return b"".join(set_message(device, seq) for seq in range(first, first + count))


def parse(data: bytes) -> Iterable[tuple[str, int, float]]:
    """(device, sequence number, time sent) of each numbered message in ``data``."""
    for match in _MESSAGE.finditer(data):
        hours, minutes, seconds = (float(part) for part in match.group(3).split(b":"))
        seq = round(hours * 3600 + minutes * 60 + seconds)
        sent = datetime.fromisoformat(match.group(2).decode()).replace(tzinfo=UTC).timestamp()
        yield match.group(1).decode(), seq, sent


class StreamWatcher:
    """Counts the numbered messages published on a Redis ``from_indi`` channel, per device,
    with each one's latency (from its timestamp to its publication arriving here)."""

    def __init__(self, port: int, channel: str = "from_indi") -> None:
        import redis  # here: the driver form of mount_standin.py imports this module with the stdlib only
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # no silent reconnection: messages published meanwhile would be missed, and counted as lost
        self.conn = redis.Redis(host="127.0.0.1", port=port, retry=Retry(NoBackoff(), 0))
        self.channel = channel
        self.pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        #: how often this watcher lost its subscription (it may have missed messages each time), and why
        self.reconnections = 0
        self.last_lapse = ""
        self.seen: dict[str, set[int]] = {}
        self.latencies: list[float] = []
        self.duplicates = 0
        self.definition_rounds: dict[str, int] = {}
        self.messages: dict[str, int] = {}  # every message per device, numbered or not
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> StreamWatcher:
        self.thread.start()
        return self

    def _run(self) -> None:
        # blocking reads: a read with a timeout that expires half-way through a publication (this
        # thread starved of CPU) would leave the connection unusable
        while not self._stop.is_set():
            try:
                for item in self.pubsub.listen():
                    if self._stop.is_set():
                        return
                    if item["type"] == "message":
                        self._record(item["data"], time.time())
            except Exception as exc:  # noqa: BLE001 - lost the subscription: count it and subscribe again
                if self._stop.is_set():
                    return
                self.reconnections += 1
                self.last_lapse = repr(exc)
                self.pubsub = self.conn.pubsub(ignore_subscribe_messages=True)
                self.pubsub.subscribe(self.channel)

    def _record(self, data: bytes, now: float) -> None:
        with self.lock:
            for match in _DEVICE_MESSAGE.finditer(data):
                device = match.group(1).decode()
                self.messages[device] = self.messages.get(device, 0) + 1
            for match in _LAST_DEFINITION.finditer(data):
                device = match.group(1).decode()
                self.definition_rounds[device] = self.definition_rounds.get(device, 0) + 1
            for device, seq, sent in parse(data):
                numbers = self.seen.setdefault(device, set())
                if seq in numbers:
                    self.duplicates += 1
                numbers.add(seq)
                self.latencies.append(now - sent)

    def count(self, device: str | None = None) -> int:
        """Distinct numbered messages seen (of ``device``, or of every device)."""
        with self.lock:
            if device is not None:
                return len(self.seen.get(device, ()))
            return sum(len(numbers) for numbers in self.seen.values())

    def all_messages(self, device: str) -> int:
        """Every message of ``device`` seen, numbered or not."""
        with self.lock:
            return self.messages.get(device, 0)

    def rounds(self, device: str) -> int:
        """How many times ``device`` sent its definitions (answering a getProperties)."""
        with self.lock:
            return self.definition_rounds.get(device, 0)

    def take_latencies(self) -> list[float]:
        """The latencies measured since the last call, in seconds."""
        with self.lock:
            taken, self.latencies = self.latencies, []
        return taken

    def stop(self) -> None:
        self._stop.set()
        try:
            self.conn.publish(self.channel, b"")  # wakes the blocking read
        except Exception:  # noqa: BLE001 - Redis already gone: the read has ended anyway
            pass
        self.thread.join(5)
        self.pubsub.close()
        self.conn.close()


class StandinServers:
    """``count`` stand-in indiservers streaming the mount stream at ``rate`` messages per second each
    (``mount_standin.py --servers``, a process of its own); device ``Site<i>`` on ``ports[i]``."""

    def __init__(self, count: int = 1, rate: float = 0, burst: int = 20_000) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, STANDIN, "--servers", str(count), "--rate", str(rate)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env={**os.environ, "MOUNT_BURST": str(burst)},
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORTS "):
            self.stop()
            raise RuntimeError(f"the stand-in indiservers said {line!r}")
        self.ports = [int(port) for port in line.split()[1:]]

    def command(self, line: str) -> None:
        """``rate R`` or ``burst N`` (see mount_standin.py)."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)

    def __enter__(self) -> StandinServers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
