"""A real Redis that answers but refuses writes (MISCONF, OOM, READONLY), under driverstoredis with a fake
driver run as a real child process (tests/support/fakedriver.py, which reports every message it gets),
and under inditoredis with the real indiserver and telescope simulator.

While Redis refuses: one log line naming the cause, no traceback, no getProperties sent to the driver
again and again (the old link reconnected on every refusal and asked for every property each time).
Once Redis accepts writes again: everything that waited is written, nothing lost.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstoredis, make_inditoredis
from indiredis.links.base import Backoff
from indiredis.links.client_side.refusals import refusal
from tests.support.bridgethread import run_bridge
from tests.support.inditools import wait_until_listed
from tests.support.servers import IndiServerProcess, RedisProcess, free_port, wait_for
from tests.support.subscriber import Subscriber

FAKE = Path(__file__).resolve().parent.parent / "support" / "fakedriver.py"
VALUES = range(1, 30)


def fake_driver(folder: Path) -> str:
    """An executable that runs the fake driver (device ``Fake``) with this interpreter."""
    script = folder / "fake_driver"
    script.write_text(f"#!/bin/sh\nFAKE_DEVICE=Fake exec '{sys.executable}' '{FAKE}'\n")
    script.chmod(0o755)
    return str(script)


def bgsave(rconn: redis.Redis) -> bool:
    """Start a snapshot (False while one is already under way)."""
    try:
        rconn.bgsave()
    except redis.ResponseError:
        return False
    return True


def saved(rconn: redis.Redis, status: str) -> bool:
    persistence = rconn.info("persistence")
    return not persistence["rdb_bgsave_in_progress"] and persistence["rdb_last_bgsave_status"] == status


def misconf(rconn: redis.Redis, proc: RedisProcess) -> Callable[[], None]:
    """Snapshots into a directory nobody can create files in (root neither): BGSAVE fails, and with
    stop-writes-on-bgsave-error (the default) Redis refuses writes with MISCONF."""
    rconn.config_set("save", "3600 1")
    rconn.config_set("dir", "/proc")
    wait_for(lambda: bgsave(rconn), what="a snapshot to start")
    wait_for(lambda: saved(rconn, "err"), what="the snapshot to fail")

    def accept() -> None:
        rconn.config_set("dir", str(proc.workdir))
        wait_for(lambda: saved(rconn, "err") and bgsave(rconn), what="a snapshot to start")
        wait_for(lambda: saved(rconn, "ok"), what="the snapshot to succeed")

    return accept


def oom(rconn: redis.Redis, proc: RedisProcess) -> Callable[[], None]:
    """maxmemory far below what Redis uses, without eviction: writes are refused with OOM."""
    rconn.config_set("maxmemory-policy", "noeviction")
    rconn.config_set("maxmemory", "1")
    return lambda: rconn.config_set("maxmemory", "0")


def readonly(rconn: redis.Redis, proc: RedisProcess) -> Callable[[], None]:
    """A replica of a master that is not there: it serves what it has and refuses writes (READONLY)."""
    rconn.replicaof("127.0.0.1", free_port())
    return lambda: rconn.replicaof("NO", "ONE")


STATES: dict[str, Callable[[redis.Redis, RedisProcess], Callable[[], None]]] = {
    "MISCONF": misconf,
    "OOM": oom,
    "READONLY": readonly,
}


@pytest.fixture
def protected_redis():
    """Redis on loopback that lets loopback clients change ``dir`` (a protected setting)."""
    with RedisProcess(extra=["--enable-protected-configs", "local"]) as proc:
        yield proc


def refusals(rconn: redis.Redis, code: str) -> int:
    """How many commands Redis refused with ``code`` so far."""
    return int(rconn.info("errorstats").get(f"errorstat_{code}", {}).get("count", 0))


def published(subscriber: Subscriber, needle: bytes) -> int:
    return sum(needle in data for _, data in list(subscriber.items))


def asked_at_start(subscriber: Subscriber) -> int:
    """How often the driver said it got getProperties, once the subscriber has what the driver answered
    to the first (its definitions, published after its "got getProperties" line: the keys can be in
    Redis before the subscriber's thread has read the publications)."""
    wait_for(lambda: published(subscriber, b"<defNumberVector"), what="the driver's definitions published")
    return published(subscriber, b"got getProperties")


@pytest.mark.parametrize("code", list(STATES))
def test_writes_refused_are_waited_out_in_one_line_and_nothing_is_lost(
    code: str, protected_redis: RedisProcess, tmp_path: Path, caplog: Any
) -> None:
    caplog.set_level(logging.INFO, logger="indiredis")
    server = indiredis.redis_server(host="127.0.0.1", port=protected_redis.port)
    rconn = redis.Redis(host="127.0.0.1", port=protected_redis.port, socket_timeout=5)
    subscriber = Subscriber(rconn, server.from_indi_channel)
    bridge = make_driverstoredis([fake_driver(tmp_path)], server)
    bridge.client_side.backoff = Backoff(0.05, 0.2)  # many retries within the test
    try:
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and "COORD" in tools.properties(rconn, server, "Fake"), what="Fake")
            asked_before = asked_at_start(subscriber)
            accept = STATES[code](rconn, protected_redis)
            mark = len(caplog.records)
            for value in VALUES:  # the driver answers each: traffic that waits for Redis
                tools.newnumbervector(rconn, server, "COORD", "Fake", {"RA": str(value), "DEC": "0"})
            wait_for(lambda: not bridge.ready, what="the bridge to notice")
            # ten refused writes of the bridge: with the old link, ten reconnections and getProperties
            wait_for(lambda: refusals(rconn, code) >= 10, timeout=20, what="Redis to refuse ten writes")
            assert code in bridge.status, bridge.status
            accept()
            wait_for(lambda: bridge.ready, timeout=15, what="the bridge to find Redis writable")
            wait_for(
                lambda: tools.elements_dict(rconn, server, "RA", "COORD", "Fake").get("value") == "29",
                what="the last value sent during the refusal",
            )
            # what the driver got during the refusal and after is published once Redis accepts writes
            asked = published(subscriber, b"got getProperties") - asked_before
    finally:
        subscriber.close()
        rconn.close()
    records = caplog.records[mark:]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    lines = [r.getMessage() for r in records]
    causes = [line for line in lines if code in line]
    assert len(causes) == 1, lines  # one line names the cause, however many retries
    assert causes[0].startswith(f"Redis unavailable: refusing writes ({code} "), causes[0]
    assert len([r for r in records if r.levelno >= logging.WARNING]) == 1, lines
    assert len(lines) <= 3, lines  # and "connected to Redis" when it accepts writes again
    assert asked <= 1  # no getProperties storm (nothing was dropped: not even one was needed)
    # nothing lost: the driver's answer to every request made during the refusal was stored
    for value in VALUES:
        assert published(subscriber, f'<oneNumber name="RA">{value}</oneNumber>'.encode()) >= 1, value
    reports = [data for _, data in subscriber.items if b"got newNumberVector Fake/COORD" in data]
    assert len(reports) >= len(VALUES)
    with redis.Redis(host="127.0.0.1", port=protected_redis.port) as check:
        assert set(tools.properties(check, server, "Fake")) == {"CMD", "COORD", "IMAGE"}


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (
            redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but it cannot"),
            "MISCONF Redis is configured to save RDB snapshots, but it cannot",
        ),
        (
            redis.exceptions.OutOfMemoryError(
                "command not allowed when used memory > 'maxmemory'. script: 8a39, on @user_script:1."
            ),
            "OOM command not allowed when used memory > 'maxmemory'.",
        ),
        (
            redis.exceptions.ReadOnlyError("You can't write against a read only replica."),
            "READONLY You can't write against a read only replica.",
        ),
        (
            redis.ResponseError(
                "Command # 1 (DEL k) of pipeline caused error: MISCONF Redis is configured to save"
            ),
            "MISCONF Redis is configured to save",
        ),
        (
            redis.ResponseError(
                "ERR Error running script (call to f_1): @user_script:1: @user_script: 1: -OOM command not "
                "allowed when used memory > 'maxmemory'."
            ),
            "OOM command not allowed when used memory > 'maxmemory'.",
        ),
        (redis.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"), None),
        (redis.ConnectionError("Connection refused"), None),
    ],
)
def test_refusal_names_the_cause_with_redis_text(error: Exception, expected: str | None) -> None:
    assert refusal(error) == expected


