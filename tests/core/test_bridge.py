"""Bridge: ready and status from both sides' states, both sides sharing the two channels, and both sides
cleaned up when the bridge is cancelled or one side fails.

The sides are stand-ins that record what happened to them; tasks are synchronised by events and turns
of the event loop, never by time.
"""

from __future__ import annotations

import asyncio

import pytest

from indiredis.core.bridge import Bridge
from indiredis.core.channel import Channel
from indiredis.core.sides import FromIndiItem, LinkState
from indiredis.protocol.messages import Message
from tests.support.eventloop import run, run_ready_tasks


class StandInSide:
    """A side that serves until cancelled (or fails when told to), then cleans up over several loop
    turns, as a link closing its connection or stopping its drivers does."""

    def __init__(
        self, what: str, fail_with: Exception | None = None, cleanup_turns: int = 3, summary: str = ""
    ) -> None:
        self.state = LinkState(what)
        self.summary = summary
        self.fail_with = fail_with
        self.cleanup_turns = cleanup_turns
        self.started = asyncio.Event()
        self.cleaned_up = False
        self.channels: tuple[Channel[FromIndiItem], Channel[Message]] | None = None

    async def run(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        self.channels = (from_indi, to_indi)
        self.started.set()
        try:
            if self.fail_with is not None:
                raise self.fail_with
            await asyncio.Event().wait()  # serve forever
        finally:
            try:
                await run_ready_tasks(self.cleanup_turns)  # clean-up that itself awaits
            finally:
                self.cleaned_up = True


async def started(bridge: Bridge) -> asyncio.Task[None]:
    """The bridge running in a task, once both its sides have started."""
    task = asyncio.ensure_future(bridge.run())
    for side in (bridge.indi_side, bridge.client_side):
        assert isinstance(side, StandInSide)
        await side.started.wait()
    return task


def test_ready_only_while_both_sides_are_connected() -> None:
    indi, client = StandInSide("indiserver"), StandInSide("Redis")
    bridge = Bridge("test", indi, client)
    assert not bridge.ready
    indi.state.up("connected to indiserver")
    assert not bridge.ready
    client.state.up("connected to Redis")
    assert bridge.ready
    indi.state.down("waiting for indiserver", "connection refused")
    assert not bridge.ready


def test_status_joins_both_sides_states() -> None:
    indi, client = StandInSide("indiserver"), StandInSide("Redis")
    bridge = Bridge("test", indi, client)
    assert bridge.status == "connecting to indiserver; connecting to Redis"
    indi.state.up("connected to indiserver 127.0.0.1:7624")
    client.state.down("waiting for Redis: connection refused", "connection refused")
    assert bridge.status == "connected to indiserver 127.0.0.1:7624; waiting for Redis: connection refused"


def test_status_adds_a_sides_summary_the_client_sides_first() -> None:
    expected = "connecting to a; connecting to b; 3 devices"
    assert Bridge("t", StandInSide("a"), StandInSide("b", summary="3 devices")).status == expected
    assert Bridge("t", StandInSide("a", summary="3 devices"), StandInSide("b")).status == expected
    both = Bridge("t", StandInSide("a", summary="indi's"), StandInSide("b", summary="client's"))
    assert both.status == "connecting to a; connecting to b; client's"


def test_both_sides_run_on_the_bridges_two_bounded_channels() -> None:
    async def body() -> None:
        indi, client = StandInSide("indiserver"), StandInSide("Redis")
        bridge = Bridge("test", indi, client, buffer_size=7)
        task = await started(bridge)
        assert indi.channels == client.channels == (bridge.from_indi, bridge.to_indi)
        assert bridge.from_indi.maxsize == bridge.to_indi.maxsize == 7
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(body)


def test_cancelling_the_bridge_cleans_up_both_sides_before_it_returns() -> None:
    async def body() -> None:
        indi = StandInSide("indiserver", cleanup_turns=2)
        client = StandInSide("Redis", cleanup_turns=8)  # finishes well after the other side
        bridge = Bridge("test", indi, client)
        task = await started(bridge)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert indi.cleaned_up and client.cleaned_up

    run(body)


@pytest.mark.parametrize("failing", ["indi", "client"])
def test_a_failing_side_stops_the_bridge_and_the_other_side_is_cleaned_up(failing: str) -> None:
    async def body() -> None:
        error = RuntimeError("broken side")
        indi = StandInSide("indiserver", fail_with=error if failing == "indi" else None, cleanup_turns=1)
        client = StandInSide("Redis", fail_with=error if failing == "client" else None, cleanup_turns=6)
        bridge = Bridge("test", indi, client)
        with pytest.raises(RuntimeError, match="broken side"):
            await bridge.run()
        assert indi.cleaned_up and client.cleaned_up

    run(body)
