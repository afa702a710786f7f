"""Start a bridge as a process of its own for a benchmark (so it does not share this process's GIL)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent


def start_bridge(
    factory: str, arguments: str, stderr: IO[bytes] | None = None, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Run ``indiredis.bridges.<factory>(<arguments>)`` under ``run_blocking`` in a child Python,
    logging warnings and worse to stderr (or to the file ``stderr``).  ``arguments`` is Python
    source that may use ``indiredis``; ``env`` replaces the child's environment."""
    program = (
        "import logging, indiredis\n"
        f"from indiredis.bridges import {factory}\n"
        "from indiredis.core.bridge import run_blocking\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        f"run_blocking({factory}({arguments}))\n"
    )
    return subprocess.Popen([sys.executable, "-c", program], cwd=ROOT, stderr=stderr, env=env)


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) process ``pid`` has used so far, from /proc; 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
