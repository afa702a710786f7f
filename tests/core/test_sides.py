"""The sides' contract: LinkState changes only through its methods, logs each change once, and the links
and the driver pool offer every member a bridge uses."""

from __future__ import annotations

import logging

import pytest

from indiredis.core.sides import FromIndiItem, LinkState, Reset
from indiredis.links.base import Link
from indiredis.links.indi_side.drivers import DriverPool
from indiredis.protocol.messages import Message


def test_state_starts_disconnected() -> None:
    state = LinkState("Redis")
    assert not state.connected and state.text == "connecting to Redis"


def test_state_is_read_only_from_outside() -> None:
    state = LinkState("Redis")
    with pytest.raises(AttributeError):
        state.connected = True  # type: ignore[misc]  # the point of the test
    with pytest.raises(AttributeError):
        state.text = "x"  # type: ignore[misc]  # the point of the test


def test_up_down_and_degraded(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indiredis")
    state = LinkState("Redis")
    state.up("connected to Redis h:1")
    assert state.connected and state.text == "connected to Redis h:1"
    state.down("waiting for Redis: connection refused, retry in 1 s", "connection refused")
    state.down("waiting for Redis: connection refused, retry in 2 s", "connection refused")
    assert not state.connected and state.text.endswith("retry in 2 s")
    state.degraded("1 of 2 drivers running; fake_ccd exit status 1")
    assert state.connected and state.text.startswith("1 of 2")
    lines = [r.getMessage() for r in caplog.records]
    assert lines == ["connected to Redis h:1", "Redis unavailable: connection refused"]  # each change once


def test_reset_carries_nothing() -> None:
    assert Reset() == Reset()
    item: FromIndiItem = Reset()
    assert not isinstance(item, Message)


def test_the_driver_pool_offers_every_member_of_a_side() -> None:
    pool = DriverPool(["indi_simulator_telescope"])  # not started: nothing runs
    assert isinstance(pool.state, LinkState) and pool.summary == "" and callable(pool.run)


def test_a_link_says_nothing_in_its_summary_unless_it_has_something_to_say() -> None:
    class Quiet(Link):
        async def session(self, from_indi: object, to_indi: object) -> None:
            pass

    assert Quiet().summary == ""
    assert isinstance(Quiet().state, LinkState)


def test_a_link_must_implement_its_session() -> None:
    class NoSession(Link):
        pass

    with pytest.raises(TypeError):
        NoSession()  # type: ignore[abstract]  # the point of the test
