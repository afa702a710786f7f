"""The port link: a TCP listening port that classic INDI clients (KStars/Ekos, indi_getprop) use.

The client side of ``mqtttoport``: to its clients it behaves as indiserver
does (``docs/port.md``).

- Input: every byte a client sent is read and acted on before its disconnect
  is; a client that half-closes (``shutdown(SHUT_WR)``, as ``indi_setprop``
  does) or closes with unread data (the kernel then resets the connection)
  loses nothing it sent.  Once its input ends the client is closed, as
  indiserver closes it.  A failed write only stops the writing.
- BLOB policy per client (``Never`` by default; ``Also``/``Only`` per device or
  property), applied to what that client receives.  A client's ``enableBLOB``
  is never passed on as such: the upstream is asked for ``Also`` wherever at
  least one client wants BLOBs and back to ``Never`` when the last one leaves
  (:class:`~indiredis.protocol.routing.BlobDemand`).
- After an INDI-side restart: the BLOB requests are asked of the upstream again
  whenever a BLOB property is defined anew, and after a ``Reset`` (an
  instrument side restarted or the broker connection came back: fresh
  definitions follow) the clients get ``delProperty`` for every property that
  was not defined again within :data:`RESYNC_QUIET` seconds of quiet.
- BLOBs go out in indiserver's layout, base64 on one line
  (:func:`~indiredis.protocol.clientlayout.indiserver_layout`), made once per
  message whatever the number of clients.
- Bounded, as indiserver's ``maxqsiz``: a client that reads too slowly to keep up
  (more than its share of the bridge's memory budget, ``client_budget`` bytes,
  or :data:`CLIENT_BUFFER` messages behind the batch being written to it) is disconnected with one log line
  naming it and how far behind it was, so it never stalls the others; what it
  sends is parsed in messages of at most ``client_budget`` bytes too.
- At most ``max_clients`` connections: one beyond is refused (closed at once) and
  logged.  Running out of file descriptors in ``accept`` pauses accepting for
  :data:`ACCEPT_PAUSE` seconds (logged); the clients connected are untouched.
- Warnings about bad input are rate-limited per client (:mod:`indiredis.links.loglimit`).
"""

from __future__ import annotations

import asyncio
import collections
import errno
import logging
import socket
from collections.abc import Iterable

from ...core.channel import Channel
from ...core.sides import FromIndiItem, Reset
from ...core.tasks import cancel_and_wait, run_until_first_done
from ...events import Event, host_port, journal_fields
from ...protocol.clientlayout import Piece, indiserver_layout
from ...protocol.messages import DefBLOBVector, Definition, DelProperty, EnableBLOB, Malformed, Message
from ...protocol.parser import DEFAULT_MAX_MESSAGE_SIZE, IndiStreamParser
from ...protocol.routing import BlobDemand, BlobPolicy, BlobRequest
from ...protocol.xmlout import indi_timestamp
from ..base import Link
from ..loglimit import LogLimiter
from ..streams import READ_SIZE

log = logging.getLogger(__name__)

CLIENT_BUFFER = 10_000
#: bytes a client may fall behind when no budget is given (indiserver's default maxqsiz is 128 MB)
DEFAULT_CLIENT_BUDGET = 128 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 100
ACCEPT_PAUSE = 0.5  # seconds without accepting after accept ran out of file descriptors (or memory)
#: accept errors that say the process (not the listener) is short of something: wait and try again
_SHORTAGE = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM})
MIB = 1024 * 1024
RESYNC_QUIET = 3.0  # seconds without definitions after which a resync is complete
RESYNC_LIMIT = 60.0  # ... or after this long in any case
COALESCE = 256 * 1024  # small messages are written together up to this many bytes