TELESCOPE = "Telescope Simulator"


def test_a_telescope_connected_while_redis_refuses_writes_is_whole_in_the_store_afterwards(
    simulators: IndiServerProcess, protected_redis: RedisProcess, caplog: Any
) -> None:
    """inditoredis behind the real indiserver: the mount connected while Redis refuses (MISCONF) defines
    its coordinates and streams them; once Redis accepts writes, every property indiserver lists is in
    the store, with the mount's values current, and the refusal was one line without a traceback."""
    caplog.set_level(logging.INFO, logger="indiredis")
    server = indiredis.redis_server(host="127.0.0.1", port=protected_redis.port)
    rconn = redis.Redis(host="127.0.0.1", port=protected_redis.port, socket_timeout=5)
    bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", simulators.port), server)
    try:
        with run_bridge(bridge):
            wait_for(
                lambda: "CONNECTION" in tools.properties(rconn, server, TELESCOPE), timeout=20, what="mount"
            )
            mark = len(caplog.records)
            accept = misconf(rconn, protected_redis)
            tools.newswitchvector(
                rconn, server, "CONNECTION", TELESCOPE, {"CONNECT": "On", "DISCONNECT": "Off"}
            )
            wait_for(lambda: not bridge.ready, what="the bridge to notice")
            # indiserver has the mount connected and its coordinates defined while Redis refuses them
            wait_until_listed(simulators.port, f"{TELESCOPE}.EQUATORIAL_EOD_COORD.RA")
            wait_for(lambda: refusals(rconn, "MISCONF") >= 3, timeout=20, what="three refused writes")
            accept()
            wait_for(lambda: bridge.ready, timeout=15, what="the bridge to find Redis writable")
            listed = wait_until_listed(simulators.port, f"{TELESCOPE}.EQUATORIAL_EOD_COORD.RA")
            wanted = {name for name in listed if name.startswith(f"{TELESCOPE}.")}

            def stored() -> set[str]:
                return {
                    f"{TELESCOPE}.{name}.{element}"
                    for name in tools.properties(rconn, server, TELESCOPE)
                    for element in tools.elements(rconn, server, name, TELESCOPE)
                }

            wait_for(lambda: stored() >= wanted, what="every property of the mount in the store")
            assert tools.elements_dict(rconn, server, "CONNECT", "CONNECTION", TELESCOPE)["value"] == "On"
    finally:
        rconn.close()
    records = caplog.records[mark:]
    assert not [r for r in records if r.exc_info], "a traceback was logged"
    lines = [r.getMessage() for r in records]
    assert len([line for line in lines if "MISCONF" in line]) == 1, lines
    assert len([r for r in records if r.levelno >= logging.WARNING]) == 1, lines


