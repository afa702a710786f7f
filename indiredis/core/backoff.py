"""Capped exponential back-off between reconnection attempts, shared by the links and the web client."""

from __future__ import annotations

MAX_BACKOFF = 5.0


class Backoff:
    """Capped exponential back-off: 0.5 s, 1 s, 2 s, 4 s, 5 s, 5 s ..."""

    def __init__(self, initial: float = 0.5, cap: float = MAX_BACKOFF) -> None:
        self.initial = initial
        self.cap = cap
        self._next = initial

    def next(self) -> float:
        """The delay before the next try."""
        delay = self._next
        self._next = min(self._next * 2, self.cap)
        return delay

    def reset(self) -> None:
        """Start again from the shortest delay (after a success)."""
        self._next = self.initial
