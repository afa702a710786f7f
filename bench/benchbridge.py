"""Start a bridge as a process of its own for a benchmark (so it does not share this process's GIL)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def start_bridge(factory: str, arguments: str) -> subprocess.Popen[bytes]:
    """Run ``indiredis.bridges.<factory>(<arguments>)`` under ``run_blocking`` in a child Python,
    logging warnings and worse to stderr.  ``arguments`` is Python source that may use ``indiredis``."""
    program = (
        "import logging, indiredis\n"
        f"from indiredis.bridges import {factory}\n"
        "from indiredis.core.bridge import run_blocking\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        f"run_blocking({factory}({arguments}))\n"
    )
    return subprocess.Popen([sys.executable, "-c", program], cwd=ROOT)
