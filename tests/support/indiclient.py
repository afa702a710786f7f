"""What a GUI does through indiredis.tools, as the end-to-end tests need it."""

from __future__ import annotations

import indiredis
from indiredis import tools
from indiredis.hosts import RedisServer
from tests.support.servers import RedisProcess, wait_for


def prefixed(redis_proc: RedisProcess, prefix: str) -> RedisServer:
    """A redis_server tuple of its own on ``redis_proc``: keys and channels named after ``prefix``."""
    return indiredis.redis_server(
        host="127.0.0.1",
        port=redis_proc.port,
        keyprefix=f"{prefix}_",
        to_indi_channel=f"{prefix}_to",
        from_indi_channel=f"{prefix}_from",
    )


def connect_device(rconn, server, device: str) -> None:
    """Switch ``device``'s CONNECTION on and wait until it says so.

    As an INDI client must, it first waits for the device to define CONNECTION: before that no driver
    owns the device, and the request would be dropped (with a log line), as indiserver drops it.
    """
    wait_for(
        lambda: "CONNECTION" in tools.properties(rconn, server, device),
        timeout=20,
        what=f"{device} to define CONNECTION",
    )
    tools.newswitchvector(rconn, server, "CONNECTION", device, {"CONNECT": "On", "DISCONNECT": "Off"})
    wait_for(
        lambda: tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", device).get("value") == "On",
        timeout=20,
        what=f"{device} to connect",
    )
