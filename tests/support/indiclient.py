"""What a GUI does through indiredis.tools, as the end-to-end tests need it."""

from __future__ import annotations

from indiredis import tools
from tests.support.servers import wait_for


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
