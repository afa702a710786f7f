"""A site broker bridged to the central broker with mosquitto's own bridge (etc/mosquitto-site-bridge.conf).

Two real mosquitto processes: the site's, where ``inditomqtt`` publishes what the real indiserver
(telescope and CCD simulators, and the numbered stand-in driver for counting) sends, and the central
one, where ``mqtttoredis`` writes into Redis.  Between them a TCP relay, the site's internet link,
which the test cuts while the mount streams and the camera shoots at the site, then restores.
With an ample queue at the site, everything the site broker queued arrives, in order, nothing
missing; with a tight one, what it could not keep is seen by the central ``mqtttoredis`` as a gap in
the site's sequence numbers, counted in its log, and repaired (the store whole again).
"""

from __future__ import annotations

import re
import socket
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
import redis

import indiredis
from indiredis import tools
from tests.support.accounting import account
from tests.support.bridgeprocess import STANDIN, BridgeProcess
from tests.support.indiclient import connect_device
from tests.support.relay import Relay
from tests.support.servers import IndiServerProcess, MosquittoProcess, RedisProcess, wait_for
from tests.support.watchers import RedisWatcher

ETC = Path(__file__).resolve().parents[2] / "etc"
TELESCOPE, CCD, STREAM = "Telescope Simulator", "CCD Simulator", "Stream"
SITE_ID = "north-dome"
FRAMES = 3  # shot at the site while its link is down
#: the one setting a central broker needs (see etc/mosquitto-site-bridge.conf and mosquitto-indiredis.conf)
CENTRAL_BROKER = "max_inflight_messages 0"


def site_broker_config(relay_port: int, max_queued: int | None) -> str:
    """The shipped example, pointed at the relay, reconnecting every second, with ``max_queued``
    messages of queue if given."""
    text = (ETC / "mosquitto-site-bridge.conf").read_text()
    text = text.replace("address central.example.org:1883", f"address 127.0.0.1:{relay_port}")
    text = text.replace("restart_timeout 5 60", "restart_timeout 1")
    if max_queued is not None:
        text = re.sub(r"(?m)^max_queued_messages \d+$", f"max_queued_messages {max_queued}", text)
    assert f"127.0.0.1:{relay_port}" in text and "restart_timeout 1\n" in text
    return text


class PayloadCounter:
    """Counts the MQTT messages published on ``topic`` on a broker (the site's traffic)."""

    def __init__(self, port: int, topic: str) -> None:
        self.count = 0
        self.frames = 0  # BLOB payloads
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="site-counter")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=0)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        self.count += 1
        self.frames += b"<setBLOBVector" in message.payload[:200]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def shoot_at_site(indi_port: int, frames: int) -> None:
    """A local INDI client at the site (as the site's own GUI would) takes ``frames`` exposures of
    0.2 s, one after the other, waiting for each to complete."""
    done = re.compile(rb'<setNumberVector device="CCD Simulator" name="CCD_EXPOSURE" state="Ok"')
    with socket.create_connection(("127.0.0.1", indi_port), timeout=30) as sock:
        sock.sendall(b'<getProperties version="1.7" device="CCD Simulator"/>\n')
        for _ in range(frames):
            sock.sendall(
                b'<newNumberVector device="CCD Simulator" name="CCD_EXPOSURE">'
                b'<oneNumber name="CCD_EXPOSURE_VALUE">0.2</oneNumber></newNumberVector>\n'
            )
            pending = b""
            busy = False
            while True:
                data = sock.recv(1 << 16)
                assert data, "indiserver closed the connection"
                pending = (pending + data)[-4096:]
                busy = busy or b'name="CCD_EXPOSURE" state="Busy"' in pending
                if busy and done.search(pending):
                    break


def frame_files(folder: Path) -> list[Path]:
    return [path for path in folder.rglob("*") if path.is_file()] if folder.exists() else []


