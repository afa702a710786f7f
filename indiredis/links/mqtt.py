"""The MQTT transport: both MQTT links, on one paho-mqtt connection wrapper.

Sides.  On the broker, as in ``docs/mqtt.md``, an *instrument side* is a bridge publishing the
traffic of its instruments (``inditomqtt``, ``driverstomqtt``) and a *client side* a bridge serving
clients (``mqtttoredis``, ``mqtttoport``).  Every bridge also has two halves (``docs/architecture.md``):
its INDI side, facing the instruments, and its client side, facing the clients.  The MQTT link is the
half that faces the broker, and its class says which half it is: an instrument side's MQTT link
faces the client sides, so it is its bridge's client side, :class:`MqttClientSideLink`; a client
side's MQTT link faces the instrument sides, so it is its bridge's INDI side,
:class:`MqttIndiSideLink`.  Below, "an instrument side" and "a client side" are always bridges on
the broker (this one or others); the other half of a link's own bridge is "the local INDI side"
(indiserver or the driver pool, behind a :class:`MqttClientSideLink`) or "the local client side"
(the Redis store or the TCP port, behind a :class:`MqttIndiSideLink`).  What both links receive is
unpacked and checked by their :class:`~indiredis.links.mqttreceiver.PayloadReceiver`.

Topic layout (``docs/mqtt.md``; ``T``, ``F``, ``SC``, ``SD`` are the
mqtt_server tuple's to_indi, from_indi, snoop_control and snoop_data topics):

- :class:`MqttClientSideLink`, the MQTT link of an instrument side (``inditomqtt`` /
  ``driverstomqtt``, id ``S``): publishes INDI traffic on ``F/S``; takes client
  traffic from ``T/#`` (or ``T/<id>`` per ``subscribe_list``); a local driver's
  getProperties for a foreign device goes out on ``SC/S``; requests seen on
  ``SC/<other>`` are remembered and matching traffic is also sent to
  ``SD/<other>``; ``SD/S`` brings the data our drivers asked for.  Our own
  snoop requests are repeated on reconnection, whenever a client side asks
  for every property, and when a gap shows on ``SD/S``, so instrument sides that started later learn
  them.  On every (re)connection it asks the local INDI side for getProperties, so that client
  sides that reconnected meanwhile get every definition again, announces itself with a heartbeat
  on ``F/S`` and publishes what the local INDI side sends once a client side is heard
  (:data:`RECEIVERS_WAIT` at most).  Each client
  side's ``enableBLOB`` (heard on ``T/<its id>``) sets its own BLOB policy; the local
  INDI side is asked for the union (``Also`` wherever one of them wants BLOBs),
  again whenever it reconnects or defines such a BLOB property
  anew, and BLOB data is published on ``F/S`` only while one of them wants it
  (:class:`~indiredis.protocol.routing.ClientBlobPolicies`).
- :class:`MqttIndiSideLink`, the MQTT link of a client side (``mqtttoredis`` / ``mqtttoport``,
  id ``C``): publishes client traffic on ``T/C``, takes INDI traffic from
  ``F/#`` (or ``F/<id>`` per ``subscribe_list``), and sends getProperties on
  every (re)connection, on first hearing from each instrument side after
  it (or from a restarted one), and when messages of an instrument side went missing, so the
  local client side's store is complete again whatever the order in which the bridges reconnected.

Payloads (:mod:`indiredis.protocol.mqttframing`, ``docs/mqtt-framing.md``): with ``batching`` (the
default) the messages waiting in the channel when the publisher takes its next
batch share payloads, each numbered per publisher session and topic; a lone
message still goes out at once, a stream's messages are gathered for at most
:data:`GATHER_SECONDS`, and a burst needs a hundredfold fewer MQTT messages, so
a stock broker's queue of 1 000 messages per subscriber holds about 100 000
INDI messages.  Receivers track every publisher's numbers (:mod:`~indiredis.links.mqttreceiver`): a gap
is logged once with its count, and a client side that sees one asks for every property
again; a payload resent after a reconnection is not delivered twice.  Without
``batching`` every payload is one INDI message, exactly as the original 0.1.4
bridges send them (for original receivers on the same broker); receivers
always accept that form.

Delivery: QoS 2, as the original package.  Payloads are built from the
bridge's bounded channel only while connected, at most :data:`MAX_IN_FLIGHT`
unacknowledged at a time (back-pressure); those the broker had not
acknowledged when the connection dropped are sent again first, in order and
with their numbers, after reconnecting; what is packed and unacknowledged is
bounded in bytes by :attr:`_MqttLink.send_budget`.  While the broker is
unreachable the channel drops its oldest BLOBs beyond its byte bound, and its
oldest messages once full; the count is logged on recovery, and that many
sequence numbers are left unused (:meth:`_MqttLink.count_as_gap`), so the
receivers see the drop as a gap and resynchronise.  Received payloads wait for
the event loop in a buffer of at most :data:`MAX_BACKLOG_BYTES` (one larger
payload is always let through); beyond it paho's network thread waits, so the
broker holds the rest.

Size: BLOBs travel one per MQTT message, never chunked.  MQTT allows 256 MiB
per message and mosquitto accepts that by default (``message_size_limit 0``);
a broker configured lower must be raised to the largest BLOB expected.  A
message the broker cannot take is logged and skipped.

Ids: the ``mqtt_id`` is both the MQTT client id and the last level of the
topics a bridge publishes on.  A broker drops a client when another connects with
its client id, saying nothing under MQTT 3.1.1: the link sees a connection
closed right after it was made, which :class:`~indiredis.links.base.Link`
reports once, naming that likely cause (``flap_cause``); while it
flaps, a client side does not clear its store on each reconnection.

Hostile publishers (``docs/mqtt-framing.md``): the sequence tracker holds back
implausible numbers and keeps live sessions; an instrument side's snoop
records (:data:`SNOOP_ASKERS_KEPT`, :data:`SNOOPS_PER_ASKER`,
:data:`SNOOP_EXPIRY_SECONDS`) and a client side's instrument sides heard
from (:data:`HEARD_FROM_KEPT`) are bounded; the broker's ACL is the real
defence.

paho-mqtt runs its network loop in its own thread (``loop_start``); its
callbacks hand everything to the asyncio loop with ``call_soon_threadsafe``.
Works with paho-mqtt 1.6 (Debian bookworm) and 2.x.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import ssl
import threading
from abc import abstractmethod
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable
from typing import Any

import paho.mqtt.client as mqtt

from ..core.channel import Channel
from ..core.sides import FromIndiItem, Reset
from ..core.tasks import run_until_first_done
from ..errors import InvalidValue, LinkLost
from ..events import Event, host_port, journal_fields
from ..hosts import MQTTServer
from ..protocol.messages import BlobSinks, DefBLOBVector, DelProperty, EnableBLOB, GetProperties, Message
from ..protocol.mqttframing import (
    DEFAULT_MAX_FRAME_BYTES,
    SEQUENCE_WINDOW,
    Frame,
    FrameHeader,
    Framer,
    encode_header,
)
from ..protocol.parser import DEFAULT_MAX_MESSAGE_SIZE
from ..protocol.routing import BlobRequest, ClientBlobPolicies, Snoop
from .base import Link, resume_consuming
from .loglimit import LogLimiter
from .mqttreceiver import SUSPECT_LOG_SECONDS, PayloadReceiver

log = logging.getLogger(__name__)

QOS = 2
MAX_IN_FLIGHT = 20
CONNECT_TIMEOUT = 10.0
KEEPALIVE = 30
#: messages taken from the channel at a time, to be packed into payloads
BATCH_LIMIT = 2000
#: a stream's messages are gathered this long after the last payload (a message after a quiet spell
#: goes at once): a site streaming 100 messages/s sends 20 MQTT messages/s, not 100, which is what lets
#: one subscriber serve many sites
GATHER_SECONDS = 0.05
#: an idle publisher sends each of its sequences' next number this often (a loss at the end of a
#: stream then shows within this time)
HEARTBEAT_SECONDS = 5.0
#: received payloads waiting for the event loop, in bytes, before paho's thread waits
MAX_BACKLOG_BYTES = 8 * 1024 * 1024
#: numbers skipped at most for messages dropped while the broker was away (within SEQUENCE_WINDOW)
MAX_GAP_SKIP = SEQUENCE_WINDOW // 2
#: why a connection ended, unless paho says more
CONNECTION_CLOSED = "connection closed"
#: seconds an instrument side holds back what it publishes after (re)connecting, unless a client side
#: is heard sooner (client sides that reconnected after a broker restart have subscribed again by then)
RECEIVERS_WAIT = 3.0
#: seconds between two getProperties a client side sends to repair its store
RESYNC_HOLDOFF = 1.0
#: instrument sides that ask for snooped data remembered at most (the least recently asking goes first)
SNOOP_ASKERS_KEPT = 64
#: snoop records (device, property) per asker at most (more requests are refused and logged)
SNOOPS_PER_ASKER = 256
#: an asker's snoop records end this long after its last request: instrument sides of this package
#: repeat their requests every SNOOP_RENEW_SECONDS
SNOOP_EXPIRY_SECONDS = 24 * 3600.0
SNOOP_RENEW_SECONDS = 3600.0
#: topics a client side remembers having heard from on one connection (for its first-heard resync)
HEARD_FROM_KEPT = 1024
#: bytes a publisher may hold in payloads packed but not yet acknowledged (its share of the bridge's
#: memory budget; set per bridge as :attr:`_MqttLink.send_budget`)
DEFAULT_SEND_BUDGET = 64 * 1024 * 1024


def _new_paho_client(client_id: str) -> mqtt.Client:
    if hasattr(mqtt, "CallbackAPIVersion"):  # paho-mqtt 2.x
        return mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=True)
    return mqtt.Client(client_id=client_id, clean_session=True)  # pragma: no cover - paho-mqtt 1.x


def _code(value: Any) -> int:
    return int(getattr(value, "value", value) or 0)


class MqttConnection:
    """One paho client for one session: connect, subscribe, publish with acknowledgement tracking,
    and a bounded buffer of received payloads (:meth:`receive`, :meth:`release`)."""

    def __init__(self, server: MQTTServer, client_id: str) -> None:
        self.server = server
        self.client_id = client_id
        self.loop = asyncio.get_running_loop()
        self.closed = asyncio.Event()
        self.close_reason = CONNECTION_CLOSED
        self._connack: asyncio.Future[tuple[int, str]] = self.loop.create_future()
        self._in_flight: OrderedDict[int, Frame] = OrderedDict()
        self._in_flight_bytes = 0
        #: bytes of payloads unacknowledged at most (one payload always goes, however large)
        self.max_in_flight_bytes = 0
        self._room = asyncio.Event()
        self._room.set()
        self._incoming: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._backlog = 0
        self._backlog_changed = threading.Condition()
        self._closing = False
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
        client.on_subscribe = self._paho_subscribe
        self._subscribing: dict[int, list[str]] = {}  # mid -> topic filters asked for

    # paho callbacks (paho's thread) -> the event loop
    def _to_loop(self, callback: Callable[..., object], *args: Any) -> None:
        """Run ``callback`` on the event loop; nothing once the loop is closed (the bridge stopped while
        paho's thread was still finishing)."""
        try:
            self.loop.call_soon_threadsafe(callback, *args)
        except RuntimeError:
            if not self.loop.is_closed():
                raise

    def _paho_connect(self, client: Any, userdata: Any, flags: Any, rc: Any, *rest: Any) -> None:
        self._to_loop(self._connack_arrived, _code(rc), str(rc))

    def _connack_arrived(self, code: int, text: str) -> None:
        if not self._connack.done():
            self._connack.set_result((code, text))

    def _paho_disconnect(self, client: Any, userdata: Any, *args: Any) -> None:
        # paho 2.x: (flags, reason code, properties); 1.x: (rc); 0 is our own disconnect.  Under MQTT
        # 3.1.1 the broker says nothing when it drops us (another client took our id over, mostly)
        codes = [a for a in args if type(a).__name__ in ("ReasonCode", "int")]
        if codes and _code(codes[0]) != 0 and not self._closing:
            self.close_reason = "the broker closed the connection"
        self._to_loop(self.closed.set)

    def _paho_publish(self, client: Any, userdata: Any, mid: int, *rest: Any) -> None:
        self._to_loop(self._acknowledged, mid)

    def _paho_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, *rest: Any) -> None:
        # paho 2.x: reason codes, 1.x: granted QoS; 128 (0x80) and above is a refusal
        self._to_loop(self._subscribed, mid, [_code(c) for c in codes])

    def _subscribed(self, mid: int, codes: list[int]) -> None:
        topics = self._subscribing.pop(mid, [])
        refused = [topic for topic, code in zip(topics, codes, strict=False) if code >= 0x80]
        if refused:
            log.error(
                "the MQTT broker refused the subscription to %s for %s (its ACL?): nothing arrives there",
                ", ".join(refused),
                self.client_id,
            )

    def _paho_message(self, client: Any, userdata: Any, message: Any) -> None:
        payload = message.payload
        if not isinstance(payload, bytes):  # pragma: no cover - paho gives bytes
            payload = bytes(payload)
        with self._backlog_changed:
            # the broker keeps what does not fit here (its queue, then a gap the receivers see)
            while self._backlog and self._backlog + len(payload) > MAX_BACKLOG_BYTES and not self._closing:
                self._backlog_changed.wait()
            self._backlog += len(payload)
        self._to_loop(self._incoming.put_nowait, (message.topic, payload))

    def _acknowledged(self, mid: int) -> None:
        frame = self._in_flight.pop(mid, None)
        if frame is not None:
            self._in_flight_bytes -= len(frame.payload)
        if len(self._in_flight) < MAX_IN_FLIGHT:
            self._room.set()

    def _no_room_for(self, size: int) -> bool:
        if len(self._in_flight) >= MAX_IN_FLIGHT:
            return True
        limit = self.max_in_flight_bytes
        return bool(limit and self._in_flight and self._in_flight_bytes + size > limit)

    async def connect(self, subscriptions: list[str]) -> None:
        """Connect (TCP, TLS, CONNACK) and subscribe; raise LinkLost when refused."""
        await self.loop.run_in_executor(
            None, self.client.connect, self.server.host, self.server.port, KEEPALIVE
        )
        self.client.loop_start()
        try:
            code, text = await asyncio.wait_for(asyncio.shield(self._connack), CONNECT_TIMEOUT)
        except TimeoutError:
            raise LinkLost("no answer from the broker") from None
        if code != 0:
            raise LinkLost(f"the broker refused the connection: {text.lower()}")
        if subscriptions:
            _, mid = self.client.subscribe([(topic, QOS) for topic in subscriptions])
            if mid is not None:  # the answer is handled on this loop, after this
                self._subscribing[mid] = list(subscriptions)

    async def receive(self) -> tuple[str, bytes]:
        """The next received payload and its topic; :meth:`release` it once handled."""
        return await self._incoming.get()

    def release(self, payload: bytes) -> None:
        """``payload`` (from :meth:`receive`) is handled: make room for the next ones."""
        with self._backlog_changed:
            self._backlog -= len(payload)
            self._backlog_changed.notify_all()

    async def publish(self, frame: Frame) -> None:
        """Publish at QoS 2, waiting while too many payloads (or bytes) are unacknowledged."""
        while self._no_room_for(len(frame.payload)) and not self.closed.is_set():
            self._room.clear()
            await asyncio.wait(
                [asyncio.ensure_future(self._room.wait()), asyncio.ensure_future(self.closed.wait())],
                return_when=asyncio.FIRST_COMPLETED,
            )
        if self.closed.is_set():
            raise LinkLost(self.close_reason)
        info = self.client.publish(frame.topic, frame.payload, qos=QOS)
        if info.rc != mqtt.MQTT_ERR_SUCCESS and info.rc != mqtt.MQTT_ERR_QUEUE_SIZE:
            raise LinkLost(mqtt.error_string(info.rc).lower())
        if not info.is_published():
            self._in_flight[info.mid] = frame
            self._in_flight_bytes += len(frame.payload)

    def unacknowledged(self) -> list[Frame]:
        """Payloads published but not acknowledged, oldest first."""
        return list(self._in_flight.values())

    async def close(self) -> None:
        """Disconnect and stop paho's thread (waking it if it waits for room)."""
        with self._backlog_changed:
            self._closing = True
            self._backlog_changed.notify_all()
        self.client.disconnect()
        await self.loop.run_in_executor(None, self.client.loop_stop)
        # paho keeps its socket and the socket pair that wakes its thread until the client is
        # collected (a reference cycle: two descriptors more after each reconnection until a GC)
        reset_sockets = getattr(self.client, "_reset_sockets", None)
        if reset_sockets is not None:
            reset_sockets()


