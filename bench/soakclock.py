"""Run an ``indiredis-<service>`` script with a wall clock the soak bench can step (``bench/soak.py``).

    python bench/soakclock.py OFFSET_FILE /path/to/indiredis-<service> --config X.ini

``OFFSET_FILE`` holds a number of seconds (``0``, ``-3600``); the script's process sees
``time.time()``, ``time.time_ns()`` and ``datetime.now()`` / ``utcnow()`` moved by it, re-read at
most every 0.2 s, so a step takes effect while the daemon runs, as an NTP step would.  The
monotonic clock is left alone (NTP never steps it), and so are the kernel's own times (file
modification times).  libfaketime (Debian ``faketime``) was tried first: with
``FAKETIME_DONT_FAKE_MONOTONIC=1`` its ``clock_nanosleep`` makes Python's ``time.sleep`` fail with
EINVAL (paho-mqtt sleeps so between reconnections), and without it the monotonic clock steps too.
"""

from __future__ import annotations

import datetime as _datetime
import runpy
import sys
import time as _time
from pathlib import Path

_real_time = _time.time
_real_time_ns = _time.time_ns
_monotonic = _time.monotonic


class _Offset:
    """The offset in the file, cached for 0.2 s."""

    def __init__(self, path: Path) -> None:
        self.path, self.value, self.read_at = path, 0.0, -1.0

    def __call__(self) -> float:
        now = _monotonic()
        if now - self.read_at > 0.2:
            self.read_at = now
            try:
                self.value = float(self.path.read_text().strip() or 0)
            except (OSError, ValueError):
                pass
        return self.value


def install(path: Path) -> None:
    """Make this process's wall clock follow the offset in ``path``."""
    offset = _Offset(path)

    def fake_time() -> float:
        return _real_time() + offset()

    def fake_time_ns() -> int:
        return _real_time_ns() + int(offset() * 1e9)

    class SteppedDatetime(_datetime.datetime):
        @classmethod
        def now(cls, tz: _datetime.tzinfo | None = None) -> SteppedDatetime:
            return cls.fromtimestamp(fake_time(), tz)

        @classmethod
        def utcnow(cls) -> SteppedDatetime:
            return cls.fromtimestamp(fake_time(), _datetime.UTC).replace(tzinfo=None)

    _time.time = fake_time
    _time.time_ns = fake_time_ns
    _datetime.datetime = SteppedDatetime  # type: ignore[misc]  # before indiredis imports it


def main() -> None:
    """Install the clock, then run the script as its own ``__main__`` with the remaining arguments."""
    install(Path(sys.argv[1]))
    script = sys.argv[2]
    sys.argv = sys.argv[2:]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
