"""A stand-in for systemd's notification socket: collects what daemons send with sd_notify."""

from __future__ import annotations

import importlib.util
import socket
import threading
from pathlib import Path


class NotifySocket:
    """A datagram socket collecting sd_notify lines, as systemd's would."""

    def __init__(self, folder: Path) -> None:
        if importlib.util.find_spec("systemd") is None:  # the daemons would tell nothing: say why
            raise RuntimeError("systemd-python is missing from this venv: run `make venv` (it installs it)")
        self.path = folder / "notify.sock"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(self.path))
        self.lines: list[str] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        while True:
            try:
                data = self.sock.recv(65536)
            except OSError:
                return
            with self._lock:
                self.lines.extend(data.decode().splitlines())

    def snapshot(self) -> list[str]:
        with self._lock:
            return list(self.lines)

    def has(self, prefix: str, after: int = 0) -> bool:
        return any(line.startswith(prefix) for line in self.snapshot()[after:])

    def index(self, prefix: str, after: int = 0) -> int:
        lines = self.snapshot()
        return next(i for i in range(after, len(lines)) if lines[i].startswith(prefix))

    def close(self) -> None:
        self.sock.close()
