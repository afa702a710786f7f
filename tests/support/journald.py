"""A real systemd-journald for the tests, in a mount namespace of its own.

PID 1 here is not systemd, so there is no journal to log to.  :class:`PrivateJournal` starts
Debian's ``systemd-journald`` for a journal namespace (``systemd-journald NAME``, as
``systemd-journald@NAME.service`` would) inside a private mount namespace (``unshare --mount``,
root only) whose ``/run/systemd`` and journal folders are empty tmpfs, and binds its socket folder
over ``/run/systemd/journal``: a process started with :meth:`PrivateJournal.command` sends its
native-protocol records (``systemd.journal.JournalHandler``) there, and :meth:`entries` reads
them back with ``journalctl -o json``.  Nothing of it is seen outside the namespace, nor outlives it.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path

from tests.support.servers import wait_for

JOURNALD = "/lib/systemd/systemd-journald"
NAMESPACE = "indiredistest"

# /run/log is where a journal goes when /var/log/journal does not exist (volatile storage)
_SCRIPT = f"""set -e
mount -t tmpfs tmpfs /run/systemd
mkdir -p /run/log && mount -t tmpfs tmpfs /run/log
if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
mkdir /run/systemd/journal /run/systemd/journal.{NAMESPACE}
mount --bind /run/systemd/journal.{NAMESPACE} /run/systemd/journal
SYSTEMD_LOG_TARGET=console exec {JOURNALD} {NAMESPACE}
"""


def missing_tools() -> list[str]:
    """What a private journal needs and this machine lacks (make test installs systemd and util-linux)."""
    found = {
        "systemd-journald": Path(JOURNALD).exists(),
        "unshare": shutil.which("unshare"),
        "nsenter": shutil.which("nsenter"),
    }
    return [name for name, there in found.items() if not there]


class PrivateJournal:
    """systemd-journald in a mount namespace of its own (see the module docstring)."""

    def __init__(self, folder: Path) -> None:
        self.log_path = folder / "journald.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> PrivateJournal:
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SCRIPT],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        socket = Path(f"/proc/{self.proc.pid}/root/run/systemd/journal/socket")
        wait_for(lambda: socket.is_socket() or self.proc.poll() is not None, what="journald's socket")
        if self.proc.poll() is not None:
            raise RuntimeError(f"systemd-journald did not start:\n{self.log_path.read_text()}")
        return self

    def command(self, *argv: str) -> list[str]:
        """``argv`` run in the journal's mount namespace (nsenter execs it: the pid is the program's)."""
        assert self.proc is not None
        return ["nsenter", f"--mount=/proc/{self.proc.pid}/ns/mnt", "--", *argv]

    def entries(self, *matches: str) -> list[dict[str, str]]:
        """The journal's entries, oldest first, as journalctl -o json gives them; ``matches``: FIELD=value."""
        result = subprocess.run(
            self.command("journalctl", f"--namespace={NAMESPACE}", "-o", "json", "--no-pager", *matches),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if result.returncode not in (0, 1):  # 1: no entries (older journalctl versions)
            raise RuntimeError(f"journalctl failed: {result.stderr}")
        return [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]

    def wait_for_entry(self, what: str, timeout: float = 20, **fields: str) -> dict[str, str]:
        """The first entry with all of ``fields``, waiting for it."""
        matches = [f"{name}={value}" for name, value in fields.items()]
        return wait_for(lambda: next(iter(self.entries(*matches)), None), timeout=timeout, what=what)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def __enter__(self) -> PrivateJournal:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
