"""The sd_notify protocol: READY, STATUS, WATCHDOG, RELOADING, STOPPING to systemd.

Sent by ``systemd.daemon.notify`` (Debian: python3-systemd), which takes ``@`` abstract socket names
too and sends text as UTF-8, as systemd wants it.  Off when ``$NOTIFY_SOCKET`` is unset (not run by
systemd) or the module is missing (a developer's venv).
"""

from __future__ import annotations

import os
import time

try:
    from systemd.daemon import notify as sd_notify
except ImportError:  # outside systemd there is nobody to tell
    sd_notify = None


class Notifier:
    """Sends state lines to the socket named by ``$NOTIFY_SOCKET``."""

    def __init__(self) -> None:
        self.enabled = sd_notify is not None and bool(os.environ.get("NOTIFY_SOCKET"))

    def send(self, *lines: str) -> None:
        """Send one datagram of ``KEY=value`` lines; errors are ignored (systemd may be gone)."""
        if self.enabled:
            try:
                sd_notify("\n".join(lines).encode("utf-8", "replace").decode())  # no lone surrogate
            except OSError:
                pass

    def ready(self) -> None:
        self.send("READY=1")

    def status(self, text: str) -> None:
        self.send("STATUS=" + " ".join(text.split())[:1000])

    def watchdog(self) -> None:
        self.send("WATCHDOG=1")

    def reloading(self) -> None:
        self.send("RELOADING=1", f"MONOTONIC_USEC={time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000}")

    def stopping(self) -> None:
        self.send("STOPPING=1")


def watchdog_interval() -> float | None:
    """Seconds between WATCHDOG=1 pings (half of ``$WATCHDOG_USEC``), or None when not asked."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
