"""A stand-in service that hangs its event loop for a while, run under the real daemon shell.

``python hung_service.py CONFIG``: the daemon runs a service that becomes
ready, then blocks the loop for one second, marking the start and end of the
hang with datagrams of its own on ``$NOTIFY_SOCKET`` (``HANG=begin`` /
``HANG=end``), so a test can see that no ``WATCHDOG=1`` came in between.
"""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

from indiredis.service.config import load
from indiredis.service.daemon import Daemon
from indiredis.service.notify import Notifier


class HangingService:
    def __init__(self) -> None:
        self.ready = False
        self.status = "about to hang"
        self.marker = Notifier()

    async def run(self) -> None:
        self.ready = True
        await asyncio.sleep(0.5)  # a few pings first
        self.marker.send("HANG=begin")
        time.sleep(1.0)  # the loop is stuck: nothing else on it runs
        self.marker.send("HANG=end")
        self.status = "recovered"
        await asyncio.Event().wait()


async def main(config: Path) -> int:
    return await Daemon(load("inditoredis", config), config, service=HangingService()).run()


if __name__ == "__main__":
    sys.exit(asyncio.run(main(Path(sys.argv[1]))))
