"""Flow control of the Redis link's two-stage pipeline: one batch in flight while the next is prepared.

The link takes a batch from the from_indi channel, has the store prepare its writes, and sends them
while it takes and prepares the next one, so that Python and Redis work at once.  Order is kept by
never having more than one batch in flight, and nothing is lost on a failure because every item taken
stays *unconfirmed* until Redis has confirmed the batch that carries it.  :class:`InFlight` holds
exactly that state; its contract:

- :meth:`InFlight.take`: items taken from the channel are unconfirmed (after those taken before);
- :meth:`InFlight.settle`: wait until the batch in flight (if any) is confirmed, and its items with
  it; if it failed, the error is raised and its items stay unconfirmed;
- :meth:`InFlight.launch`: send a prepared batch in the background, carrying every item taken and
  not sent (only when nothing is in flight: :meth:`~InFlight.settle` first);
- :meth:`InFlight.confirm`: the items taken and not in flight were written another way (awaited);
- :meth:`InFlight.abandon`: return every unconfirmed item, in the order taken, for the head of the
  channel, at once, and cancel the batch in flight; :meth:`InFlight.stopped` waits for it to end.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, Generic, TypeVar

from ...core.tasks import cancel_and_wait

T = TypeVar("T")


class InFlight(Generic[T]):
    """At most one batch in flight, and the items not confirmed yet; see the module docstring."""

    def __init__(self) -> None:
        self._sending: asyncio.Future[Any] | None = None
        self._in_flight: list[T] = []  # the items of the batch being sent
        self._taken: list[T] = []  # items taken and not sent yet
        self._stopping: asyncio.Future[Any] | None = None  # abandoned, not ended yet

    @property
    def busy(self) -> bool:
        """Whether a batch is in flight."""
        return self._sending is not None

    @property
    def unconfirmed(self) -> list[T]:
        """Every item not confirmed yet, in the order taken."""
        return self._in_flight + self._taken

    def take(self, items: list[T]) -> None:
        """Items were taken from the channel: unconfirmed until the batch carrying them is."""
        self._taken += items

    async def settle(self) -> None:
        """Wait until the batch in flight is confirmed (re-raising its failure, its items kept)."""
        if self._sending is not None:
            await self._sending
            self._sending, self._in_flight = None, []

    def launch(self, send: Coroutine[Any, Any, Any]) -> None:
        """Run ``send`` (the writes of every item taken and not sent) in the background."""
        assert self._sending is None, "a batch is in flight already: settle() first"
        self._sending = asyncio.ensure_future(send)
        self._in_flight, self._taken = self._taken, []

    def confirm(self) -> None:
        """The items taken and not in flight are in Redis (their writes were awaited)."""
        self._taken = []

    def abandon(self) -> list[T]:
        """Every unconfirmed item, in the order taken (then none is), at once; the batch in flight is
        cancelled, and :meth:`stopped` waits for it.  At once, because waiting first could itself be
        cut short by a cancellation, and items not yet back in the channel would be lost."""
        items = self.unconfirmed
        if self._sending is not None:
            self._sending.cancel()
            self._stopping = self._sending
        self._sending, self._in_flight, self._taken = None, [], []
        return items

    async def stopped(self) -> None:
        """Wait until the batch cancelled by :meth:`abandon` (if any) has ended."""
        if self._stopping is not None:
            stopping, self._stopping = self._stopping, None
            await cancel_and_wait([stopping])