class PortClient:
    """One connected INDI client: its BLOB policy and its queue of messages to write, bounded in
    messages and in bytes.

    The bound counts what waits behind the batch being written: a client that reads keeps up as long
    as one batch is written before its share has queued up behind it, however large a single frame is
    (with 50 MB frames, two of them exceed a 128 MiB share while one is still on its way).  A client
    that stops reading falls behind by its share beyond the batch it stopped in, and is cut off."""

    def __init__(self, peer: str, budget: int = DEFAULT_CLIENT_BUDGET) -> None:
        self.peer = peer
        self.budget = budget
        self.blobs = BlobPolicy()
        self.queue: collections.deque[list[Piece]] = collections.deque()
        self.queued_bytes = 0  # waiting behind the batch being written
        self.queued_messages = 0
        self.writing = (0, 0)  # bytes and messages of the batch being written
        self.ready = asyncio.Event()  # set while the queue holds something
        self.too_slow = asyncio.Event()
        self.behind = (0, 0)  # bytes and messages behind (being written included) when found too slow
        self.writable = True  # False once a write failed: the client is gone, what it sent is still read
        self.bad_input = LogLimiter(log, f"INDI client {peer}", journal_fields(link="port", peer=peer))

    def wants(self, message: Message) -> bool:
        """Whether ``message`` goes to this client (its BLOB policy, and whether it can still be written)."""
        return self.writable and not self.too_slow.is_set() and self.blobs.passes(message)

    def offer(self, pieces: list[Piece]) -> None:
        """Queue a message's bytes; a client that would fall further behind than its bounds (one
        message always passes) is marked too slow, and nothing more is queued for it."""
        size = held_bytes(pieces)
        if self.queued_messages and (
            self.queued_messages >= CLIENT_BUFFER or self.queued_bytes + size > self.budget
        ):
            writing_bytes, writing_messages = self.writing
            self.behind = (
                writing_bytes + self.queued_bytes + size,
                writing_messages + self.queued_messages + 1,
            )
            self.too_slow.set()
            return
        self.queue.append(pieces)
        self.queued_bytes += size
        self.queued_messages += 1
        self.ready.set()

    def take(self) -> list[list[Piece]]:
        """Everything queued, to be written (counted as being written until :meth:`written`)."""
        batch = list(self.queue)
        self.queue.clear()
        self.ready.clear()
        writing_bytes, writing_messages = self.writing
        self.writing = (writing_bytes + self.queued_bytes, writing_messages + self.queued_messages)
        self.queued_bytes = self.queued_messages = 0
        return batch

    def written(self, batch: list[list[Piece]]) -> None:
        """``batch`` (from :meth:`take`) is written, or will never be."""
        writing_bytes, writing_messages = self.writing
        self.writing = (
            writing_bytes - sum(held_bytes(pieces) for pieces in batch),
            writing_messages - len(batch),
        )


def held_bytes(pieces: list[Piece]) -> int:
    """The memory a message's pieces keep alive: each underlying buffer once, whole (a view keeps all
    of what it looks into)."""
    buffers = {id(base): len(base) for piece in pieces for base in [_base(piece)]}
    return sum(buffers.values())


def _base(piece: Piece) -> bytes | bytearray | memoryview:
    base = piece.obj if isinstance(piece, memoryview) else piece
    return base if isinstance(base, (bytes, bytearray, memoryview)) else piece


class Catalogue:
    """The properties the clients were given definitions of, and the resync after a ``Reset``."""

    def __init__(self) -> None:
        self.defined: dict[str, set[str]] = {}  # device -> property names
        self.unconfirmed: dict[str, set[str]] = {}  # during a resync: not defined again yet

    def note(self, message: Message) -> None:
        """Follow definitions and deletions."""
        if isinstance(message, Definition):
            self.defined.setdefault(message.device, set()).add(message.name)
            self.unconfirmed.get(message.device, set()).discard(message.name)
        elif isinstance(message, DelProperty):
            if message.name:
                self.defined.get(message.device, set()).discard(message.name)
                self.unconfirmed.get(message.device, set()).discard(message.name)
            else:
                self.defined.pop(message.device, None)
                self.unconfirmed.pop(message.device, None)

    def start_resync(self) -> None:
        """Fresh definitions follow: each property must be defined again."""
        self.unconfirmed = {device: set(names) for device, names in self.defined.items() if names}

    def finish_resync(self) -> list[tuple[str, str]]:
        """End the resync; return (device, property) of what was not defined again, forgotten now."""
        vanished = sorted((device, name) for device, names in self.unconfirmed.items() for name in names)
        self.unconfirmed.clear()
        for device, name in vanished:
            self.defined.get(device, set()).discard(name)
        return vanished