class Sites:
    """Redis, the central broker, the relay, the site broker with its bridge, indiserver, inditomqtt on
    the site broker and mqtttoredis on the central one."""

    def __init__(self, workdir: Path, max_queued: int | None) -> None:
        self.parts: list = []
        self.redis = self._server(RedisProcess())
        # the central broker as the example says (max_inflight_messages 0), every other setting stock
        self.central = self._server(MosquittoProcess(extra_config=CENTRAL_BROKER))
        self.relay = Relay(self.central.port).start()
        self.site = self._server(
            MosquittoProcess(extra_config=site_broker_config(self.relay.port, max_queued))
        )
        self.indiserver = self._server(
            IndiServerProcess(["indi_simulator_telescope", "indi_simulator_ccd", STANDIN])
        )
        self.instrument = BridgeProcess(
            "make_inditomqtt",
            {
                "indi_host": {"host": "127.0.0.1", "port": self.indiserver.port},
                "mqtt_id": SITE_ID,
                "mqtt_host": {"host": "127.0.0.1", "port": self.site.port},
            },
            workdir,
        ).start()
        self.gui = BridgeProcess(
            "make_mqtttoredis",
            {
                "mqtt_id": "central",
                "mqtt_host": {"host": "127.0.0.1", "port": self.central.port},
                "redis_host": {"host": "127.0.0.1", "port": self.redis.port},
            },
            workdir,
        ).start()
        self.blobs = self.gui.folder / "blobs"
        self.watcher = RedisWatcher(self.redis.port).start()
        self.server = indiredis.redis_server("127.0.0.1", self.redis.port)
        self.rconn = redis.Redis(host="127.0.0.1", port=self.redis.port, socket_timeout=5)

    def _server(self, server):
        self.parts.append(server)
        return server.start()

    def stop(self) -> None:
        self.watcher.stop()
        for bridge in (self.gui, self.instrument):
            bridge.stop()
        self.relay.cut()
        self.rconn.close()
        for server in reversed(self.parts):
            server.__exit__(None, None, None)

    def properties(self) -> dict[str, set[str]]:
        return {device: set(tools.properties(self.rconn, self.server, device)) for device in (TELESCOPE, CCD)}

    def store_problem(self, expected: dict[str, set[str]]) -> str:
        """Why the store is not whole: a property missing, or the stand-in's value behind the newest."""
        found = self.properties()
        for device, names in expected.items():
            if not names <= found[device]:
                return f"{device} lacks {sorted(names - found[device])}"
        newest = max(self.watcher.snapshot()[-20:], key=lambda a: a.number)
        stored = tools.elements_dict(self.rconn, self.server, "N", "SEQ", STREAM).get("value", "-1")
        if float(stored) < newest.number:
            return f"stored N={stored} is behind the newest delivered {newest.number}"
        return ""


@pytest.mark.parametrize("queue", ["ample", "tight"])
def test_site_link_cut_and_restored_mid_stream(queue, tmp_path, monkeypatch):
    monkeypatch.setenv("STANDIN_RATE", "100")  # indiserver passes it to the stand-in driver
    sites = Sites(tmp_path, None if queue == "ample" else 20)
    counter = None
    try:
        wait_for(
            lambda: {TELESCOPE, CCD, STREAM} <= set(tools.devices(sites.rconn, sites.server)),
            timeout=60,
            what="the site's devices in the central Redis",
        )
        connect_device(sites.rconn, sites.server, TELESCOPE)  # the mount streams its coordinates
        connect_device(sites.rconn, sites.server, CCD)
        wait_for(
            lambda: tools.attributes_dict(sites.rconn, sites.server, "CCD1", CCD).get("blobs") == "Enabled",
            timeout=20,
            what="BLOBs enabled",
        )
        wait_for(
            lambda: "CCD_EXPOSURE" in tools.properties(sites.rconn, sites.server, CCD),
            timeout=20,
            what="CCD connected",
        )
        expected = sites.properties()
        counter = PayloadCounter(sites.site.port, f"from_indi/{SITE_ID}")

        shoot_at_site(sites.indiserver.port, 1)  # the frames' path works (BLOBs enabled on the way)
        wait_for(lambda: len(frame_files(sites.blobs)) == 1, timeout=30, what="a frame before the cut")
        cut = time.time()
        sites.relay.cut()
        before, frames_before = counter.count, counter.frames
        shoot_at_site(sites.indiserver.port, FRAMES)  # the camera keeps shooting at the site
        # the site keeps publishing: more MQTT messages than the tight queue (20) holds
        wait_for(
            lambda: counter.count - before >= 120 and counter.frames - frames_before == FRAMES,
            timeout=60,
            what="the site's traffic and frames while cut",
        )
        assert len(frame_files(sites.blobs)) == 1  # nothing crossed the cut link
        restored = time.time()
        sites.relay.restore()

        wait_for(lambda: sites.watcher.fresh_since(restored), timeout=60, what="fresh messages after the cut")
        try:
            wait_for(lambda: not sites.store_problem(expected), timeout=30, what="the store whole again")
        except TimeoutError:
            pytest.fail(sites.store_problem(expected) + "\n" + sites.gui.log[-3000:])
        assert sites.instrument.alive and sites.gui.alive
        arrivals = sites.watcher.snapshot()
        result = account(arrivals, [(cut, restored)])
        assert result.lost_while_up == 0 and result.reordered == 0, result
        # the site broker's queue arrived: messages sent while the link was down
        assert any(cut < arrival.sent < restored for arrival in arrivals)
        if queue == "ample":
            # everything queued, nothing missing, no gap reported
            assert result.outage_gap == 0, result
            assert sites.gui.lost() == 0, sites.gui.log[-3000:]
            wait_for(lambda: len(frame_files(sites.blobs)) == 1 + FRAMES, timeout=30, what="the frames shot")
        else:
            # what the site broker dropped was seen as a gap, counted in the log, and repaired (above)
            assert result.outage_gap > 0, result
            assert 0 < result.outage_gap <= sites.gui.lost(), (result, sites.gui.log[-3000:])
            assert f"on MQTT topic from_indi/{SITE_ID}" in sites.gui.log
    finally:
        if counter is not None:
            counter.close()
        sites.stop()
