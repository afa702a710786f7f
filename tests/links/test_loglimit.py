"""LogLimiter: at most a burst of lines per window per source, the rest counted in one line."""

from __future__ import annotations

import logging

import pytest

from indiredis.links.loglimit import LogLimiter

log = logging.getLogger("test.loglimit")


def test_beyond_the_burst_lines_are_counted_and_said_once_when_the_source_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    limiter = LogLimiter(log, "INDI client 127.0.0.1:50412", burst=3)
    for index in range(1000):
        limiter.warning("bad input %d", index)
    limiter.close()
    assert [r.getMessage() for r in caplog.records] == [
        "bad input 0",
        "bad input 1",
        "bad input 2",
        "… and 997 more from INDI client 127.0.0.1:50412 in the last minute",
    ]


def test_a_new_window_logs_again_after_saying_what_the_last_one_left_out(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    limiter = LogLimiter(log, "peer", burst=1, window=0.0)  # every line opens a new window
    limiter.warning("one")
    limiter.warning("two")
    limiter.close()
    assert [r.getMessage() for r in caplog.records] == ["one", "two"]
    limiter = LogLimiter(log, "peer", burst=1, window=3600)
    limiter.warning("a")
    limiter.warning("b")
    limiter.flush()
    limiter.warning("c")  # same window: still counted
    limiter.close()
    assert [r.getMessage() for r in caplog.records][2:] == [
        "a",
        "… and 1 more from peer in the last minute",
        "… and 1 more from peer in the last minute",
    ]
