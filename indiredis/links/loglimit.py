"""Warnings from one source, rate-limited: a flood of bad input costs a bounded number of log lines.

A source (an INDI client of the port, say) may log :data:`BURST` lines per
:data:`WINDOW` seconds; what comes beyond is counted, and when the window ends
(or the source goes, :meth:`LogLimiter.close`) one line says how many were
left out::

    … and 312 more from INDI client 127.0.0.1:50412 in the last minute

so nothing is lost silently, and journald's own rate limit never has to hide
the service's other messages.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

BURST = 10  # lines per window
WINDOW = 60.0  # seconds


class LogLimiter:
    """Rate-limited warnings of one source (see the module docstring)."""

    def __init__(
        self,
        logger: logging.Logger,
        source: str,
        extra: dict[str, Any] | None = None,
        burst: int = BURST,
        window: float = WINDOW,
    ) -> None:
        """``source`` names it in the summary line; ``extra``: the records' journal fields."""
        self.logger = logger
        self.source = source
        self.burst = burst
        self.window = window
        self.extra = extra or {}
        self.suppressed = 0
        self._logged = 0
        self._start = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def warning(self, text: str, *args: object) -> None:
        """Log ``text % args`` if this window has room left, else count it."""
        now = time.monotonic()
        if now - self._start >= self.window:
            self._new_window(now)
        if self._logged < self.burst:
            self._logged += 1
            self.logger.warning(text, *args, extra=self.extra)
            return
        self.suppressed += 1
        if self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:  # no loop: the summary waits for the next line or close()
                return
            self._timer = loop.call_later(self._start + self.window - now, self._window_ended)

    def _window_ended(self) -> None:
        self._timer = None
        self._new_window(time.monotonic())

    def _new_window(self, now: float) -> None:
        self.flush()
        self._start, self._logged = now, 0

    def flush(self) -> None:
        """One line for what was left out, if anything was."""
        if self.suppressed:
            self.logger.warning(
                "… and %d more from %s in the last minute", self.suppressed, self.source, extra=self.extra
            )
            self.suppressed = 0

    def close(self) -> None:
        """The source is gone: say what was left out now."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.flush()
