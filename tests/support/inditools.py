"""INDI's own command-line clients (Debian's indi-bin) and a raw INDI client socket, for the port tests."""

from __future__ import annotations

import re
import socket
import subprocess
import time
from pathlib import Path

from tests.support.servers import wait_for

HOST = "127.0.0.1"


def getprop(
    port: int, *specs: str, timeout: int = 2, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``indi_getprop`` against ``port``."""
    return subprocess.run(
        ["indi_getprop", "-h", HOST, "-p", str(port), "-t", str(timeout), *specs],
        capture_output=True,
        text=True,
        timeout=timeout + 30,
        cwd=cwd,
    )


def value(port: int, spec: str) -> str:
    """One element's value (``indi_getprop -1``), '' when it is not there."""
    return getprop(port, "-1", spec).stdout.strip()


def wait_listed(port: int, spec: str, text: str, what: str) -> str:
    """Wait until ``indi_getprop`` lists ``text`` for ``spec``; the listing."""
    return wait_for(
        lambda: (listing := getprop(port, spec).stdout) and text in listing and listing,
        timeout=30,
        interval=0.5,
        what=what,
    )


def setprop(port: int, *specs: str) -> subprocess.CompletedProcess[str]:
    """Run ``indi_setprop`` against ``port`` (it sends, shuts its socket for writing and exits)."""
    return subprocess.run(
        ["indi_setprop", "-h", HOST, "-p", str(port), "-t", "10", *specs],
        capture_output=True,
        text=True,
        timeout=40,
    )


def listing_names(port: int) -> set[str]:
    """``device.property.element`` of every readable element indi_getprop lists (values left out)."""
    out = getprop(port, timeout=3).stdout
    return {line.split("=", 1)[0] for line in out.splitlines() if "=" in line}


class RawClient:
    """A plain INDI client on a socket: send XML, collect what the server sends."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection((HOST, port), timeout=5)
        self.received = bytearray()

    def send(self, xml: str) -> None:
        self.sock.sendall(xml.encode())

    def read_until(self, pattern: bytes, timeout: float = 30, start: int = 0) -> re.Match[bytes]:
        """Read until ``pattern`` matches what was received from offset ``start``; return the match."""
        deadline = time.monotonic() + timeout
        regex = re.compile(pattern, re.S)
        while True:
            found = regex.search(self.received, start)
            if found:
                return found
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no {pattern!r} from the server within {timeout} s")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(1 << 20)
            except TimeoutError:
                continue
            if not data:
                raise ConnectionError("server closed the connection")
            self.received += data

    def close(self) -> None:
        self.sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def wait_until_listed(port: int, *names: str, timeout: float = 30) -> set[str]:
    """Wait until indi_getprop lists every ``device.property.element`` of ``names``; return the listing."""
    return wait_for(
        lambda: (found := listing_names(port)) >= set(names) and found,
        timeout=timeout,
        interval=0.3,
        what=f"{names} listed on port {port}",
    )