def test_messages_dropped_during_a_refusal_are_counted_and_asked_for_once(
    protected_redis: RedisProcess, tmp_path: Path, caplog: Any
) -> None:
    """A channel of 20 messages and 58 waiting (each request answered twice): the oldest are dropped, the
    count logged once Redis accepts writes, and the driver asked for every property exactly once."""
    caplog.set_level(logging.INFO, logger="indiredis")
    server = indiredis.redis_server(host="127.0.0.1", port=protected_redis.port)
    rconn = redis.Redis(host="127.0.0.1", port=protected_redis.port, socket_timeout=5)
    subscriber = Subscriber(rconn, server.from_indi_channel)
    bridge = make_driverstoredis([fake_driver(tmp_path)], server, buffer_size=20)
    try:
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and "COORD" in tools.properties(rconn, server, "Fake"), what="Fake")
            asked_before = asked_at_start(subscriber)
            accept = oom(rconn, protected_redis)
            mark = len(caplog.records)
            for value in VALUES:
                tools.newnumbervector(rconn, server, "COORD", "Fake", {"RA": str(value), "DEC": "0"})
            wait_for(lambda: not bridge.ready, what="the bridge to notice")
            # the driver answered all: its last report is in the channel (by then the oldest were dropped)
            wait_for(lambda: bridge.from_indi.dropped >= len(VALUES), what="the channel to overflow")
            accept()
            wait_for(lambda: bridge.ready, timeout=15, what="the bridge to find Redis writable")
            wait_for(lambda: published(subscriber, b"got getProperties") > asked_before, what="getProperties")
            # the newest were kept and written (the fake driver then defines COORD again with RA 0)
            wait_for(
                lambda: published(subscriber, b'<oneNumber name="RA">29</oneNumber>'),
                what="the last value, among the newest kept",
            )
            wait_for(
                lambda: set(tools.properties(rconn, server, "Fake")) == {"CMD", "COORD", "IMAGE"},
                what="Fake whole",
            )
            asked = published(subscriber, b"got getProperties") - asked_before
    finally:
        subscriber.close()
        rconn.close()
    assert asked == 1
    lines = [r.getMessage() for r in caplog.records[mark:]]
    assert not [r for r in caplog.records[mark:] if r.exc_info], "a traceback was logged"
    dropped = [line for line in lines if line.startswith("dropped ")]
    assert len(dropped) == 1 and "while Redis was unreachable" in dropped[0], lines
    assert len([line for line in lines if "OOM" in line]) == 1, lines


