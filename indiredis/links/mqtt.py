"""The MQTT transport: both MQTT links, on one paho-mqtt connection wrapper.

Topic layout (``docs/mqtt.md``; ``T``, ``F``, ``SC``, ``SD`` are
the mqtt_server tuple's to_indi, from_indi, snoop_control and snoop_data
topics, every payload one complete INDI XML message):

- :class:`MqttInstrumentLink`, the client side of ``inditomqtt`` /
  ``driverstomqtt`` (id ``S``): publishes INDI traffic on ``F/S``; takes client
  traffic from ``T/#`` (or ``T/<id>`` per ``subscribe_list``); a local driver's
  getProperties for a foreign device goes out on ``SC/S``; requests seen on
  ``SC/<other>`` are remembered and matching traffic is also sent to
  ``SD/<other>``; ``SD/S`` brings the data our drivers asked for.  Our own
  snoop requests are repeated on reconnection and whenever a client side asks
  for every property, so instrument sides that started later learn them.  On every
  (re)connection it asks its INDI side for getProperties, so that client
  sides that reconnected meanwhile get every definition again.
- :class:`MqttClientLink`, the INDI side of ``mqtttoredis`` / ``mqtttoport``
  (id ``C``): publishes client traffic on ``T/C``, takes INDI traffic from
  ``F/#`` (or ``F/<id>`` per ``subscribe_list``), and sends getProperties on
  every (re)connection and on first hearing from each instrument side after
  it, so the client side's store is complete again whatever the order in
  which the bridges reconnected.

Delivery: QoS 2, as the original package, so nothing is duplicated or lost
while the broker is up.  Messages are taken from the bridge's bounded channel
only while connected, at most :data:`MAX_IN_FLIGHT` unacknowledged at a time
(back-pressure); those the broker had not acknowledged when the connection
dropped are put back at the head of the channel and sent again, in order,
after reconnecting.  While the broker is unreachable the channel drops its
oldest messages once full and the count is logged on recovery.

Size: one INDI message is one MQTT message, never chunked (chunks would break
interoperability with the original bridges).  MQTT allows 256 MiB per message
and mosquitto accepts that by default (``message_size_limit 0``); a broker
configured lower must be raised to the largest BLOB expected.  A message the
broker cannot take is logged and skipped.

paho-mqtt runs its network loop in its own thread (``loop_start``); its
callbacks hand everything to the asyncio loop with ``call_soon_threadsafe``.
Works with paho-mqtt 1.6 (Debian bookworm) and 2.x.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt

from ..core.channel import Channel
from ..events import Event, host_port, journal_fields
from ..hosts import MQTTServer
from ..protocol.document import parse_document
from ..protocol.messages import Malformed, Message
from ..protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from ..protocol.routing import Snoop
from ..protocol.vocabulary import Tag
from .base import InboundItem, Link, Reset, report_malformed, resume_consuming
from .streams import run_until_first_done

log = logging.getLogger(__name__)

QOS = 2
MAX_IN_FLIGHT = 20
CONNECT_TIMEOUT = 10.0
KEEPALIVE = 30
MAX_MQTT_PAYLOAD = 268_435_455


def _new_paho_client(client_id: str) -> mqtt.Client:
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)  # pragma: no cover - paho-mqtt 1.x


def _code(value: Any) -> int:
    return int(getattr(value, "value", value) or 0)


class MqttConnection:
    """One paho client for one session: connect, subscribe, publish with acknowledgement tracking."""

    def __init__(self, server: MQTTServer, client_id: str, on_message: Callable[[str, bytes], None]) -> None:
        self.server = server
        self.loop = asyncio.get_running_loop()
        self.closed = asyncio.Event()
        self.close_reason = "connection closed"
        self._connack: asyncio.Future[tuple[int, str]] = self.loop.create_future()
        self._in_flight: OrderedDict[int, Message] = OrderedDict()
        self._room = asyncio.Event()
        self._room.set()
        self._on_message = on_message
        client = self.client = _new_paho_client(client_id)
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        if server.username:
            client.username_pw_set(server.username, server.password or None)
        if server.ssl:
            client.tls_set(
                ca_certs=server.ssl_ca_certs or None,
                certfile=server.ssl_certfile or None,
                keyfile=server.ssl_keyfile or None,
                cert_reqs=ssl.CERT_REQUIRED,
            )
        client.on_connect = self._paho_connect
        client.on_disconnect = self._paho_disconnect
        client.on_publish = self._paho_publish
        client.on_message = self._paho_message

    # paho callbacks (paho's thread) -> the event loop
    def _paho_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, *rest: Any) -> None:
        self.loop.call_soon_threadsafe(self._connack_arrived, _code(rc), str(rc))

    def _connack_arrived(self, code: int, text: str) -> None:
        if not self._connack.done():
            self._connack.set_result((code, text))

    def _paho_disconnect(self, client: Any, userdata: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(self.closed.set)

    def _paho_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        self.loop.call_soon_threadsafe(self._acknowledged, mid)

    def _paho_message(self, client: Any, userdata: Any, message: Any) -> None:
        self.loop.call_soon_threadsafe(self._on_message, message.topic, bytes(message.payload))

    def _acknowledged(self, mid: int) -> None:
        self._in_flight.pop(mid, None)
        if len(self._in_flight) < MAX_IN_FLIGHT:
            self._room.set()

    async def connect(self, subscriptions: list[str]) -> None:
        """Connect (TCP, TLS, CONNACK) and subscribe; raise ConnectionError when refused."""
        await self.loop.run_in_executor(
            None, self.client.connect, self.server.host, self.server.port, KEEPALIVE
        )
        self.client.loop_start()
        try:
            code, text = await asyncio.wait_for(asyncio.shield(self._connack), CONNECT_TIMEOUT)
        except TimeoutError:
            raise ConnectionError("no answer from the broker") from None
        if code != 0:
            raise ConnectionError(f"the broker refused the connection: {text.lower()}")
        if subscriptions:
            self.client.subscribe([(topic, QOS) for topic in subscriptions])

    async def publish(self, topic: str, message: Message) -> None:
        """Publish at QoS 2, waiting while too many messages are unacknowledged."""
        while len(self._in_flight) >= MAX_IN_FLIGHT and not self.closed.is_set():
            self._room.clear()
            await asyncio.wait(
                [asyncio.ensure_future(self._room.wait()), asyncio.ensure_future(self.closed.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        if self.closed.is_set():
            raise ConnectionError(self.close_reason)
        if len(message.raw) > MAX_MQTT_PAYLOAD:
            log.error(
                "skipped <%s %s %s>: %d bytes is more than MQTT can carry",
                message.tag,
                message.device,
                message.name,
                len(message.raw),
                extra=journal_fields(
                    Event.MESSAGES_DROPPED, link="mqtt", device=message.device, prop=message.name
                ),
            )
            return
        info = self.client.publish(topic, message.raw, qos=QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
            raise ConnectionError(mqtt.error_string(info.rc).lower())
        if not info.is_published():
            self._in_flight[info.mid] = message

    def unacknowledged(self) -> list[Message]:
        """Messages published but not acknowledged, oldest first."""
        return list(self._in_flight.values())

    async def close(self) -> None:
        self.client.disconnect()
        await self.loop.run_in_executor(None, self.client.loop_stop)


@dataclass
class _Publisher:
    """Moves messages from a channel to the broker; on failure the unacknowledged go back first."""

    channel: Channel[Any]
    topic_for: Callable[[Message], list[str]]

    async def run(self, connection: MqttConnection) -> None:
        try:
            while True:
                batch = await self.channel.get_batch()
                for index, item in enumerate(batch):
                    if not isinstance(item, Message):
                        continue
                    try:
                        for topic in self.topic_for(item):
                            await connection.publish(topic, item)
                    except BaseException:
                        self.channel.push_front([m for m in batch[index:] if isinstance(m, Message)])
                        raise
        finally:
            unacked = connection.unacknowledged()
            if unacked:
                self.channel.push_front(unacked)


class _MqttLink(Link):
    """What both MQTT links share: the session around one :class:`MqttConnection`."""

    what = "MQTT broker"
    link = "mqtt"

    def __init__(
        self, mqtt_id: str, server: MQTTServer, subscribe_list: list[str] | None, max_message_size: int
    ) -> None:
        super().__init__(host_port(server.host, server.port))
        if not mqtt_id or any(c in mqtt_id for c in "/#+"):
            raise ValueError(f"mqtt_id must be a non-empty name without '/', '#' or '+': {mqtt_id!r}")
        self.mqtt_id = mqtt_id
        self.server = server
        self.subscribe_list = list(subscribe_list or [])
        self.max_message_size = max_message_size

    def _parse(self, topic: str, payload: bytes) -> Message | None:
        messages, problems = parse_document(payload, self.max_message_size)
        for problem in problems:
            report_malformed(f"MQTT topic {topic}", problem)
        if len(messages) != 1 or problems:
            if not problems:
                report_malformed(
                    f"MQTT topic {topic}", Malformed("not one complete INDI message", payload[:80])
                )
            return messages[0] if len(messages) == 1 else None
        return messages[0]

    def subscriptions(self) -> list[str]:
        raise NotImplementedError

    async def serve(
        self,
        connection: MqttConnection,
        inbound: Channel[InboundItem],
        outbound: Channel[Message],
        incoming: asyncio.Queue[tuple[str, bytes]],
    ) -> None:
        raise NotImplementedError

    def sending_channel(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> Channel[Any]:
        raise NotImplementedError

    async def session(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> None:
        sending = self.sending_channel(inbound, outbound)
        incoming: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        connection = MqttConnection(self.server, self.mqtt_id, lambda t, p: incoming.put_nowait((t, p)))
        try:
            await connection.connect(self.subscriptions())
            resume_consuming(sending, "the MQTT broker", self.state)
            self.connected(
                f"connected to MQTT broker {self.server.host}:{self.server.port} as {self.mqtt_id}"
            )
            await self.serve(connection, inbound, outbound, incoming)
        finally:
            sending.set_consumer_up(False)
            await connection.close()

    async def _until_closed(self, connection: MqttConnection) -> None:
        await connection.closed.wait()


class MqttInstrumentLink(_MqttLink):
    """Client side of inditomqtt / driverstomqtt (see the module docstring)."""

    def __init__(
        self,
        mqtt_id: str,
        server: MQTTServer,
        subscribe_list: list[str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(mqtt_id, server, subscribe_list, max_message_size)
        self.remote_snoops: dict[str, set[Snoop]] = {}
        self.snoop_requests: dict[tuple[str, str], Message] = {}  # our drivers' requests, to repeat

    def repeat_snoop_requests(self, inbound: Channel[InboundItem]) -> None:
        """Publish our drivers' snoop requests again: instrument sides that connected later missed them."""
        for request in self.snoop_requests.values():
            inbound.put_nowait(request)

    def subscriptions(self) -> list[str]:
        t, sc, sd = self.server.to_indi_topic, self.server.snoop_control_topic, self.server.snoop_data_topic
        clients = [f"{t}/{c}" for c in self.subscribe_list] or [f"{t}/#"]
        return clients + [f"{sc}/#", f"{sd}/{self.mqtt_id}"]

    def sending_channel(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> Channel[Any]:
        return inbound

    def topics_for(self, message: Message) -> list[str]:
        """Where a message from the local INDI side goes."""
        if message.tag == Tag.GET_PROPERTIES:  # a local driver snooping a device it does not have
            self.snoop_requests[(message.device, message.name)] = message
            return [f"{self.server.snoop_control_topic}/{self.mqtt_id}"]
        topics = [f"{self.server.from_indi_topic}/{self.mqtt_id}"]
        for asker, records in self.remote_snoops.items():
            if any(record.matches(message) for record in records):
                topics.append(f"{self.server.snoop_data_topic}/{asker}")
        if (
            message.tag == Tag.DEL_PROPERTY
        ):  # ends the snoop records it matches (a property's, or all the device's)
            for records in self.remote_snoops.values():
                records.difference_update(
                    {
                        r
                        for r in records
                        if r.device == message.device and (not message.name or r.name == message.name)
                    }
                )
        return topics

    async def serve(
        self,
        connection: MqttConnection,
        inbound: Channel[InboundItem],
        outbound: Channel[Message],
        incoming: asyncio.Queue[tuple[str, bytes]],
    ) -> None:
        # client sides that (re)connected while we were away asked for getProperties in vain:
        # have the INDI side define everything again, for every client side
        outbound.push_front([Message.get_properties()])
        self.repeat_snoop_requests(inbound)
        publisher = _Publisher(inbound, self.topics_for)
        await run_until_first_done(
            publisher.run(connection),
            self._receive(incoming, outbound, inbound),
            self._until_closed(connection),
        )

    async def _receive(
        self,
        incoming: asyncio.Queue[tuple[str, bytes]],
        outbound: Channel[Message],
        inbound: Channel[InboundItem],
    ) -> None:
        sc = self.server.snoop_control_topic + "/"
        t = self.server.to_indi_topic + "/"
        while True:
            topic, payload = await incoming.get()
            message = self._parse(topic, payload)
            if message is None:
                continue
            if topic.startswith(sc):
                asker = topic[len(sc) :]
                if asker == self.mqtt_id or message.tag != Tag.GET_PROPERTIES or not message.device:
                    continue
                self.remote_snoops.setdefault(asker, set()).add(Snoop(message.device, message.name))
            elif topic.startswith(t) and message.tag == Tag.GET_PROPERTIES and not message.device:
                # a client side (re)connected or heard of us: the other instrument sides are up by now
                self.repeat_snoop_requests(inbound)
            await outbound.put(message)


class MqttClientLink(_MqttLink):
    """INDI side of mqtttoredis / mqtttoport (see the module docstring)."""

    def __init__(
        self,
        mqtt_id: str,
        server: MQTTServer,
        subscribe_list: list[str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
    ) -> None:
        super().__init__(mqtt_id, server, subscribe_list, max_message_size)

    def subscriptions(self) -> list[str]:
        f = self.server.from_indi_topic
        return [f"{f}/{s}" for s in self.subscribe_list] or [f"{f}/#"]

    def sending_channel(self, inbound: Channel[InboundItem], outbound: Channel[Message]) -> Channel[Any]:
        return outbound

    async def serve(
        self,
        connection: MqttConnection,
        inbound: Channel[InboundItem],
        outbound: Channel[Message],
        incoming: asyncio.Queue[tuple[str, bytes]],
    ) -> None:
        await inbound.put(Reset())  # fresh definitions follow the getProperties below
        outbound.push_front([Message.get_properties()])
        topic = f"{self.server.to_indi_topic}/{self.mqtt_id}"
        publisher = _Publisher(outbound, lambda message: [topic])
        await run_until_first_done(
            publisher.run(connection),
            self._receive(incoming, inbound, outbound),
            self._until_closed(connection),
        )

    async def _receive(
        self,
        incoming: asyncio.Queue[tuple[str, bytes]],
        inbound: Channel[InboundItem],
        outbound: Channel[Message],
    ) -> None:
        heard_from: set[str] = set()
        while True:
            topic, payload = await incoming.get()
            instrument = topic.rsplit("/", 1)[-1]
            if instrument not in heard_from:
                # an instrument side that (re)connected at the same moment as we did may have missed our
                # getProperties, and we its definitions: ask again, once per instrument and connection
                heard_from.add(instrument)
                await outbound.put(Message.get_properties())
            message = self._parse(topic, payload)
            if message is not None:
                await inbound.put(message)
