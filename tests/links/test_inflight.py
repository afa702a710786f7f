"""The Redis link's flow control: one batch in flight while the next is prepared, and nothing taken
is lost until Redis confirms it (no Redis here: the "sends" are coroutines the test controls)."""

from __future__ import annotations

import asyncio

import pytest

from indiredis.links.client_side.inflight import InFlight


def test_a_launched_batch_is_unconfirmed_until_settled() -> None:
    async def scenario() -> None:
        flow: InFlight[str] = InFlight()
        sent = asyncio.Event()

        async def send() -> None:
            await sent.wait()

        flow.take(["a", "b"])
        flow.launch(send())
        assert flow.busy
        flow.take(["c"])  # the next batch, being prepared
        assert flow.unconfirmed == ["a", "b", "c"]
        sent.set()
        await flow.settle()
        assert not flow.busy and flow.unconfirmed == ["c"]
        flow.confirm()  # its writes were awaited
        assert flow.unconfirmed == []

    asyncio.run(scenario())


def test_a_failed_batch_keeps_its_items_for_the_channel_in_order() -> None:
    async def scenario() -> None:
        flow: InFlight[str] = InFlight()

        async def fail() -> None:
            raise ConnectionError("gone")

        flow.take(["a"])
        flow.launch(fail())
        flow.take(["b"])
        with pytest.raises(ConnectionError):
            await flow.settle()
        assert flow.abandon() == ["a", "b"]
        assert flow.unconfirmed == [] and not flow.busy

    asyncio.run(scenario())


def test_abandon_cancels_the_batch_in_flight() -> None:
    async def scenario() -> None:
        flow: InFlight[int] = InFlight()
        cancelled = asyncio.Event()

        async def hang() -> None:
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                cancelled.set()
                raise

        flow.take([1, 2])
        flow.launch(hang())
        await asyncio.sleep(0)  # it runs
        flow.take([3])
        assert flow.abandon() == [1, 2, 3]  # at once: nothing waits before the items are handed back
        assert flow.unconfirmed == [] and not flow.busy
        await flow.stopped()
        assert cancelled.is_set()

    asyncio.run(scenario())


def test_only_one_batch_in_flight() -> None:
    async def scenario() -> None:
        flow: InFlight[int] = InFlight()

        async def nothing() -> None:
            pass

        flow.take([1])
        flow.launch(nothing())
        flow.take([2])
        second = nothing()
        with pytest.raises(AssertionError):
            flow.launch(second)
        second.close()
        await flow.settle()
        flow.launch(nothing())
        await flow.settle()
        assert flow.unconfirmed == []

    asyncio.run(scenario())
