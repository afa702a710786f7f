"""A central server that scales out: two ``mqtttoredis`` processes share two sites by ``subscribe_list``.

Each site's ``inditomqtt`` (its real indiserver running the numbered stand-in driver, the same device
name at both sites) publishes on one central mosquitto; each ``mqtttoredis`` serves one site into one
Redis under a key prefix and channels of its own, and each site's instrument side serves only its own
central process.  Both stores are whole; a gap on one site (its central process stopped while the
broker's queue for it overflowed) is repaired by its own process, and the other site is not asked
for anything.
"""

from __future__ import annotations

import signal
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import redis

import indiredis
from indiredis import tools
from tests.support.bridgeprocess import STANDIN, BridgeProcess
from tests.support.servers import IndiServerProcess, MosquittoProcess, RedisProcess, wait_for
from tests.support.watchers import RedisWatcher

SITES = ("east", "west")


class Counter:
    """Counts the MQTT messages on ``topic`` (a filter) holding ``needle``, per topic."""

    def __init__(self, port: int, topic: str, needle: bytes = b"") -> None:
        self.counts: dict[str, int] = {}
        self.needle = needle
        subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"counter-{topic}")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=0)
        self.client.loop_start()
        assert subscribed.wait(10)

    def _message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        if self.needle in message.payload:
            self.counts[message.topic] = self.counts.get(message.topic, 0) + 1

    def count(self, topic: str) -> int:
        return self.counts.get(topic, 0)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def redis_section(port: int, site: str) -> dict:
    return {
        "host": "127.0.0.1",
        "port": port,
        "keyprefix": f"{site}_",
        "to_indi_channel": f"{site}_to",
        "from_indi_channel": f"{site}_from",
    }


def test_two_mqtttoredis_share_two_sites(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("STANDIN_RATE", "200")
    parts: list = []
    bridges: dict[str, BridgeProcess] = {}
    watchers: dict[str, RedisWatcher] = {}
    counters: list[Counter] = []
    try:
        redis_proc = RedisProcess().start()
        parts.append(redis_proc)
        # a queue of 40 MQTT messages per client: a central process stopped for 2 s loses some
        broker = MosquittoProcess(extra_config="max_queued_messages 40").start()
        parts.append(broker)
        requests = Counter(
            broker.port, "to_indi/#", b"<getProperties"
        )  # what the central processes ask the sites
        counters.append(requests)
        for site in SITES:
            indiserver = IndiServerProcess([STANDIN]).start()  # device "Stream" at both sites
            parts.append(indiserver)
            bridges[f"{site}-dome"] = BridgeProcess(
                "make_inditomqtt",
                {
                    "indi_host": {"host": "127.0.0.1", "port": indiserver.port},
                    "mqtt_id": f"{site}-dome",
                    "mqtt_host": {"host": "127.0.0.1", "port": broker.port},
                    "subscribe_list": f"central-{site}",  # answers its own central process only
                },
                tmp_path,
            ).start()
            bridges[f"central-{site}"] = BridgeProcess(
                "make_mqtttoredis",
                {
                    "mqtt_id": f"central-{site}",
                    "subscribe_list": f"{site}-dome",
                    "mqtt_host": {"host": "127.0.0.1", "port": broker.port},
                    "redis_host": redis_section(redis_proc.port, site),
                },
                tmp_path,
            ).start()
            watchers[site] = RedisWatcher(redis_proc.port, f"{site}_from").start()
        rconn = redis.Redis(host="127.0.0.1", port=redis_proc.port, socket_timeout=5)
        servers = {
            site: indiredis.redis_server("127.0.0.1", redis_proc.port, **_named(redis_section(0, site)))
            for site in SITES
        }

        def whole(site: str) -> bool:
            """The site's store holds its stream, up to the newest value delivered."""
            seen = watchers[site].snapshot()
            if not seen or tools.devices(rconn, servers[site]) != ["Stream"]:
                return False
            stored = tools.elements_dict(rconn, servers[site], "N", "SEQ", "Stream").get("value", "-1")
            return float(stored) >= max(a.number for a in seen[-20:])

        for site in SITES:
            wait_for(lambda site=site: whole(site), timeout=60, what=f"the {site} store whole")
        # each store holds its own site: the two stand-ins (distinct RUN, their pid) never mix
        runs = {site: {a.run for a in watchers[site].snapshot()} for site in SITES}
        assert len(runs["east"]) == len(runs["west"]) == 1 and runs["east"] != runs["west"], runs
        stored_runs = {
            site: tools.elements_dict(rconn, servers[site], "RUN", "SEQ", "Stream")["value"] for site in SITES
        }
        assert {site: {int(float(v))} for site, v in stored_runs.items()} == runs

        # a gap on the east site only: its central process stopped while the broker's queue overflows
        for site in SITES:  # asked on connecting, and on first hearing the site
            wait_for(
                lambda site=site: requests.count(f"to_indi/central-{site}") >= 2, what="start-up requests"
            )
        asked = {site: requests.count(f"to_indi/central-{site}") for site in SITES}
        traffic = Counter(broker.port, "from_indi/east-dome")
        counters.append(traffic)
        east = bridges["central-east"]
        assert east.proc is not None
        east.proc.send_signal(signal.SIGSTOP)
        try:
            wait_for(lambda: traffic.count("from_indi/east-dome") >= 100, timeout=30, what="east traffic")
        finally:
            east.proc.send_signal(signal.SIGCONT)
        wait_for(lambda: east.lost() > 0, timeout=30, what="the east gap counted")
        wait_for(
            lambda: requests.count("to_indi/central-east") > asked["east"], what="the east repair requested"
        )
        wait_for(lambda: whole("east"), timeout=30, what="the east store whole again")
        assert "on MQTT topic from_indi/east-dome" in east.log
        assert bridges["central-west"].lost() == 0
        # the repair asked the east site only (on T/central-east, which only east-dome serves)
        assert requests.count("to_indi/central-west") == asked["west"]
        assert whole("west")
        assert all(bridge.alive for bridge in bridges.values())
    finally:
        for counter in counters:
            counter.close()
        for watcher in watchers.values():
            watcher.stop()
        for bridge in bridges.values():
            bridge.stop()
        for part in reversed(parts):
            part.__exit__(None, None, None)
        if "rconn" in locals():
            rconn.close()


def _named(section: dict) -> dict:
    return {k: v for k, v in section.items() if k in ("keyprefix", "to_indi_channel", "from_indi_channel")}
