"""A bounded queue between the two sides of a bridge, with explicit overflow accounting.

A :class:`Channel` is bounded twice: in items (``maxsize``) and in bytes
(``max_bytes``, what its items hold in memory as :func:`item_bytes` counts it;
0: no byte bound).  One item is always let in, however large.

While its consumer is up a channel applies back-pressure: ``put`` waits for
room, so nothing is lost however fast the producer is.  When the consumer
reports itself down (Redis or the broker unreachable), ``put`` stops waiting;
beyond the byte bound the *oldest BLOB* (a message with BLOB data) is dropped
first, so numbers and texts keep flowing up to the item bound, and beyond the
item bound the oldest item.  Drops are counted (BLOBs and their bytes apart);
the consumer reports the count in one log line when it comes back.
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass
from typing import Generic, TypeVar

from ..errors import InvalidValue
from ..protocol.messages import Message, NewBLOBVector, SetBLOBVector

T = TypeVar("T")

DEFAULT_BUFFER_SIZE = 10_000


def item_bytes(item: object) -> int:
    """The bytes an item holds, as the byte bounds count them: a message's bytes, and for a BLOB
    message its parsed base64 text too, or the size of the file its data streamed to (a frame in
    the blob folder not recorded yet: so bounded, the frames on their way to the store bound the
    folder's bytes retention may not delete yet); 0 for anything else."""
    if not isinstance(item, Message):
        return 0
    if item.is_blob:
        return len(item.raw) + sum(
            len(member.text) + (member.blob.size if member.blob is not None else 0) for member in item.members
        )
    return len(item.raw)


def is_blob_data(item: object) -> bool:
    """True for a message carrying BLOB data (dropped first when over the byte bound)."""
    return isinstance(item, SetBLOBVector | NewBLOBVector)


@dataclass
class Drops:
    """What a channel dropped since the last :meth:`Channel.take_drops`."""

    messages: int = 0  # every item dropped, BLOBs included
    blobs: int = 0  # of which messages with BLOB data
    blob_bytes: int = 0  # what those held


class Channel(Generic[T]):
    """Bounded FIFO for one direction of a bridge (see module docstring)."""

    def __init__(self, maxsize: int = DEFAULT_BUFFER_SIZE, name: str = "", max_bytes: int = 0) -> None:
        if maxsize < 1:
            raise InvalidValue("a channel holds at least one item")
        self.maxsize = maxsize
        self.max_bytes = max_bytes
        self.name = name
        self._items: collections.deque[tuple[T, int]] = collections.deque()
        self._bytes = 0
        self._not_empty = asyncio.Event()
        self._not_full = asyncio.Event()
        self._not_full.set()
        self._consumer_up = True
        self._drops = Drops()

    def __len__(self) -> int:
        return len(self._items)

    @property
    def bytes(self) -> int:
        """What the items held now hold in memory (:func:`item_bytes`)."""
        return self._bytes

    @property
    def dropped(self) -> int:
        """Items dropped since the last :meth:`take_dropped` / :meth:`take_drops`."""
        return self._drops.messages

    @property
    def consumer_up(self) -> bool:
        """Whether the consumer is taking items (back-pressure) or down (drop oldest)."""
        return self._consumer_up

    def set_consumer_up(self, up: bool) -> None:  # noqa: FBT001 - a setter: the one argument is the value
        """Switch between back-pressure (up) and drop-oldest (down) on overflow."""
        self._consumer_up = up
        if not up:
            self._not_full.set()  # release blocked producers; they now drop instead

    def take_dropped(self) -> int:
        """Return and reset the number of items dropped since the last call."""
        return self.take_drops().messages

    def take_drops(self) -> Drops:
        """Return and reset what was dropped since the last call."""
        drops, self._drops = self._drops, Drops()
        return drops

    def _full(self, size: int) -> bool:
        if not self._items:
            return False  # one item always passes, however large
        if len(self._items) >= self.maxsize:
            return True
        return bool(self.max_bytes) and self._bytes + size > self.max_bytes

    async def put(self, item: T) -> None:
        """Append ``item``; waits while there is no room for it and the consumer is up."""
        size = item_bytes(item)
        while self._consumer_up and self._items and self._full(size):
            self._not_full.clear()
            await self._not_full.wait()
        self._append(item, size)

    def put_nowait(self, item: T) -> None:
        """Append ``item`` now; beyond the bounds drop the oldest BLOBs, then the oldest items, counted."""
        self._append(item, item_bytes(item))

    def _append(self, item: T, size: int) -> None:
        self._items.append((item, size))
        self._bytes += size
        if len(self._items) > self.maxsize or (self.max_bytes and self._bytes > self.max_bytes):
            self._shed()
        self._not_empty.set()

    def _shed(self) -> None:
        """Drop what is beyond the bounds (never the newest item)."""
        if self.max_bytes and self._bytes > self.max_bytes:
            index = 0
            while self._bytes > self.max_bytes and index < len(self._items) - 1:
                item, size = self._items[index]
                if is_blob_data(item):
                    del self._items[index]
                    self._count_drop(item, size)
                else:
                    index += 1
        while len(self._items) > self.maxsize or (
            self.max_bytes and self._bytes > self.max_bytes and len(self._items) > 1
        ):
            item, size = self._items.popleft()
            self._count_drop(item, size)

    def _count_drop(self, item: T, size: int) -> None:
        self._bytes -= size
        self._drops.messages += 1
        if is_blob_data(item):
            self._drops.blobs += 1
            self._drops.blob_bytes += size

    async def get_batch(self, limit: int = 500, max_bytes: int = 0) -> list[T]:
        """Wait for at least one item and return up to ``limit`` of them, oldest first (and, with
        ``max_bytes``, no more bytes than that, but always at least one item)."""
        while not self._items:
            self._not_empty.clear()
            await self._not_empty.wait()
        items = self._items
        if max_bytes:
            batch: list[T] = []
            taken = 0
            while items and len(batch) < limit:
                size = items[0][1]
                if batch and taken + size > max_bytes:
                    break
                batch.append(items.popleft()[0])
                taken += size
        else:
            pairs = [items.popleft() for _ in range(min(limit, len(items)))]
            batch = [item for item, _ in pairs]
            taken = sum(size for _, size in pairs)
        self._bytes -= taken
        if not self._items:
            self._not_empty.clear()
        self._not_full.set()
        return batch

    async def get(self) -> T:
        """Wait for and return the oldest item."""
        return (await self.get_batch(1))[0]

    def push_front(self, items: list[T]) -> None:
        """Return unprocessed ``items`` to the head of the queue (after a failed delivery)."""
        for item in reversed(items):
            size = item_bytes(item)
            self._items.appendleft((item, size))
            self._bytes += size
        while len(self._items) > self.maxsize:
            item, size = self._items.popleft()
            self._count_drop(item, size)
        if self._items:
            self._not_empty.set()
