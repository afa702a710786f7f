"""What every link shares: capped back-off, short error descriptions, and the reconnect loop that keeps
the link's state (a loss logged once, not per retry)."""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl

import pytest

from indiredis.core.channel import Channel
from indiredis.core.sides import FromIndiItem
from indiredis.links.base import Backoff, Link, describe_error
from indiredis.protocol.messages import Message
from tests.support.eventloop import run


def test_backoff_doubles_up_to_its_cap_and_resets() -> None:
    backoff = Backoff()
    assert [backoff.next() for _ in range(6)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0]
    backoff.reset()
    assert backoff.next() == 0.5


@pytest.mark.parametrize(
    ("error", "text"),
    [
        (
            ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed ('127.0.0.1', 1)"),
            "connection refused",
        ),
        (OSError("Error 111 connecting to 127.0.0.1:1. Connection refused."), "connection refused"),
        (EOFError(), "EOFError"),
        (RuntimeError("first line\nsecond line"), "first line"),
    ],
)
def test_describe_error_is_short(error: BaseException, text: str) -> None:
    assert describe_error(error) == text


def test_describe_error_finds_the_cause_behind_a_wrapper() -> None:
    try:
        try:
            raise ConnectionResetError(errno.ECONNRESET, "reset")
        except OSError as inner:
            raise RuntimeError("library wrapper") from inner
    except RuntimeError as outer:
        assert describe_error(outer) == "connection reset by peer"


def test_describe_error_of_tls() -> None:
    error = ssl.SSLCertVerificationError(
        1, "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed (_ssl.c:1000)"
    )
    assert describe_error(error) == "certificate verify failed"


class FlakyLink(Link):
    """Fails its first sessions, then serves until cancelled."""

    what = "flaky"

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.backoff = Backoff(0.0, 0.0)  # no waiting between tries in a test
        self.failures = failures
        self.sessions = 0
        self.serving = asyncio.Event()

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        self.sessions += 1
        if self.sessions <= self.failures:
            raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
        self.connected("connected to flaky")
        self.serving.set()
        await asyncio.Event().wait()


def test_run_reconnects_and_logs_the_loss_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indiredis")

    async def body() -> None:
        link = FlakyLink(failures=3)
        task = asyncio.ensure_future(link.run(Channel(10), Channel(10)))
        await link.serving.wait()
        assert link.sessions == 4 and link.state.connected and link.state.text == "connected to flaky"
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(body)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == ["flaky unavailable: connection refused", "connected to flaky"]


class CountingBackoff(Backoff):
    """No waiting, and a count of the resets."""

    def __init__(self) -> None:
        super().__init__(0.0, 0.0)
        self.resets = 0

    def reset(self) -> None:
        self.resets += 1
        super().reset()


class FlappingLink(Link):
    """Its first sessions connect and are dropped at once; then one stays up."""

    what = "flappy"
    stable_seconds = 0.05

    def __init__(self, drops: int) -> None:
        super().__init__()
        self.backoff = CountingBackoff()
        self.drops = drops
        self.sessions = 0
        self.stable = asyncio.Event()

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        self.sessions += 1
        self.connected("connected to flappy")
        if self.sessions <= self.drops:
            return  # the peer closed it right after accepting it
        await asyncio.Event().wait()

    def stayed_up(self) -> None:
        super().stayed_up()
        self.stable.set()


def test_short_lived_connections_keep_the_backoff_and_are_reported_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="indiredis")
    link = FlappingLink(drops=8)

    async def body() -> None:
        task = asyncio.ensure_future(link.run(Channel(10), Channel(10)))
        await link.stable.wait()
        assert link.sessions == 9 and link.backoff.resets == 1 and not link.flapping
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(body)
    lines = [record.getMessage() for record in caplog.records]
    assert lines == [
        "connected to flappy",
        "flappy unavailable: connection closed",
        "connected to flappy",
        "flappy unavailable: connection closed",
        "connected to flappy",
        "flappy unavailable: connection closed 3 times in a row within 0.05 s of connecting "
        "(likely cause: flappy closes the connection right after accepting it)",
        "connected to flappy",  # once it stayed up: restored
    ]


def test_a_failure_to_connect_ends_the_flapping_and_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="indiredis")

    class ThenRefused(FlappingLink):
        async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
            if self.sessions == self.drops:
                self.sessions += 1
                raise ConnectionRefusedError(errno.ECONNREFUSED, "refused")
            await super().session(from_indi, to_indi)

    link = ThenRefused(drops=4)

    async def body() -> None:
        task = asyncio.ensure_future(link.run(Channel(10), Channel(10)))
        await link.stable.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    run(body)
    lines = [record.getMessage() for record in caplog.records]
    assert lines[-3:] == [
        "flappy unavailable: connection closed 3 times in a row within 0.05 s of connecting "
        "(likely cause: flappy closes the connection right after accepting it)",
        "flappy unavailable: connection refused",
        "connected to flappy",
    ]
