"""inditoredis recovers from a Redis that is killed and comes back empty, and from indiserver restarts."""

from __future__ import annotations

import logging
import os
import signal

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import wait_for


def define(value: int) -> bytes:
    return (
        f'<defNumberVector device="Fake" name="N" state="Idle" perm="rw">'
        f'<defNumber name="X" format="%.0f" min="0" max="1e9" step="1">{value}</defNumber></defNumberVector>'
    ).encode()


def set_x(value: int) -> bytes:
    return (
        f'<setNumberVector device="Fake" name="N"><oneNumber name="X">{value}</oneNumber></setNumberVector>'
    ).encode()


class RepliesToGetProperties(FakeIndiServer):
    """A fake indiserver that answers every getProperties with its current definition, as indiserver does."""

    current = 0

    def set_value(self, value: int) -> None:
        self.current = value
        self.send(set_x(value))

    def on_data(self, conn, data: bytes) -> None:
        if b"getProperties" in data:
            conn.sendall(define(self.current))


def test_redis_killed_and_restarted_empty_is_repopulated(redis_host, redis_proc, rconn, caplog):
    caplog.set_level(logging.INFO, logger="indiredis")
    with RepliesToGetProperties() as fake:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), redis_host)
        with run_bridge(bridge):
            wait_for(lambda: tools.devices(rconn, redis_host) == ["Fake"], what="device")
            fake.set_value(1)
            wait_for(
                lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "1",
                what="value 1",
            )
            redis_proc.kill()
            wait_for(lambda: not bridge.ready, what="bridge to notice")
            assert "waiting for Redis" in bridge.status
            for value in range(2, 50):  # sent while Redis is down
                fake.set_value(value)
            redis_proc.start()  # same port, no persistence: empty
            wait_for(lambda: bridge.ready, timeout=15, what="bridge to reconnect")
            # repopulated: the definition came back through a fresh getProperties, the latest value is current
            wait_for(
                lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "49",
                timeout=10,
                what="latest value after recovery",
            )
            assert tools.attributes_dict(rconn, redis_host, "N", "Fake")["vector"] == "NumberVector"
            fake.set_value(50)
            wait_for(
                lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "50",
                what="live again",
            )
    lines = [r.getMessage() for r in caplog.records]
    assert sum("Redis unavailable" in line for line in lines) == 1, (
        lines
    )  # one line per state change, not per retry
    assert any(line.startswith("connected to Redis") for line in lines[-10:])


def test_a_redis_that_stops_answering_is_noticed_and_caught_up(redis_host, redis_proc, rconn, caplog):
    """Redis frozen (SIGSTOP: the connection stays up, nothing answers): the bridge says so within
    seconds, whatever redis-py's own read timeout, and catches up once Redis answers again."""
    caplog.set_level(logging.INFO, logger="indiredis")
    with RepliesToGetProperties() as fake:
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), redis_host)
        with run_bridge(bridge):
            wait_for(lambda: tools.devices(rconn, redis_host) == ["Fake"], what="device")
            os.kill(redis_proc.proc.pid, signal.SIGSTOP)
            try:
                for value in range(1, 30):  # sent while Redis is frozen
                    fake.set_value(value)
                wait_for(lambda: not bridge.ready, timeout=15, what="bridge to notice")
                assert "did not answer" in bridge.status
            finally:
                os.kill(redis_proc.proc.pid, signal.SIGCONT)
            wait_for(lambda: bridge.ready, timeout=30, what="bridge to reconnect")
            wait_for(
                lambda: tools.elements_dict(rconn, redis_host, "X", "N", "Fake").get("value") == "29",
                timeout=10,
                what="the latest value after Redis answers again",
            )
    lines = [r.getMessage() for r in caplog.records]
    assert any("Redis unavailable" in line and "did not answer" in line for line in lines), lines
