"""MQTT delivery on a stock mosquitto (its default configuration): bursts arrive whole, gaps are
detected, logged with their count and repaired, and the original framing is there when asked for."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import threading
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import paho.mqtt.client as mqtt
import pytest

import indiredis
from indiredis import tools
from indiredis.bridges import make_driverstomqtt, make_inditomqtt, make_mqtttoredis
from indiredis.protocol.mqttframing import FrameHeader, encode_header
from tests.support import mountstream
from tests.support.bridgeprocess import BridgeProcess
from tests.support.bridgethread import run_bridge
from tests.support.fakeindi import FakeIndiServer
from tests.support.servers import MosquittoProcess, wait_for

BURST = 20_000
BURST_REQUEST = (
    '<newSwitchVector device="{}" name="BURST"><oneSwitch name="GO">On</oneSwitch></newSwitchVector>'
)


class Sniffer:
    """A paho subscriber that records every payload on ``topic`` (the wire, as another bridge sees it)."""

    def __init__(self, port: int, topic: str) -> None:
        self.payloads: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"sniffer-{os.getpid()}")
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *args: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(topic, qos=2)
        self.client.loop_start()
        assert self.subscribed.wait(10)

    def _message(self, client: object, userdata: object, message: mqtt.MQTTMessage) -> None:
        with self.lock:
            self.payloads.append((message.topic, bytes(message.payload)))

    def taken(self) -> list[tuple[str, bytes]]:
        with self.lock:
            return list(self.payloads)

    def publish(self, topic: str, payload: bytes) -> None:
        self.client.publish(topic, payload, qos=2).wait_for_publish(10)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def mqtt_host(mosquitto_proc):
    return indiredis.mqtt_server("127.0.0.1", mosquitto_proc.port)


@contextlib.contextmanager
def one_site(mqtt_host, redis_host, rconn, batching: bool = True) -> Iterator[mountstream.StandinServers]:
    """A stand-in indiserver -> inditomqtt -> the broker -> mqtttoredis, its definitions in Redis."""
    with mountstream.StandinServers(1, 0) as standin:
        instrument = make_inditomqtt(
            indiredis.indi_server("127.0.0.1", standin.ports[0]), "obs", mqtt_host, mqtt_batching=batching
        )
        gui = make_mqtttoredis("gui", mqtt_host, redis_host, mqtt_batching=batching)
        with run_bridge(instrument), run_bridge(gui):
            wait_for(lambda: store_has_device(rconn, redis_host, "Site00"), timeout=30, what="definitions")
            yield standin


def store_has_device(rconn, redis_host, device: str) -> bool:
    return "BURST" in tools.properties(rconn, redis_host, device)


def stored_seq(rconn, redis_host, device: str, prop: int) -> int:
    """The message number property ``P<prop>`` holds in the store (from its first element)."""
    element = tools.elements_dict(rconn, redis_host, "E0", f"P{prop}", device)
    return round(float(element["float_number"]) * 3600)


@pytest.mark.parametrize("chain", ["inditomqtt", "driverstomqtt"])
def test_a_burst_arrives_whole_through_a_stock_broker(
    chain, mosquitto_proc, mqtt_host, redis_proc, redis_host, rconn
):
    """20 000 messages at once: a stock mosquitto queues at most 1 000 MQTT messages for a subscriber
    that lags, so they must travel packed (here in at most a tenth as many MQTT messages)."""
    watcher = mountstream.StreamWatcher(redis_proc.port).start()
    sniffer = Sniffer(mosquitto_proc.port, "from_indi/#")
    standin = mountstream.StandinServers(1, 0, BURST) if chain == "inditomqtt" else None
    if standin is not None:
        device = "Site00"
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", standin.ports[0]), "obs", mqtt_host)
    else:
        device = "Mount"
        os.environ["MOUNT_BURST"] = str(BURST)  # the driver pool passes its environment to the drivers
        instrument = make_driverstomqtt([mountstream.STANDIN], "obs", mqtt_host)
    try:
        with run_bridge(instrument), run_bridge(make_mqtttoredis("gui", mqtt_host, redis_host)):
            wait_for(lambda: store_has_device(rconn, redis_host, device), timeout=30, what="definitions")
            sent_before = len(sniffer.taken())
            rconn.publish("to_indi", BURST_REQUEST.format(device))
            wait_for(
                lambda: watcher.count(device) >= BURST, timeout=240, interval=0.2, what="the whole burst"
            )
            assert watcher.count(device) == BURST and watcher.duplicates == 0
            assert len(sniffer.taken()) - sent_before <= BURST // 10
            # the store holds the burst's last values
            for prop in range(mountstream.PROPERTIES):
                assert stored_seq(rconn, redis_host, device, prop) == mountstream.latest(prop, BURST)
    finally:
        os.environ.pop("MOUNT_BURST", None)
        watcher.stop()
        sniffer.close()
        if standin is not None:
            standin.stop()


@pytest.mark.parametrize(
    "fault", ["broker restarted without persistence", "queue overflow on a tight broker"]
)
def test_a_gap_is_detected_logged_with_its_count_and_repaired(fault, redis_proc, redis_host, rconn, tmp_path):
    """mqtttoredis (its daemon) stops reading while a burst flows; then the broker loses what it held for
    it: restarted, or (configured tighter than stock) by dropping beyond its queue.  The daemon must
    log exactly the count that never reached Redis and ask again, so the store ends up current."""
    tight = fault.startswith("queue overflow")
    broker = MosquittoProcess(extra_config="max_queued_messages 10" if tight else "").start()
    mqtt_host = indiredis.mqtt_server("127.0.0.1", broker.port)
    watcher = mountstream.StreamWatcher(redis_proc.port).start()
    gui = BridgeProcess(
        "make_mqtttoredis",
        {
            "mqtt_id": "gui",
            "mqtt_host": {"host": "127.0.0.1", "port": broker.port},
            "redis_host": {"host": "127.0.0.1", "port": redis_proc.port},
        },
        tmp_path,
    )
    try:
        with mountstream.StandinServers(1, 0, BURST) as standin:
            instrument = make_inditomqtt(
                indiredis.indi_server("127.0.0.1", standin.ports[0]), "obs", mqtt_host
            )
            gui.start()  # subscribed before the instrument side publishes anything: it hears every message
            wait_for(lambda: gui.ready, timeout=30, what="mqtttoredis ready")
            with run_bridge(instrument):
                # mqtttoredis asks on connecting, and again on first hearing from us: both answers are in
                wait_for(lambda: watcher.rounds("Site00") >= 2, timeout=30, what="definitions")
                link = instrument.client_side
                os.kill(gui.proc.pid, signal.SIGSTOP)
                try:
                    standin.command(f"burst {BURST}")
                    # the instrument side has published the whole burst and the broker acknowledged it all
                    wait_for(
                        lambda: link.framer.numbered("from_indi/obs") > BURST and not link.pending,
                        timeout=60,
                        what="the burst published",
                    )
                    if tight:
                        wait_for(
                            lambda: "Outgoing messages are being dropped" in broker.output(),
                            timeout=30,
                            what="the broker dropping messages",
                        )
                    else:
                        broker.restart()
                finally:
                    os.kill(gui.proc.pid, signal.SIGCONT)
                reported = re.compile(r"lost (\d+) messages on MQTT topic from_indi/obs")
                wait_for(lambda: reported.search(gui.log), timeout=30, what="the gap reported")
                # repaired: every property holds the burst's last value again
                wait_for(
                    lambda: all(
                        stored_seq(rconn, redis_host, "Site00", prop) == mountstream.latest(prop, BURST)
                        for prop in range(mountstream.PROPERTIES)
                    ),
                    timeout=60,
                    what="the store repaired",
                )
                # exactly what never reached Redis was reported lost, once
                missing = BURST - watcher.count("Site00")
                lost = sum(int(n) for n in reported.findall(gui.log))
                assert missing > 0 and lost >= missing, (missing, lost, gui.log[-2000:])
                standin.command(
                    "burst 1"
                )  # a gap shows when the next payload arrives: make sure there is one
                wait_for(lambda: watcher.count("Site00") > BURST - missing, what="one more message")
                lost = sum(int(n) for n in reported.findall(gui.log))
                wait_for(
                    lambda: link.framer.numbered("from_indi/obs") - watcher.all_messages("Site00") == lost,
                    timeout=30,
                    what=f"every message published but the {lost} reported lost delivered",
                )
                assert "asking the instrument sides for every property again" in gui.log
    finally:
        gui.stop()
        watcher.stop()
        broker.__exit__(None, None, None)


def test_without_batching_the_wire_carries_one_original_message_per_payload(
    mosquitto_proc, mqtt_host, redis_host, rconn
):
    """mqtt_batching=False: what original 0.1.4 receivers need, even in a burst."""
    sniffer = Sniffer(mosquitto_proc.port, "#")
    try:
        with one_site(mqtt_host, redis_host, rconn, batching=False) as standin:
            standin.command("burst 500")
            wait_for(
                lambda: stored_seq(rconn, redis_host, "Site00", 0) == 500, timeout=60, what="the burst stored"
            )
        # the sniffer is a subscriber of its own: it may still be reading what the store already holds
        wait_for(
            lambda: sum(t == "from_indi/obs" for t, _ in sniffer.taken()) >= 511,  # 11 definitions, 500 sets
            timeout=30,
            what="the sniffer to hear the whole burst",
        )
        payloads = sniffer.taken()
        assert any(t == "to_indi/gui" for t, _ in payloads)
        for topic, payload in payloads:
            assert not payload.startswith(b"<?"), (topic, payload[:100])
            ET.fromstring(payload)  # one complete XML element: the original receivers' one call
    finally:
        sniffer.close()


def test_with_batching_a_burst_is_packed_and_a_lone_message_is_still_one_element(
    mosquitto_proc, mqtt_host, redis_host, rconn
):
    sniffer = Sniffer(mosquitto_proc.port, "from_indi/#")
    try:
        with one_site(mqtt_host, redis_host, rconn) as standin:
            standin.command("burst 2000")
            wait_for(lambda: stored_seq(rconn, redis_host, "Site00", 0) == 2000, timeout=60, what="burst")
            before = len(sniffer.taken())
            standin.command("burst 1")

            def lone_payload() -> bytes | None:
                for _, payload in sniffer.taken()[before:]:
                    if any(seq == 2001 for _, seq, _ in mountstream.parse(payload)):
                        return payload
                return None

            lone = wait_for(lone_payload, what="the lone message")
        carrying_the_burst = [p for _, p in sniffer.taken() if b"<setNumberVector" in p and p is not lone]
        assert len(carrying_the_burst) <= 2000 // 10  # packed: at least 10 messages per MQTT message
        assert lone.startswith(b"<?indiredis-frame") and ET.fromstring(lone).tag == "setNumberVector"
    finally:
        sniffer.close()


def test_receivers_accept_the_original_single_payloads(mosquitto_proc, mqtt_host, redis_host, rconn):
    """An original 0.1.4 instrument side and client side on the same broker: one message per payload."""
    original = Sniffer(mosquitto_proc.port, "to_indi/#")  # plays both original bridges
    fake = FakeIndiServer()
    try:
        instrument = make_inditomqtt(indiredis.indi_server("127.0.0.1", fake.port), "obs", mqtt_host)
        with run_bridge(make_mqtttoredis("gui", mqtt_host, redis_host)), run_bridge(instrument):
            wait_for(lambda: any(t == "to_indi/gui" for t, _ in original.taken()), what="getProperties")
            for payload in mountstream.definitions("Old", 3).splitlines() + [
                mountstream.set_message("Old", 4).strip()
            ]:
                original.publish("from_indi/old-observatory", payload)
            wait_for(
                lambda: stored_seq(rconn, redis_host, "Old", 4) == 4, what="the original's messages stored"
            )
            assert stored_seq(rconn, redis_host, "Old", 3) == 3
            # a client request from an original client side reaches the instrument side's indiserver
            wait_for(lambda: fake.clients, what="inditomqtt connected")
            request = (
                b'<newSwitchVector device="Old" name="S"><oneSwitch name="A">On</oneSwitch></newSwitchVector>'
            )
            original.publish("to_indi/old-gui", request)
            wait_for(lambda: request in bytes(fake.received), what="the request at indiserver")
    finally:
        original.close()
        fake.close()


def test_a_repeated_payload_is_not_delivered_twice_and_a_restarted_publisher_is_no_gap(
    mosquitto_proc, mqtt_host, redis_proc, redis_host, caplog
):
    """What a publisher resends after a reconnection arrives once; a publisher with a new session
    starts again at 1, and that is no gap."""
    publisher = Sniffer(mosquitto_proc.port, "to_indi/#")
    watcher = mountstream.StreamWatcher(redis_proc.port).start()
    topic = "from_indi/pub"

    def send(session: str, first: int, body: bytes) -> None:
        count = body.count(b"Vector device=")
        publisher.publish(topic, encode_header(FrameHeader(session, first, count)) + body)

    def stream(*seqs: int) -> bytes:
        return b"".join(mountstream.set_message("Pub", seq) for seq in seqs)

    try:
        with run_bridge(make_mqtttoredis("gui", mqtt_host, redis_host)):
            wait_for(lambda: publisher.taken(), what="the client side's getProperties")
            send("one", 1, mountstream.definitions("Pub"))  # messages 1-10
            send("one", 11, stream(1, 2, 3))
            send("one", 11, stream(1, 2, 3))  # resent whole
            send("one", 13, stream(3, 4, 5))  # resent in part: 3 again
            send("two", 1, stream(6, 7))  # the publisher restarted
            wait_for(lambda: watcher.count("Pub") == 7, what="seven messages")
            send("two", 3, stream(8))  # in order after the others: all before it are through
            wait_for(lambda: watcher.count("Pub") == 8, what="the eighth")
        assert watcher.duplicates == 0
        assert "lost" not in caplog.text
    finally:
        publisher.close()
        watcher.stop()
