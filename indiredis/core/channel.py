"""A bounded queue between the two sides of a bridge, with explicit overflow accounting.

While its consumer is up a :class:`Channel` applies back-pressure: ``put``
waits for room, so nothing is lost however fast the producer is.  When the
consumer reports itself down (Redis or the broker unreachable), ``put`` stops
waiting and, once the buffer is full, drops the *oldest* item and counts it;
the consumer reports the count in one log line when it comes back.
"""

from __future__ import annotations

import asyncio
import collections
from typing import Generic, TypeVar

T = TypeVar("T")

DEFAULT_BUFFER_SIZE = 10_000


class Channel(Generic[T]):
    """Bounded FIFO for one direction of a bridge (see module docstring)."""

    def __init__(self, maxsize: int = DEFAULT_BUFFER_SIZE, name: str = "") -> None:
        if maxsize < 1:
            raise ValueError("a channel holds at least one item")
        self.maxsize = maxsize
        self.name = name
        self._items: collections.deque[T] = collections.deque()
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._consumer_up = True
        self.dropped = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def consumer_up(self) -> bool:
        """Whether the consumer is taking items (back-pressure) or down (drop oldest)."""
        return self._consumer_up

    def set_consumer_up(self, up: bool) -> None:
        """Switch between back-pressure (up) and drop-oldest (down) on overflow."""
        self._consumer_up = up
        if not up:
            self._not_full.set()  # release blocked producers; they now drop instead

    def take_dropped(self) -> int:
        """Return and reset the number of items dropped since the last call."""
        dropped, self.dropped = self.dropped, 0
        return dropped

    async def put(self, item: T) -> None:
        """Append ``item``; waits while full and the consumer is up."""
        while self._consumer_up and len(self._items) >= self.maxsize:
            self._not_full.clear()
            await self._not_full.wait()
        self.put_nowait(item)

    def put_nowait(self, item: T) -> None:
        """Append ``item`` now; when full, drop the oldest item and count it."""
        if len(self._items) >= self.maxsize:
            self._items.popleft()
            self.dropped += 1
        self._items.append(item)
        self._not_empty.set()

    async def get_batch(self, limit: int = 500) -> list[T]:
        """Wait for at least one item and return up to ``limit`` of them, oldest first."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        count = min(limit, len(self._items))
        batch = [self._items.popleft() for _ in range(count)]
        if not self._items:
            self._not_empty.clear()
        self._not_full.set()
        return batch

    async def get(self) -> T:
        """Wait for and return the oldest item."""
        return (await self.get_batch(1))[0]

    def push_front(self, items: list[T]) -> None:
        """Return unprocessed ``items`` to the head of the queue (after a failed delivery)."""
        self._items.extendleft(reversed(items))
        while len(self._items) > self.maxsize:
            self._items.popleft()
            self.dropped += 1
        if self._items:
            self._not_empty.set()