@pytest.mark.parametrize("code", ["OOM", "MISCONF"])
def test_client_commands_reach_the_driver_while_redis_refuses_writes(
    code: str, protected_redis: RedisProcess, tmp_path: Path, caplog: Any
) -> None:
    """An enableBLOB during a refusal (whose blobs attribute cannot be written) does not hold up the
    relay: a command published after it reaches the driver while Redis still refuses writes."""
    caplog.set_level(logging.INFO, logger="indiredis")
    server = indiredis.redis_server(host="127.0.0.1", port=protected_redis.port)
    rconn = redis.Redis(host="127.0.0.1", port=protected_redis.port, socket_timeout=5)
    bridge = make_driverstoredis([fake_driver(tmp_path)], server, blob_folder=str(tmp_path / "blobs"))
    bridge.client_side.backoff = Backoff(0.05, 0.2)
    try:
        with run_bridge(bridge):
            wait_for(lambda: bridge.ready and "IMAGE" in tools.properties(rconn, server, "Fake"), what="Fake")
            accept = STATES[code](rconn, protected_redis)
            tools.newnumbervector(rconn, server, "COORD", "Fake", {"RA": "1", "DEC": "0"})  # answered
            wait_for(lambda: not bridge.ready, what="the bridge to notice")
            first = refusals(rconn, code)
            tools.enableblob(rconn, server, "IMAGE", "Fake", "Never")  # its record in Redis is refused
            wait_for(lambda: refusals(rconn, code) > first + 1, what="the enableBLOB's record refused")
            tools.newtextvector(rconn, server, "CMD", "Fake", {"TEXT": "stderr"})
            wait_for(
                lambda: any("says hello on stderr" in r.getMessage() for r in caplog.records),
                timeout=15,
                what="the command sent after the enableBLOB to reach the driver",
            )
            assert not bridge.ready and code in bridge.status  # Redis still refuses
            accept()
            wait_for(lambda: bridge.ready, timeout=15, what="the bridge to find Redis writable")
    finally:
        rconn.close()
    assert not [r for r in caplog.records if r.exc_info], "a traceback was logged"
    assert any("not recorded in Redis" in r.getMessage() for r in caplog.records)


class RecordingBackoff(Backoff):
    """The link's back-off, counting its resets after the first delay was taken."""

    def __init__(self, initial: float, cap: float) -> None:
        super().__init__(initial, cap)
        self.delays: list[float] = []
        self.resets_while_waiting = 0

    def next(self) -> float:
        delay = super().next()
        self.delays.append(delay)
        return delay

    def reset(self) -> None:
        if self.delays:
            self.resets_while_waiting += 1
        super().reset()


def test_a_long_refusal_never_resets_the_back_off(redis_proc: RedisProcess, tmp_path: Path) -> None:
    """The link came up just before Redis refused: its stable timer must not reset the back-off while
    the refusal is waited out (retries would stay at the shortest delay)."""
    server = indiredis.redis_server(host="127.0.0.1", port=redis_proc.port)
    rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
    accept = oom(rconn, redis_proc)  # refusing before the bridge connects: PING passes, writes not
    bridge = make_driverstoredis([fake_driver(tmp_path)], server)
    backoff = RecordingBackoff(0.05, 0.2)
    bridge.client_side.backoff = backoff
    bridge.client_side.stable_seconds = 0.3  # well within the refusal
    try:
        with run_bridge(bridge):
            wait_for(lambda: sum(backoff.delays) > 1.0, timeout=20, what="a refusal longer than 0.3 s")
            assert backoff.resets_while_waiting == 0
            assert backoff.delays[-1] == 0.2  # the back-off grew to its cap and stayed there
            accept()
            wait_for(lambda: bridge.ready, timeout=15, what="the bridge to find Redis writable")
    finally:
        accept()
        rconn.close()