class PortLink(Link):
    """Serves INDI clients on ``host:port`` (see the module docstring)."""

    what = "INDI port"
    link = "port"

    def __init__(
        self,
        port: int = 7624,
        host: str = "localhost",
        max_message_size: int = DEFAULT_MAX_MESSAGE_SIZE,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        client_budget: int = DEFAULT_CLIENT_BUDGET,
    ) -> None:
        """``max_clients``: connections served at once; ``client_budget``: bytes a client may fall
        behind (and the largest message it may send)."""
        super().__init__(host_port(host, port))
        self.host, self.port = host, port
        self.max_message_size = max_message_size
        self.max_clients = max_clients
        self.client_budget = client_budget
        self.clients: set[PortClient] = set()
        self._refusals = LogLimiter(log, "INDI clients refused", journal_fields(link="port"))
        self._shortages = LogLimiter(log, "accept failures", journal_fields(link="port"))
        self.demand = BlobDemand()
        self.catalogue = Catalogue()
        self._resync_timer: asyncio.TimerHandle | None = None
        self._resync_deadline = 0.0

    @property
    def summary(self) -> str:
        return f"{len(self.clients)} INDI clients"

    async def session(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        listeners = _listen(self.host, self.port)
        serving: set[asyncio.Task[None]] = set()
        try:
            self.connected(f"listening for INDI clients on {self.host}:{self.port}")
            await run_until_first_done(
                self._fan_out(from_indi, to_indi),
                *(self._accept(listener, to_indi, serving) for listener in listeners),
            )
        finally:
            for listener in listeners:
                listener.close()
            await cancel_and_wait(list(serving))
            if self._resync_timer is not None:
                self._resync_timer.cancel()

    # -- clients -----------------------------------------------------------------------------
    async def _accept(
        self, listener: socket.socket, to_indi: Channel[Message], serving: set[asyncio.Task[None]]
    ) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                connection, address = await loop.sock_accept(listener)
            except OSError as exc:
                if exc.errno in _SHORTAGE:  # the clients connected are served on; accept again later
                    self._shortages.warning(
                        "cannot accept INDI clients for now (%d connected): %s; trying again in %g s",
                        len(serving),
                        (exc.strerror or str(exc)).lower(),
                        ACCEPT_PAUSE,
                    )
                    await asyncio.sleep(ACCEPT_PAUSE)
                    continue
                if exc.errno in (errno.EBADF, errno.EINVAL, errno.ENOTSOCK):  # the listener is broken
                    raise
                continue  # that one connection failed (aborted, refused by a firewall rule ...)
            peer = "{}:{}".format(*address[:2])
            if len(serving) >= self.max_clients:
                self._refusals.warning(  # logged before the close the client sees
                    "refused INDI client %s: %d clients connected, the most allowed (max_clients)",
                    peer,
                    len(serving),
                )
                connection.close()
                continue
            connection.setblocking(False)  # noqa: FBT003 - the socket API's own signature
            task = asyncio.ensure_future(self._serve_client(connection, address, to_indi))
            serving.add(task)
            task.add_done_callback(serving.discard)

    async def _serve_client(
        self, connection: socket.socket, address: tuple[str, int], to_indi: Channel[Message]
    ) -> None:
        peer = "{}:{}".format(*address[:2])
        client = PortClient(peer, self.client_budget)
        self.clients.add(client)
        log.info("INDI client %s connected", peer)
        reading = asyncio.ensure_future(self._read_from(client, connection, to_indi))
        writing = asyncio.ensure_future(self._write_to(client, connection))
        too_slow = asyncio.ensure_future(client.too_slow.wait())
        try:
            await asyncio.wait([reading, too_slow], return_when=asyncio.FIRST_COMPLETED)
            if too_slow.done():
                behind, messages = client.behind
                bound = (
                    f"{CLIENT_BUFFER} messages"
                    if messages > CLIENT_BUFFER
                    else f"its share of {client.budget / MIB:.0f} MiB"
                )
                log.warning(
                    "INDI client %s disconnected: it read too slowly and fell %.1f MiB (%d messages) "
                    "behind, more than %s",
                    peer,
                    behind / MIB,
                    messages,
                    bound,
                    extra=journal_fields(Event.MESSAGES_DROPPED, link="port", peer=peer),
                )
            elif reading.exception() is not None:
                log.error("INDI client %s: %s", peer, reading.exception())
        finally:
            await cancel_and_wait([reading, writing, too_slow])
            connection.close()
            self.clients.discard(client)
            client.bad_input.close()
            client.written(client.take())
            if not client.too_slow.is_set():
                log.info("INDI client %s disconnected", peer)
        await self._ask_upstream(to_indi)  # what it wanted of BLOBs is no longer wanted

    async def _read_from(
        self, client: PortClient, connection: socket.socket, to_indi: Channel[Message]
    ) -> None:
        """Read and act on everything the client sends, until its end of the stream.

        Data the kernel received before a connection reset is read before the reset is reported, so
        a client that sent and left without reading loses nothing.
        """
        loop = asyncio.get_running_loop()
        parser = IndiStreamParser(min(self.max_message_size, self.client_budget))
        while True:
            try:
                data = await loop.sock_recv(connection, READ_SIZE)
            except OSError:  # reset: everything it sent before is read by now
                return
            if not data:
                return
            for event in parser.feed(data):
                if isinstance(event, Malformed):
                    client.bad_input.warning("skipped bad input from INDI client %s: %s", client.peer, event)
                elif isinstance(event, EnableBLOB):  # applied here, never passed on as such
                    client.blobs.update(event)
                    await self._ask_upstream(to_indi)
                else:
                    await to_indi.put(event)

    @staticmethod
    async def _write_to(client: PortClient, connection: socket.socket) -> None:
        """Write what is queued for the client; at the first failure stop writing (it left)."""
        loop = asyncio.get_running_loop()
        while True:
            await client.ready.wait()
            batch = client.take()
            try:
                for piece in _coalesced(batch):
                    await loop.sock_sendall(connection, piece)
            except OSError:
                client.writable = False
                client.written(batch)
                client.written(client.take())
                return
            client.written(batch)

    # -- from the INDI side ------------------------------------------------------------------
    async def _fan_out(self, from_indi: Channel[FromIndiItem], to_indi: Channel[Message]) -> None:
        while True:
            for item in await from_indi.get_batch():
                if isinstance(item, Reset):
                    await self._start_resync(to_indi)
                    continue
                self.catalogue.note(item)
                if isinstance(item, Definition) and self.catalogue.unconfirmed:
                    self._arm_resync_timer()
                if isinstance(item, DefBLOBVector) and self.demand.wants(item.device, item.name):
                    # defined anew, perhaps by an upstream that restarted and forgot what it was asked
                    await self._send_requests(to_indi, self.demand.restore(item.device))
                self._to_clients(item)

    def _to_clients(self, message: Message) -> None:
        pieces: list[Piece] | None = None  # made once, for every client that gets the message
        for client in list(self.clients):
            if client.wants(message):
                if pieces is None:
                    pieces = indiserver_layout(message)
                client.offer(pieces)

    async def _start_resync(self, to_indi: Channel[Message]) -> None:
        """The INDI side (re)connected: fresh definitions follow; ask for BLOBs again."""
        self.catalogue.start_resync()
        await self._send_requests(to_indi, self.demand.restore())
        self._resync_deadline = asyncio.get_running_loop().time() + RESYNC_LIMIT
        self._arm_resync_timer()

    def _arm_resync_timer(self) -> None:
        loop = asyncio.get_running_loop()
        if self._resync_timer is not None:
            self._resync_timer.cancel()
        when = min(loop.time() + RESYNC_QUIET, self._resync_deadline)
        self._resync_timer = loop.call_at(when, self._finish_resync)

    def _finish_resync(self) -> None:
        """Tell the clients about every property that was not defined again."""
        self._resync_timer = None
        stamp = indi_timestamp()
        for device, name in self.catalogue.finish_resync():
            self._to_clients(Message.del_property(device, name, timestamp=stamp))

    async def _ask_upstream(self, to_indi: Channel[Message]) -> None:
        """Bring the upstream's BLOB policy to what the connected clients want together."""
        await self._send_requests(to_indi, self.demand.requests([c.blobs for c in self.clients]))

    @staticmethod
    async def _send_requests(to_indi: Channel[Message], requests: list[BlobRequest]) -> None:
        for device, name, instruction in requests:
            await to_indi.put(Message.enable_blob(device, name, instruction))


def _coalesced(batch: list[list[Piece]]) -> Iterable[Piece]:
    """The pieces of queued messages, small ones joined (fewer system calls), large ones as they are."""
    small: list[Piece] = []
    size = 0
    for pieces in batch:
        for piece in pieces:
            if len(piece) >= COALESCE:
                if small:
                    yield b"".join(small)
                    small, size = [], 0
                yield piece
                continue
            small.append(piece)
            size += len(piece)
            if size >= COALESCE:
                yield b"".join(small)
                small, size = [], 0
    if small:
        yield b"".join(small)


def _listen(host: str, port: int) -> list[socket.socket]:
    """Listening sockets on every address ``host`` stands for (as asyncio.start_server binds them)."""
    listeners: list[socket.socket] = []
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    try:
        for family, kind, proto, _, address in dict.fromkeys(infos):
            listener = socket.socket(family, kind, proto)
            listeners.append(listener)
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            listener.bind(address)
            listener.listen(100)
            listener.setblocking(False)  # noqa: FBT003 - the socket API's own signature
    except OSError:
        for listener in listeners:
            listener.close()
        raise
    return listeners
