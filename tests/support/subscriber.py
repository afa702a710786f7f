"""A Redis pub/sub subscriber for tests and benchmarks: collects a channel's publications in a thread."""

from __future__ import annotations

import threading
import time
from typing import Any

from .servers import wait_for


class Subscriber:
    """Subscribes to ``channel`` (and waits until Redis counts the subscription); ``items`` holds
    (arrival time from ``time.perf_counter``, data) for every publication since."""

    def __init__(self, rconn: Any, channel: str = "from_indi") -> None:
        self.items: list[tuple[float, bytes]] = []
        self.pubsub = rconn.pubsub(ignore_subscribe_messages=True)
        self.pubsub.subscribe(channel)
        wait_for(lambda: rconn.pubsub_numsub(channel)[0][1] >= 1, what="the subscription")
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._listen, daemon=True)
        self.thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            item = self.pubsub.get_message(timeout=0.2)
            if item is not None:
                self.items.append((time.perf_counter(), item["data"]))

    def seen(self, needle: bytes) -> bool:
        """Whether a publication so far contains ``needle``."""
        return any(needle in data for _, data in list(self.items))

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.pubsub.close()
