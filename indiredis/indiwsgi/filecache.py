"""The newest answers made from files of the blob folder (previews, image statistics), bounded.

A file is known by its path, size and modification time, so a file written again is made again.
At most ``size`` answers are kept (the least recently used forgotten first), and one thread at a
time makes the answer for a file (the others wait and take it): the lock for that is held only
while someone wants the file, so files viewed once cost nothing afterwards.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class FileCache(Generic[T]):
    """``make(path)``'s newest answers, by file (name, size, mtime); one maker per file at a time."""

    def __init__(self, make: Callable[[Path], T], size: int) -> None:
        self.make, self.size = make, size
        self._items: OrderedDict[tuple[str, int, int], T] = OrderedDict()
        self._lock = threading.Lock()
        self._making: dict[str, tuple[threading.Lock, int]] = {}  # path -> (its lock, threads wanting it)

    def get(self, path: Path) -> T:
        """The answer for ``path`` (made now if not cached); what ``make`` raises, or OSError."""
        stat = path.stat()
        key, name = (str(path), stat.st_size, stat.st_mtime_ns), str(path)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            making, wanting = self._making.get(name, (threading.Lock(), 0))
            self._making[name] = (making, wanting + 1)
        try:
            with making:
                with self._lock:
                    if key in self._items:
                        return self._items[key]
                answer = self.make(path)
                with self._lock:
                    self._items[key] = answer
                    while len(self._items) > self.size:
                        self._items.popitem(last=False)
                return answer
        finally:
            with self._lock:
                making, wanting = self._making[name]
                if wanting > 1:
                    self._making[name] = (making, wanting - 1)
                else:
                    del self._making[name]

    def making(self) -> int:
        """The files whose answer some thread wants now (their locks)."""
        with self._lock:
            return len(self._making)
