"""The ``indiredis-<service>`` daemons as real processes for the service tests: configuration folders,
start (optionally as systemd would under a private journal) and stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.support.journald import PrivateJournal
from tests.support.notifysocket import NotifySocket

BIN = Path(sys.executable).parent
WATCHDOG_USEC = 400_000


def write_config(folder: Path, service: str, common: str, own: str) -> Path:
    """``common.ini`` and ``<service>.ini`` in ``folder``; the latter's path."""
    (folder / "common.ini").write_text(common)
    path = folder / f"{service}.ini"
    path.write_text(own)
    return path


def inditoredis_common(indi_port: int, redis_port: int) -> str:
    """``common.ini`` for an inditoredis from indiserver at ``indi_port`` to Redis at ``redis_port``."""
    return f"[indi]\nhost = 127.0.0.1\nport = {indi_port}\n[redis]\nhost = 127.0.0.1\nport = {redis_port}\n"


def start_daemon(
    service: str, config: Path, notify: NotifySocket, journal: PrivateJournal | None = None, **extra_env: str
) -> subprocess.Popen[bytes]:
    """``indiredis-<service> --config config`` telling ``notify`` what it does, its output in
    ``<service>.log`` beside ``config``.  With ``journal``: as systemd starts it, in the journal's
    namespace with stderr the journal stream (``$JOURNAL_STREAM``)."""
    env = {**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": str(WATCHDOG_USEC), **extra_env}
    command = [str(BIN / f"indiredis-{service}"), "--config", str(config)]
    with open(config.parent / f"{service}.log", "wb") as log:
        if journal is not None:
            status = os.fstat(log.fileno())
            env["JOURNAL_STREAM"] = f"{status.st_dev}:{status.st_ino}"
            command = journal.command(*command)
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def stop_daemon(proc: subprocess.Popen[bytes]) -> int:
    """SIGTERM; the exit status.  A daemon still running 20 s later is asked (SIGUSR1) to log where its
    tasks wait, then killed, and the test fails with its log's end."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGUSR1)
        try:
            proc.wait(2)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        program = next(Path(a).name for a in proc.args if Path(a).name.startswith("indiredis-"))
        log = Path(proc.args[proc.args.index("--config") + 1]).parent / f"{program[10:]}.log"
        raise AssertionError(f"{program} did not stop within 20 s:\n{log.read_text()[-6000:]}") from None
