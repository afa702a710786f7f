"""Logging to the journal with structured fields under systemd, plain lines on stderr otherwise.

Under systemd (stderr is the journal stream ``$JOURNAL_STREAM`` names) records go through
``systemd.journal.JournalHandler``: the priority from the level, the fields a log call gives with
``extra=`` (see :mod:`indiredis.events`) and ``INDIREDIS_BRIDGE`` on every record.  In a terminal, or
without the module, a line of time, level and message.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

try:
    from systemd.journal import JournalHandler
except ImportError:  # a developer's venv: plain lines
    JournalHandler = None


def stderr_is_journal() -> bool:
    """True when systemd connected stderr to the journal (``$JOURNAL_STREAM`` names it)."""
    try:
        status = os.fstat(sys.stderr.fileno())
    except (OSError, ValueError):
        return False
    return os.environ.get("JOURNAL_STREAM", "") == f"{status.st_dev}:{status.st_ino}"


def setup_logging(level: str = "info", bridge: str = "") -> None:
    """One handler on the root logger, for the journal or a terminal; ``bridge``: INDIREDIS_BRIDGE."""
    if JournalHandler is not None and stderr_is_journal():
        fields = {"INDIREDIS_BRIDGE": bridge} if bridge else {}
        handler = JournalHandler(SYSLOG_IDENTIFIER=Path(sys.argv[0]).name, **fields)
        logging.basicConfig(handlers=[handler], format="%(message)s", force=True)
    else:
        logging.basicConfig(format="%(asctime)s %(levelname)s %(message)s", force=True)
    set_level(level)


def set_level(level: str) -> None:
    """The root logger's level by name (``info``, ``debug`` ...)."""
    logging.getLogger().setLevel(getattr(logging, level.upper(), logging.INFO))
