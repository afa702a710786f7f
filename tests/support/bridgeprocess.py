"""One bridge run as its real daemon (``indiredis-<service>``) in a process of its own, for the fault chains.

The daemon gets a configuration folder of its own (written from the keyword arguments of the bridge's
``make_*`` factory) and a stand-in systemd notification socket, so that tests can read its READY=1 and
STATUS= lines, its log, and the pids of its drivers.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.notifysocket import NotifySocket
from tests.support.servers import free_port

#: the stand-in driver: streams numbered setNumberVector messages (``STANDIN_RATE`` per second)
STANDIN = str(Path(__file__).resolve().parent / "standin_driver.py")

SERVICE_OF = {
    "make_inditoredis": "inditoredis",
    "make_driverstoredis": "driverstoredis",
    "make_inditomqtt": "inditomqtt",
    "make_driverstomqtt": "driverstomqtt",
    "make_mqtttoredis": "mqtttoredis",
    "make_mqtttoport": "mqtttoport",
}
HOST_SECTIONS = {"indi_host": "indi", "redis_host": "redis", "mqtt_host": "mqtt"}
SERVICE_KEYS = {"port": "listen_port", "host": "listen_host"}


class BridgeProcess:
    """One bridge run as its real daemon (``indiredis-<service>``) with a configuration folder of its own,
    telling a stand-in systemd notification socket what it does."""

    def __init__(self, factory: str, kwargs: dict, workdir: Path, env: dict[str, str] | None = None) -> None:
        self.factory, self.kwargs = factory, kwargs
        self.service = SERVICE_OF[factory]
        self.folder = workdir / f"{self.service}-{free_port()}"
        self.folder.mkdir(parents=True)
        self.log_path = self.folder / "daemon.log"
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.notify: NotifySocket | None = None

    def write_config(self) -> Path:
        lines = (
            ["[service]", f"blob_folder = {self.folder / 'blobs'}"]
            if self.service in ("inditoredis", "driverstoredis", "mqtttoredis")
            else ["[service]"]
        )
        sections: list[str] = []
        for key, value in self.kwargs.items():
            if key in HOST_SECTIONS:
                sections += [f"[{HOST_SECTIONS[key]}]"] + [f"{k} = {v}" for k, v in value.items()]
            elif key == "drivers":
                lines.append(f"drivers = {' '.join(value)}")
            else:
                lines.append(f"{SERVICE_KEYS.get(key, key)} = {value}")
        path = self.folder / f"{self.service}.ini"
        path.write_text("\n".join(lines + sections) + "\n")
        return path

    def start(self) -> BridgeProcess:
        config = self.write_config()
        self.notify = NotifySocket(self.folder)
        env = {**self.env, "NOTIFY_SOCKET": str(self.notify.path), "WATCHDOG_USEC": "2000000"}
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / f"indiredis-{self.service}"), "--config", str(config)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,
            )
        return self

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def statuses(self) -> list[str]:
        """Every STATUS= the daemon sent."""
        lines = self.notify.snapshot() if self.notify else []
        return [line[len("STATUS=") :] for line in lines if line.startswith("STATUS=")]

    @property
    def ready(self) -> bool:
        """READY=1 was sent, and the latest status says both sides are connected."""
        statuses = self.statuses()
        return (
            self.notify is not None
            and self.notify.has("READY=1")
            and bool(statuses)
            and "waiting for" not in statuses[-1]
            and "connecting to" not in statuses[-1]
        )

    def dropped(self) -> int:
        """Messages the bridge said it dropped during outages."""
        return sum(int(m) for m in re.findall(r"dropped (\d+) messages", self.log))

    def lost(self) -> int:
        """Messages the bridge said went missing on MQTT (gaps in a publisher's sequence numbers)."""
        return sum(int(m) for m in re.findall(r"lost (\d+) messages on MQTT", self.log))

    def children(self) -> list[int]:
        """Pids of this bridge's child processes (its drivers)."""
        if not self.proc:
            return []
        path = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        try:
            return [int(pid) for pid in path.read_text().split()]
        except OSError:
            return []

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        if self.notify:
            self.notify.close()
