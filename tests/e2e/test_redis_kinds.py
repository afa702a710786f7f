"""The Redis connection kinds beyond TCP, end to end with real servers: a Unix socket, and Redis
Sentinel with a failover (the bridge, tools and the web client follow the new master)."""

from __future__ import annotations

import json
import logging
import signal

import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_inditoredis
from indiredis.events import Event
from indiredis.indiwsgi import make_wsgi_app
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.indiclient import connect_device
from tests.support.sentinel import SERVICE, sentinel_topology
from tests.support.servers import RedisProcess, free_port, wait_for
from tests.support.webworld import DEFS, Client

TELESCOPE = "Telescope Simulator"
CCD = "CCD Simulator"


def web_devices(web: Client) -> list[str]:
    status, _, body = web.get("/api/devices")
    if not status.startswith("200"):
        return []
    return [device["name"] if isinstance(device, dict) else device for device in json.loads(body)["devices"]]


def test_bridge_tools_and_web_over_a_unix_socket(tmp_path):
    socket_path = tmp_path / "redis.sock"
    with RedisProcess(extra=["--unixsocket", str(socket_path), "--unixsocketperm", "700"]):
        # host and port name nothing that listens: only the socket can be what the clients use
        server = indiredis.redis_server(host="127.0.0.1", port=free_port(), socket=str(socket_path))
        rconn = tools.open_redis(server)
        assert rconn is not None
        with FakeIndiServer() as fake:
            bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), server)
            with run_bridge(bridge):
                wait_for(lambda: bridge.ready and fake.clients, what="the bridge connected")
                assert f"connected to Redis unix:{socket_path}" in bridge.status
                fake.send(DEFS)
                wait_for(lambda: len(tools.properties(rconn, server, "Mount")) == 9, what="Mount in Redis")
                app = make_wsgi_app(server)
                try:
                    assert wait_for(lambda: "Mount" in web_devices(Client(app)), what="the web client's list")
                finally:
                    app.close()
                marker = len(fake.received)
                tools.newnumbervector(rconn, server, "COORD", "Mount", {"RA": "1", "DEC": "2"})
                wait_for(lambda: b"newNumberVector" in fake.received[marker:], what="the request relayed")
        clients = rconn.client_list()
        # a socket client's address is the socket's path (cut short by Redis when long), never host:port
        assert clients and all(c["addr"].startswith("/") for c in clients), clients
        rconn.close()


@pytest.mark.parametrize(
    ("redis_too", "line"),
    [
        (False, f"the sentinels gave no master '{SERVICE}' (none answered, or none knows it)"),
        (True, "an address of [redis] sentinels is a Redis, not a sentinel"),
    ],
)
def test_sentinels_that_give_no_master_are_one_clear_line(caplog, redis_too, line):
    caplog.set_level(logging.INFO, logger="indiredis")
    with RedisProcess() as not_a_sentinel, FakeIndiServer() as fake:
        # an address where nothing listens, and maybe a Redis that is no sentinel
        addresses = [("127.0.0.1", free_port())] + ([("127.0.0.1", not_a_sentinel.port)] if redis_too else [])
        server = indiredis.redis_server(sentinels=tuple(addresses), service_name=SERVICE)
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", fake.port), server)
        with run_bridge(bridge):
            wait_for(lambda: line in bridge.status, what="the link's state")
    assert [r.getMessage() for r in caplog.records].count(f"Redis unavailable: {line}") == 1
    assert not any(r.exc_info for r in caplog.records)


def _properties(rconn, server) -> dict[str, set[str]]:
    return {device: set(tools.properties(rconn, server, device)) for device in (TELESCOPE, CCD)}


