"""``make run``: a self-contained demonstration on one machine.

Starts a local ``redis-server`` and an ``indiserver`` with the telescope and
CCD simulators (unless something already listens on their ports), then runs
inditoredis between them until interrupted, writing BLOBs to ``./blobs``.
Inspect the result with ``redis-cli smembers indi_devices``.
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from typing import IO

from . import indi_server, redis_server
from .bridges import inditoredis

log = logging.getLogger("indiredis.demo")  # not __name__: this module runs as __main__

OUTPUT_LINES = 10  # of a server that did not start, shown
SIMULATORS = ["indi_simulator_telescope", "indi_simulator_ccd"]  #: the drivers indiserver runs


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _start(command: list[str], port: int) -> None:
    """Start ``command`` unless ``port`` already answers; wait until it listens there.

    Its output goes to a temporary file, so that a server that does not come up is reported with
    its own last words (indiserver's ``bind: Address already in use``, redis-server's config errors),
    not only with the port it did not open."""
    if _listening(port):
        log.info("something already listens on port %d; using it", port)
        return
    if not shutil.which(command[0]):
        sys.exit(f"{command[0]} is not installed: run `make run`, which installs it")
    output = tempfile.TemporaryFile()
    proc = subprocess.Popen(command, start_new_session=True, stdout=output, stderr=subprocess.STDOUT)
    atexit.register(lambda: os.killpg(proc.pid, signal.SIGTERM) if proc.poll() is None else None)
    deadline = time.monotonic() + 15
    while not _listening(port):
        exited = proc.poll() is not None
        if exited or time.monotonic() > deadline:
            sys.exit(_not_started(command[0], port, proc.returncode if exited else None, output))
        time.sleep(0.1)
    output.close()  # the server's later output is of no interest here (and must not fill the disk)
    log.info("started %s on port %d", command[0], port)


def _not_started(program: str, port: int, status: int | None, output: IO[bytes]) -> str:
    """The message for a server that did not come up: how it ended and its last lines of output."""
    output.seek(0)
    lines = output.read().decode(errors="replace").splitlines()[-OUTPUT_LINES:]
    how = f"exited with status {status}" if status is not None else "still not listening after 15 s"
    said = "".join(f"\n    {line}" for line in lines) if lines else " (it printed nothing)"
    return f"{program} did not start on port {port}: {how}; its last output:{said}"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    """The demonstration's ports and blob folder, from the command line."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--redis-port", type=int, default=6379)
    parser.add_argument("--indi-port", type=int, default=7624)
    parser.add_argument("--blobs", default="blobs", help="blob folder (default ./blobs)")
    return parser.parse_args(argv)


def _redis_command(port: int) -> list[str]:
    """A throw-away redis-server on loopback: nothing saved to disk."""
    return ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]


def _indiserver_command(port: int) -> list[str]:
    """An indiserver with the telescope and CCD simulators.  ``-u``: a local socket of its own, so that
    another indiserver (on any port, with the default /tmp/indiserver) does not stop this one from
    starting."""
    return ["indiserver", "-p", str(port), "-u", f"/tmp/indiserver-demo-{port}", *SIMULATORS]


def main(argv: list[str] | None = None) -> None:
    """Run the demonstration (see the module docstring)."""
    args = _arguments(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    # stop the servers we started (atexit) on SIGTERM too
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    _start(_redis_command(args.redis_port), args.redis_port)
    _start(_indiserver_command(args.indi_port), args.indi_port)
    log.info(
        "running inditoredis; try: redis-cli -p %d smembers indi_devices  (Ctrl-C stops)", args.redis_port
    )
    inditoredis(
        indi_server("127.0.0.1", args.indi_port),
        redis_server("127.0.0.1", args.redis_port),
        blob_folder=os.path.abspath(args.blobs),
    )


if __name__ == "__main__":
    main()
