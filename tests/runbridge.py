"""Run one bridge in this process, for the fault suite: ``runbridge.py '{"factory": ..., "kwargs": {...}}'``.

Host arguments are given as dicts of the host tuple's fields.  Besides the
bridge's own log, it prints ``READY`` / ``NOT READY`` and ``STATUS <text>``
lines whenever they change, as the daemon would tell systemd.
"""

from __future__ import annotations

import asyncio
import json
import logging
import signal
import sys

import indiredis
from indiredis import bridges

HOST_TUPLES = {"indi_host": indiredis.indi_server, "redis_host": indiredis.redis_server, "mqtt_host": indiredis.mqtt_server}


async def main(spec: dict) -> None:
    kwargs = {key: HOST_TUPLES[key](**value) if key in HOST_TUPLES else value for key, value in spec["kwargs"].items()}
    bridge = getattr(bridges, spec["factory"])(**kwargs)
    task = asyncio.ensure_future(bridge.run())
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)
    log = logging.getLogger("runbridge")
    ready, status = None, None
    while not task.done():
        if bridge.ready != ready:
            ready = bridge.ready
            log.info("READY" if ready else "NOT READY")
        if bridge.status != status:
            status = bridge.status
            log.info("STATUS %s", status)
        await asyncio.wait([task], timeout=0.1)
    try:
        task.result()
    except asyncio.CancelledError:
        pass


if __name__ == "__main__":
    logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    asyncio.run(main(json.loads(sys.argv[1])))