async def _forever() -> None:
    await asyncio.Event().wait()


def _describe(message: Message) -> str:
    return f"<{message.tag} {message.device} {message.name}>"


class _MqttLink(Link):
    """What both MQTT links share: the session around one :class:`MqttConnection` and packing what
    the link sends into payloads; what it receives goes to its :class:`PayloadReceiver`."""

    what = "MQTT broker"
    link = "mqtt"

    def __init__(
        self,
        mqtt_id: str,
        server: MQTTServer,
        subscribe_list: list[str] | None,
        max_message_size: int,
        *,
        batching: bool = True,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        blobs: BlobSinks | None = None,
    ) -> None:
        """``blobs``: where the data of received BLOBs streams to (None: BLOBs stay in their messages, to
        be forwarded)."""
        super().__init__(host_port(server.host, server.port))
        if not mqtt_id or any(c in mqtt_id for c in "/#+"):
            raise InvalidValue(f"mqtt_id must be a non-empty name without '/', '#' or '+': {mqtt_id!r}")
        self.mqtt_id = mqtt_id
        self.server = server
        self.subscribe_list = list(subscribe_list or [])
        self.framer = Framer(batching=batching, max_frame_bytes=max_frame_bytes)
        #: payloads built but not yet acknowledged by the broker: sent first on the next connection
        self.pending: deque[Frame] = deque()
        #: bytes this link may hold in payloads: half for those packed and waiting (:attr:`pending`),
        #: half for those unacknowledged by the broker (its share of the bridge's memory budget)
        self.send_budget = DEFAULT_SEND_BUDGET
        self._last_batch = float("-inf")  # loop time the last batch was taken from the channel
        #: what this link receives, unpacked and checked: the new messages, in order, and the counts
        self.receiver = PayloadReceiver(max_message_size, self.state.fields, blobs)

    # -- sending ---------------------------------------------------------------------------
    @abstractmethod
    def route_outgoing(self, message: Message) -> list[str]:
        """Route a message this link sends: note what it asks or ends (snoop requests, snoop records)
        and return the topics it goes to."""

    def pack(self, batch: Iterable[object]) -> list[Frame]:
        """The payloads for a batch taken from the sending channel (anything but messages is skipped;
        a :class:`Reset`, the local INDI side reconnected, starts a new publisher session)."""
        batch = list(batch)
        if any(isinstance(item, Reset) for item in batch):
            self.framer.new_session()  # receivers see a restarted publisher: what it had may be gone
        routed = [(item, self.route_outgoing(item)) for item in batch if isinstance(item, Message)]
        frames, refused = self.framer.pack(routed)
        for message in refused:
            log.error(
                "skipped %s: %d bytes is more than MQTT can carry",
                _describe(message),
                len(message.raw),
                extra=self.state.fields
                | journal_fields(Event.MESSAGES_DROPPED, device=message.device, prop=message.name),
            )
        return frames

    async def publish_forever(self, connection: MqttConnection, channel: Channel[Any]) -> None:
        """Publish the pending payloads, then whatever the channel holds, packed; on failure the
        unacknowledged payloads go back to the head of :attr:`pending`."""
        loop = asyncio.get_running_loop()
        try:
            while True:
                if not self.pending:
                    # a message after a quiet spell goes out at once; in a stream, what arrives within
                    # GATHER_SECONDS of the last payload waits for it and shares the next one
                    wait = self._last_batch + GATHER_SECONDS - loop.time()
                    if wait > 0 and self.framer.batching and len(channel) < BATCH_LIMIT:
                        await asyncio.sleep(wait)
                    try:
                        # not asyncio.wait_for: on Python 3.11 it returns the batch when it was cancelled
                        # just as the batch came (the connection lost while frames stream), and this
                        # task then ended with a ConnectionError nobody retrieved
                        async with asyncio.timeout(HEARTBEAT_SECONDS):
                            batch = await channel.get_batch(BATCH_LIMIT, self.send_budget // 2)
                    except TimeoutError:  # idle: tell the receivers where each sequence stands
                        self.pending.extend(self.framer.heartbeats())
                        continue
                    self._last_batch = loop.time()
                    self.pending.extend(self.pack(batch))
                while self.pending:
                    await connection.publish(self.pending[0])
                    self.pending.popleft()
        finally:
            self.pending.extendleft(reversed(connection.unacknowledged()))

    @abstractmethod
    def sequence_topic(self) -> str:
        """The topic most of what this link sends goes to (where its dropped messages show as a gap)."""

    def count_as_gap(self, dropped: int) -> None:
        """``dropped`` items never left (dropped while the broker was away): skip as many numbers on
        :meth:`sequence_topic`, so the receivers see a gap and resynchronise.  The skip is capped at
        :data:`MAX_GAP_SKIP`, within the receivers' :data:`SEQUENCE_WINDOW`: a jump beyond would be
        held back as implausible (a gap of any size is enough to trigger the resync)."""
        if dropped and self.framer.batching:
            self.framer.skip(self.sequence_topic(), min(dropped, MAX_GAP_SKIP))

    # -- session ---------------------------------------------------------------------------
    @abstractmethod
    def subscriptions(self) -> list[str]:
        """The topic filters this link subscribes to."""

    @abstractmethod
    async def serve(
        self, connection: MqttConnection, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        """Serve one connection until it is lost (what to ask for and to repeat when it comes up)."""

    @abstractmethod
    def published_channel(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> Channel[Any]:
        """Which of the two channels this link publishes: ``from_indi`` or ``to_indi``."""

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        sending = self.published_channel(from_indi, to_indi)
        connection = MqttConnection(self.server, self.mqtt_id)
        connection.max_in_flight_bytes = self.send_budget // 2
        try:
            await connection.connect(self.subscriptions())
            self.count_as_gap(resume_consuming(sending, "the MQTT broker", self.state))
            self.connected(
                f"connected to MQTT broker {self.server.host}:{self.server.port} as {self.mqtt_id}"
            )
            await self.serve(connection, from_indi, to_indi)
            if connection.close_reason != CONNECTION_CLOSED:  # say why (the broker dropped us)
                raise LinkLost(connection.close_reason)
        finally:
            sending.set_consumer_up(False)
            await connection.close()

    async def _until_closed(self, connection: MqttConnection) -> None:
        await connection.closed.wait()

    def flap_cause(self) -> str:
        """Under MQTT 3.1.1 a broker drops a client without a word when another connects with its
        client id (mosquitto: "Client X already connected, closing old connection")."""
        return f"another client is using MQTT id {self.mqtt_id}"


class MqttClientSideLink(_MqttLink):
    """The MQTT link of an instrument side (inditomqtt, driverstomqtt): its bridge's client side,
    facing the client sides on the broker (see the module docstring)."""

    def __init__(
        self,
        mqtt_id: str,
        server: MQTTServer,
        subscribe_list: list[str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        batching: bool = True,
    ) -> None:
        super().__init__(mqtt_id, server, subscribe_list, max_message_size, batching=batching)
        #: what other instrument sides asked to snoop, by asker (bounded: SNOOP_ASKERS_KEPT askers of
        #: SNOOPS_PER_ASKER records each; an asker's records end SNOOP_EXPIRY_SECONDS after its last request)
        self.remote_snoops: dict[str, set[Snoop]] = {}
        self._asked_at: dict[str, float] = {}  # asker -> loop time of its last request
        self._snoop_log = LogLimiter(
            log, "snoop requests beyond the bounds", self.state.fields, burst=1, window=SUSPECT_LOG_SECONDS
        )
        self.snoop_requests: dict[tuple[str, str], Message] = {}  # our drivers' requests, to repeat
        #: each client side's BLOB policy (by MQTT id), and what the local INDI side is asked for on
        #: their behalf
        self.client_blobs = ClientBlobPolicies()
        self._blob_log = LogLimiter(
            log,
            "client sides' BLOB policies forgotten",
            self.state.fields,
            burst=1,
            window=SUSPECT_LOG_SECONDS,
        )
        self._to_indi: Channel[Message] | None = None  # to the local INDI side, while serving
        self._heard_client_side = asyncio.Event()  # this connection received a client side's request
        self.receivers_wait = RECEIVERS_WAIT

    def remember_snoop(self, asker: str, snoop: Snoop, now: float | None = None) -> None:
        """Record ``asker``'s request to snoop at ``now`` (loop time by default), within the bounds
        (expired records go first, then the asker that asked least recently); a request beyond an
        asker's bound is refused and logged."""
        now = asyncio.get_running_loop().time() if now is None else now
        for stale in [a for a, t in self._asked_at.items() if now - t >= SNOOP_EXPIRY_SECONDS]:
            self._forget_asker(stale)
        records = self.remote_snoops.get(asker)
        if records is None:
            if len(self.remote_snoops) >= SNOOP_ASKERS_KEPT:
                oldest = min(self.remote_snoops, key=lambda a: self._asked_at.get(a, float("-inf")))
                self._forget_asker(oldest)
                self._log_snoop_bound(
                    f"forgot the snoop requests of {oldest}, the oldest of "
                    f"{SNOOP_ASKERS_KEPT} instrument sides, to make room for {asker}",
                )
            records = self.remote_snoops[asker] = set()
        self._asked_at[asker] = now
        if snoop not in records and len(records) >= SNOOPS_PER_ASKER:
            self._log_snoop_bound(
                f"refused a snoop request of {asker} for {snoop.device}: it has {SNOOPS_PER_ASKER} already",
            )
            return
        records.add(snoop)

    def apply_enable_blob(self, client: str, message: Message) -> list[BlobRequest]:
        """Apply client side ``client``'s ``enableBLOB``; return what the local INDI side is to be asked.  A
        client side forgotten to make room (:data:`~indiredis.protocol.routing.CLIENT_SIDES_KEPT`) is
        logged, rate-limited."""
        requests, evicted = self.client_blobs.update(client, message)
        for forgotten in evicted:
            self._blob_log.warning(
                "forgot the BLOB policy of client side %s, the one that asked least recently of %d, to "
                "make room for %s (many client ids: a stranger on the broker?); it gets BLOBs again once "
                "it sends enableBLOB again",
                forgotten,
                self.client_blobs.kept,
                client,
            )
        return requests

    def _forget_asker(self, asker: str) -> None:
        self.remote_snoops.pop(asker, None)
        self._asked_at.pop(asker, None)

    def _log_snoop_bound(self, text: str) -> None:
        self._snoop_log.warning("%s", text)

    async def _renew_snoop_requests(self, from_indi: Channel[FromIndiItem]) -> None:
        """Repeat our drivers' snoop requests now and then: the records others keep of them expire."""
        while True:
            await asyncio.sleep(SNOOP_RENEW_SECONDS)
            self.repeat_snoop_requests(from_indi)

    def repeat_snoop_requests(self, from_indi: Channel[FromIndiItem]) -> None:
        """Publish our drivers' snoop requests again: instrument sides that connected later missed them."""
        for request in self.snoop_requests.values():
            from_indi.put_nowait(request)

    def subscriptions(self) -> list[str]:
        t, sc, sd = self.server.to_indi_topic, self.server.snoop_control_topic, self.server.snoop_data_topic
        clients = [f"{t}/{c}" for c in self.subscribe_list] or [f"{t}/#"]
        return clients + [f"{sc}/#", f"{sd}/{self.mqtt_id}"]

    def published_channel(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> Channel[Any]:
        return from_indi

    def pack(self, batch: Iterable[object]) -> list[Frame]:
        """As :meth:`_MqttLink.pack`, and the local INDI side is asked again for the BLOBs the client sides
        want when it may have forgotten them: it reconnected (a :class:`Reset`: indiserver starts a new
        connection at ``Never``) or defined a wanted BLOB property anew."""
        batch = list(batch)
        for item in batch:
            if isinstance(item, Reset):
                self._ask_upstream(self.client_blobs.restore())
            elif isinstance(item, DefBLOBVector):
                if self.client_blobs.demand.wants(item.device, item.name):
                    self._ask_upstream(self.client_blobs.restore(item.device))
        return super().pack(batch)

    def _ask_upstream(self, requests: list[BlobRequest]) -> None:
        if self._to_indi is not None:
            for device, name, instruction in requests:
                self._to_indi.put_nowait(Message.enable_blob(device, name, instruction))

    def sequence_topic(self) -> str:
        return f"{self.server.from_indi_topic}/{self.mqtt_id}"

    def route_outgoing(self, message: Message) -> list[str]:
        """Where a message from the local INDI side goes."""
        if isinstance(message, GetProperties):  # a local driver snooping a device it does not have
            self.snoop_requests[(message.device, message.name)] = message
            return [f"{self.server.snoop_control_topic}/{self.mqtt_id}"]
        topics = []
        if self.client_blobs.wanted(message):  # BLOB data that no client side wants (any more) stays here
            topics.append(f"{self.server.from_indi_topic}/{self.mqtt_id}")
        for asker, records in self.remote_snoops.items():
            if any(record.matches(message) for record in records):
                topics.append(f"{self.server.snoop_data_topic}/{asker}")
        if isinstance(message, DelProperty):
            # ends the snoop records it matches (a property's, or all the device's)
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
        self, connection: MqttConnection, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        # client sides that (re)connected while we were away asked for getProperties in vain:
        # have the local INDI side define everything again, for every client side
        self._to_indi = to_indi
        self._heard_client_side.clear()
        to_indi.push_front([Message.get_properties()])
        self.repeat_snoop_requests(from_indi)
        await run_until_first_done(
            self._publish_once_heard(connection, from_indi),
            self._receive(connection, to_indi, from_indi),
            self._until_closed(connection),
            self._renew_snoop_requests(from_indi),
        )

    async def _publish_once_heard(self, connection: MqttConnection, from_indi: Channel[FromIndiItem]) -> None:
        """Publish what the local INDI side sends once a client side is heard on this connection, or after
        :attr:`receivers_wait` seconds (:data:`RECEIVERS_WAIT`).

        After a broker restart (without persistence) the client sides' subscriptions are gone until
        they reconnect; what is published before then is dropped by the broker (frames included,
        which no resync brings back).  A client side asks for getProperties right after it has
        subscribed again, so once it is heard it receives what follows; until then what the local INDI side
        sends waits in the channel (bounded, with back-pressure)."""
        for frame in self.announcement():
            await connection.publish(frame)
        try:
            async with asyncio.timeout(self.receivers_wait):
                await self._heard_client_side.wait()
        except TimeoutError:
            pass  # no client side reconnected: they kept their subscriptions (or none is there)
        await self.publish_forever(connection, from_indi)

    def announcement(self) -> list[Frame]:
        """What this link publishes right after (re)connecting, before the hold: a heartbeat on
        :meth:`sequence_topic` naming the first number not yet published (the first one pending, or the
        next one), so that client sides subscribed before we connected hear of us and answer with
        getProperties (as they do on first hearing an instrument side, or a restarted one), which ends
        the hold at once.  It never makes a false gap: receivers that had the pending payloads see an
        older number, those that missed them a gap of exactly what the broker lost.  None without
        batching (original receivers cannot read a header alone): the hold then lasts
        :attr:`receivers_wait` when the client sides were first."""
        if not self.framer.batching:
            return []
        topic = self.sequence_topic()
        first = next((f.header for f in self.pending if f.topic == topic and f.header is not None), None)
        if first is None:
            first = FrameHeader(self.framer.session, self.framer.numbered(topic) + 1, 0)
        header = FrameHeader(first.session, first.first, 0)
        return [Frame(topic, encode_header(header), header)]

    async def _receive(
        self, connection: MqttConnection, to_indi: Channel[Message], from_indi: Channel[FromIndiItem]
    ) -> None:
        sc = self.server.snoop_control_topic + "/"
        t = self.server.to_indi_topic + "/"
        sd = self.server.snoop_data_topic + "/"

        async def handle(topic: str, message: Message) -> None:
            if topic.startswith(t):
                self._heard_client_side.set()
            if topic.startswith(sc):
                asker = topic[len(sc) :]
                if asker == self.mqtt_id or not isinstance(message, GetProperties) or not message.device:
                    return
                self.remember_snoop(asker, Snoop(message.device, message.name))
            elif topic.startswith(t) and isinstance(message, GetProperties) and not message.device:
                # a client side (re)connected or heard of us: the other instrument sides are up by now
                self.repeat_snoop_requests(from_indi)
            elif topic.startswith(t) and isinstance(message, EnableBLOB):
                # that client side's own choice: the local INDI side is asked for what they want together
                for device, name, instruction in self.apply_enable_blob(topic[len(t) :], message):
                    await to_indi.put(Message.enable_blob(device, name, instruction))
                return
            await to_indi.put(message)

        while True:
            topic, payload = await connection.receive()
            try:
                verdict = await self.receiver.deliver(topic, payload, functools.partial(handle, topic))
            finally:
                connection.release(payload)
            if verdict is not None and verdict.missing:
                if topic.startswith(sd):  # snooped data we asked for: ask again
                    self.receiver.report_gap(topic, verdict, "asking again for the devices our drivers snoop")
                    self.repeat_snoop_requests(from_indi)
                else:
                    self.receiver.report_gap(
                        topic, verdict, "client requests or snoop requests among them are gone"
                    )


class MqttIndiSideLink(_MqttLink):
    """The MQTT link of a client side (mqtttoredis, mqtttoport): its bridge's INDI side, facing the
    instrument sides on the broker (see the module docstring)."""

    def __init__(
        self,
        mqtt_id: str,
        server: MQTTServer,
        subscribe_list: list[str] | None = None,
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        *,
        batching: bool = True,
        reset_on_restart: bool = False,
        blobs: BlobSinks | None = None,
    ) -> None:
        """``reset_on_restart``: put a :class:`Reset` on the from-INDI channel (and ask for every
        property) when an instrument side restarts, so the local client side can drop what vanished
        (mqtttoport does; the Redis store would clear every instrument's keys).  ``blobs``: where the
        data of received ``setBLOBVector`` messages streams to (the store's blob folder), so that a
        BLOB is held once, as the MQTT payload, besides the file being written."""
        super().__init__(mqtt_id, server, subscribe_list, max_message_size, batching=batching, blobs=blobs)
        self.reset_on_restart = reset_on_restart
        self._resync_at = 0.0  # loop time of the last getProperties sent to repair the store
        self._resync_timer: asyncio.TimerHandle | None = None
        self._stable = asyncio.Event()  # set by stayed_up: the connection is up for good

    def subscriptions(self) -> list[str]:
        f = self.server.from_indi_topic
        return [f"{f}/{s}" for s in self.subscribe_list] or [f"{f}/#"]

    def published_channel(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> Channel[Any]:
        return to_indi

    def sequence_topic(self) -> str:
        return f"{self.server.to_indi_topic}/{self.mqtt_id}"

    def route_outgoing(self, message: Message) -> list[str]:
        """Everything the local client side sends goes to ``T/<own id>``."""
        return [f"{self.server.to_indi_topic}/{self.mqtt_id}"]

    def request_resync(self, to_indi: Channel[Message]) -> None:
        """Ask every instrument side for its properties, at most once per :data:`RESYNC_HOLDOFF`
        (requests in between are folded into one sent when it has passed)."""
        loop = asyncio.get_running_loop()
        wait = self._resync_at + RESYNC_HOLDOFF - loop.time()
        if wait <= 0:
            self._send_resync(to_indi)
        elif self._resync_timer is None:
            self._resync_timer = loop.call_later(wait, self._send_resync, to_indi)

    def _send_resync(self, to_indi: Channel[Message]) -> None:
        self._resync_timer = None
        self._resync_at = asyncio.get_running_loop().time()
        # ahead of queued client requests, and never waiting: the receiver must not block on it
        to_indi.push_front([Message.get_properties()])

    def stayed_up(self) -> None:
        super().stayed_up()
        self._stable.set()

    async def serve(
        self, connection: MqttConnection, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        self._stable.clear()
        if self.flapping:
            # reconnecting every few seconds (another client with our id?): keep what the local client side
            # holds rather than clearing it each time; it is cleared once the connection stays up
            self.request_resync(to_indi)
            reset = self._reset_once_stable(from_indi, to_indi)
        else:
            await from_indi.put(Reset())  # fresh definitions follow the getProperties below
            self._send_resync(to_indi)
            reset = _forever()  # nothing put off
        try:
            await run_until_first_done(
                self.publish_forever(connection, to_indi),
                self._receive(connection, from_indi, to_indi),
                self._until_closed(connection),
                reset,
            )
        finally:
            if self._resync_timer is not None:
                self._resync_timer.cancel()
                self._resync_timer = None

    async def _reset_once_stable(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        """The Reset and full resync put off while the link flapped, once the connection stays up."""
        await self._stable.wait()
        await from_indi.put(Reset())
        self._send_resync(to_indi)
        await _forever()  # until the connection ends

    async def _receive(
        self, connection: MqttConnection, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]
    ) -> None:
        heard_from: OrderedDict[str, None] = OrderedDict()  # bounded: topics are anyone's to invent
        while True:
            topic, payload = await connection.receive()
            try:
                verdict = await self.receiver.deliver(topic, payload, from_indi.put)
            finally:
                connection.release(payload)
            restarted = verdict is not None and verdict.restarted and not verdict.reset_held
            if restarted and self.reset_on_restart:
                await from_indi.put(Reset())
                self.request_resync(to_indi)
            if verdict is not None and verdict.missing:
                self.receiver.report_gap(
                    topic, verdict, "asking the instrument sides for every property again"
                )
                self.request_resync(to_indi)
            elif topic not in heard_from or restarted:
                # an instrument side that (re)connected at the same moment as we did, or later (its
                # announcement), may have missed our getProperties, and we its definitions: ask again,
                # once per instrument and connection, and once per restart of it (it holds back what it
                # publishes until it hears a client side)
                self.request_resync(to_indi)
            heard_from[topic] = None
            heard_from.move_to_end(topic)
            if len(heard_from) > HEARD_FROM_KEPT:
                heard_from.popitem(last=False)
