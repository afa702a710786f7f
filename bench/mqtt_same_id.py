"""Two client sides given one MQTT id on a stock mosquitto: how often the broker takes the id over, and
how many log lines and store resets that costs.

    .venv/bin/python bench/mqtt_same_id.py [--seconds 30]

Runs the pair twice on one broker, each for ``--seconds``: first as the links behaved before issue 25
(the back-off reset as soon as a connection was made: ``stable_seconds = 0``), the reference, then as
they are (a connection must stay up 10 s).  Prints per run: the takeovers mosquitto logged ("already
connected"), the bridges' log lines, and the Resets the client sides put on their channels (each one
clears the Redis definitions in mqtttoredis).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import indiredis  # noqa: E402
from indiredis.core.channel import Channel  # noqa: E402
from indiredis.core.sides import Reset  # noqa: E402
from indiredis.links.mqtt import MqttIndiSideLink  # noqa: E402
from tests.support.servers import MosquittoProcess  # noqa: E402


class Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.lines += 1


async def pair(port: int, seconds: float, stable_seconds: float) -> int:
    """Run two client sides with one id for ``seconds``; the Resets they put."""
    host = indiredis.mqtt_server("127.0.0.1", port)
    links = [MqttIndiSideLink("twin", host) for _ in range(2)]
    from_indi: list[Channel[object]] = [Channel(1_000_000) for _ in links]
    for link in links:
        link.stable_seconds = stable_seconds
    tasks = [
        asyncio.ensure_future(link.run(c, Channel(1_000_000)))
        for link, c in zip(links, from_indi, strict=True)
    ]
    await asyncio.sleep(seconds)  # a measuring window, not a synchronisation
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return sum(isinstance(entry[0], Reset) for channel in from_indi for entry in channel._items)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    counter = Counter()
    logging.getLogger("indiredis").addHandler(counter)
    logging.getLogger("indiredis").setLevel(logging.INFO)
    with MosquittoProcess() as broker:
        for label, stable in (
            ("reference: back-off reset on connecting", 0.0),
            ("now: reset after 10 s up", 10.0),
        ):
            before_takeovers, before_lines = broker.output().count("already connected"), counter.lines
            started = time.monotonic()
            resets = asyncio.run(pair(broker.port, args.seconds, stable))
            elapsed = time.monotonic() - started
            takeovers = broker.output().count("already connected") - before_takeovers
            lines = counter.lines - before_lines
            print(
                f"{label}: {takeovers} takeovers ({takeovers / elapsed:.2f}/s), {lines} log lines, "
                f"{resets} Resets in {elapsed:.0f} s"
            )


if __name__ == "__main__":
    main()
