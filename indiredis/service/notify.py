"""The sd_notify protocol: READY, STATUS, WATCHDOG, RELOADING, STOPPING to systemd.

Uses the ``sdnotify`` library when installed (Debian: python3-sdnotify, pure
Python, no libsystemd binding to build), else the same datagram by hand (with
``@`` abstract socket names too); a no-op when ``$NOTIFY_SOCKET`` is unset
(not run by systemd).  ``sdnotify`` 0.3 encodes text as Latin-1 while systemd
wants UTF-8 (and ignores a STATUS= that is not), so text is handed to it as
the Latin-1 reading of its UTF-8 bytes: what goes on the wire is UTF-8.
"""

from __future__ import annotations

import os
import socket
import time

try:
    import sdnotify
except ImportError:  # the datagram is simple enough to send by hand
    sdnotify = None


class Notifier:
    """Sends state lines to the socket named by ``$NOTIFY_SOCKET``."""

    def __init__(self, use_library: bool = True) -> None:
        self.address = os.environ.get("NOTIFY_SOCKET", "")
        self._socket: socket.socket | None = None
        self._library = (
            sdnotify.SystemdNotifier() if (use_library and sdnotify is not None and self.address) else None
        )
        if self.address and self._library is None:
            target = "\0" + self.address[1:] if self.address.startswith("@") else self.address
            self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._target = target

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    def send(self, *lines: str) -> None:
        """Send one datagram of ``KEY=value`` lines; errors are ignored (systemd may be gone)."""
        if self._library is not None:
            self._library.notify("\n".join(lines).encode("utf-8", "replace").decode("latin-1"))
            return
        if self._socket is None:
            return
        try:
            self._socket.sendto("\n".join(lines).encode("utf-8", "replace"), self._target)
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
