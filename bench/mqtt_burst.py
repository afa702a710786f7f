"""A burst through the MQTT chain: indiserver stand-in -> inditomqtt -> mosquitto -> mqtttoredis -> Redis.

    .venv/bin/python bench/mqtt_burst.py [--messages 10000]

A fake indiserver writes ``--messages`` numbered setNumberVector messages at
once; a Redis subscriber counts what arrives on the from_indi channel.  Prints
how many arrived (the original package loses most of such a burst), and the
rate.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import indiredis  # noqa: E402
from indiredis import bridges  # noqa: E402
from tests.support.bridgethread import run_bridge  # noqa: E402
from tests.support.fakeindi import FakeIndiServer  # noqa: E402
from tests.support.servers import MosquittoProcess, RedisProcess, wait_for  # noqa: E402
from tests.support.watchers import RedisWatcher  # noqa: E402

DEF = (
    b'<defNumberVector device="Stream" name="SEQ" state="Idle" perm="ro">'
    b'<defNumber name="RUN" format="%.0f" min="0" max="0" step="0">1</defNumber>'
    b'<defNumber name="N" format="%.0f" min="0" max="0" step="0">0</defNumber></defNumberVector>'
)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=10_000)
    count = parser.parse_args().messages
    with RedisProcess() as redis_proc, MosquittoProcess() as broker, FakeIndiServer() as fake:
        mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
        redis_host = indiredis.redis_server("127.0.0.1", redis_proc.port)
        instrument = bridges.make_inditomqtt(indiredis.indi_server("127.0.0.1", fake.port), "obs", mqtt_host)
        gui = bridges.make_mqtttoredis("gui", mqtt_host, redis_host)
        watcher = RedisWatcher(redis_proc.port).start()
        with run_bridge(instrument), run_bridge(gui):
            wait_for(lambda: instrument.ready and gui.ready and fake.clients, what="bridges")
            fake.send(DEF)
            burst = "".join(
                f'<setNumberVector device="Stream" name="SEQ" timestamp="2026-01-01T00:00:00">'
                f'<oneNumber name="RUN">1</oneNumber><oneNumber name="N">{n}</oneNumber></setNumberVector>'
                for n in range(1, count + 1)
            ).encode()
            start = time.monotonic()
            fake.send(burst)
            try:
                wait_for(lambda: len(watcher.snapshot()) >= count, timeout=120, what="the burst")
            except TimeoutError:
                pass
            elapsed = time.monotonic() - start
        watcher.stop()
    numbers = {arrival.number for arrival in watcher.snapshot()}
    print(
        f"burst of {count} setNumberVector through inditomqtt -> mosquitto -> mqtttoredis: "
        f"{len(numbers)} arrived ({len(numbers) / count:.1%}), {len(numbers) / elapsed:.0f} msg/s, "
        f"missing {count - len(numbers)}"
    )


if __name__ == "__main__":
    main()