def test_the_bridge_tools_and_web_follow_a_sentinel_failover(simulators, tmp_path, caplog):
    """SIGKILL of the master: Sentinel promotes the replica; the bridge (not restarted) finds it through
    the sentinels, logs the change, and the store there is whole and live; tools and the web client
    read from the new master, and a request published after the failover reaches the driver."""
    caplog.set_level(logging.INFO, logger="indiredis")
    with sentinel_topology() as topology:
        server = topology.server
        rconn = tools.open_redis(server)
        assert rconn is not None
        app = make_wsgi_app(server)
        web = Client(app)
        bridge = make_inditoredis(indiredis.indi_server("127.0.0.1", simulators.port), server)
        try:
            with run_bridge(bridge):
                wait_for(lambda: bridge.ready, what="the bridge connected")
                wait_for(
                    lambda: all("CONNECTION" in names for names in _properties(rconn, server).values()),
                    timeout=20,
                    what="both simulators in Redis",
                )
                before = _properties(rconn, server)
                old_port = topology.master.port
                wait_for(lambda: CCD in web_devices(web), what="the web client's list before the failover")
                assert any(
                    r.getMessage() == f"Redis master {SERVICE} is 127.0.0.1:{old_port}"
                    for r in caplog.records
                )

                topology.master.kill(signal.SIGKILL)
                wait_for(lambda: topology.master_port() != old_port, timeout=30, what="the promotion")
                assert topology.master_port() == topology.replica.port

                def changed() -> list[logging.LogRecord]:
                    return [
                        r
                        for r in caplog.records
                        if getattr(r, "MESSAGE_ID", "") == Event.REDIS_MASTER and "changed" in r.getMessage()
                    ]

                wait_for(changed, timeout=30, what="the log line naming the new master")
                assert changed()[0].getMessage() == (
                    f"Redis master {SERVICE} changed from 127.0.0.1:{old_port} to "
                    f"127.0.0.1:{topology.replica.port}: writing to the new master"
                )
                wait_for(lambda: bridge.ready, timeout=30, what="the bridge connected to the new master")
                # tools (the same client as before the failover) reads the new master: the store is whole
                wait_for(
                    lambda: all(before[d] <= names for d, names in _properties(rconn, server).items()),
                    timeout=20,
                    what="every property on the new master",
                )
                for device, names in before.items():
                    for name in names:
                        assert tools.attributes_dict(rconn, server, name, device)["name"] == name
                # a request published after the failover reaches the driver, and its answer the store
                connect_device(rconn, server, TELESCOPE)
                wait_for(
                    lambda: "EQUATORIAL_EOD_COORD" in tools.properties(rconn, server, TELESCOPE),
                    timeout=20,
                    what="the connected telescope's properties on the new master",
                )
                # the web client (made before the failover) reads the new master too
                wait_for(lambda: TELESCOPE in web_devices(web), timeout=20, what="the web client's list")
                assert _replication(topology.replica.port)["role"] == "master"
                assert f"(master 127.0.0.1:{topology.replica.port})" in bridge.status

                # the old master comes back empty, Sentinel makes it a replica; a failover ordered by
                # hand (SENTINEL FAILOVER: the master is demoted, not killed) is followed as well
                topology.master.start()
                wait_for(
                    lambda: _replication(topology.master.port).get("master_link_status") == "up",
                    timeout=30,
                    what="the old master to be a replica in sync",
                )
                with topology.sentinels[0].client() as sentinel:
                    wait_for(
                        lambda: "s_down" not in str(sentinel.sentinel_slaves(SERVICE)),
                        timeout=20,
                        what="the sentinels to see the old master as a replica",
                    )
                    wait_for(lambda: sentinel.execute_command("SENTINEL FAILOVER", SERVICE), what="the order")
                back = f"changed from 127.0.0.1:{topology.replica.port} to 127.0.0.1:{old_port}"
                wait_for(
                    lambda: any(back in r.getMessage() for r in changed()),
                    timeout=30,
                    what="the second change",
                )
                wait_for(lambda: bridge.ready, timeout=30, what="the bridge connected to the old master")
                connect_device(rconn, server, CCD)
                wait_for(
                    lambda: "CCD_EXPOSURE" in tools.properties(rconn, server, CCD),
                    timeout=20,
                    what="the connected camera's properties on the master of the second failover",
                )
                assert _replication(old_port)["role"] == "master"
        finally:
            app.close()
            rconn.close()


def _replication(port: int) -> dict[str, object]:
    import redis

    with redis.Redis(host="127.0.0.1", port=port, socket_timeout=5, decode_responses=True) as conn:
        return dict(conn.info("replication"))
