"""The port link on its own (real sockets, no broker): input never lost, BLOB policy, resync."""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from indiredis.core.channel import Channel
from indiredis.core.sides import FromIndiItem, Reset
from indiredis.core.tasks import cancel_and_wait
from indiredis.links.client_side import port as portmodule
from indiredis.links.client_side.port import PortLink
from indiredis.protocol.messages import Message
from indiredis.protocol.parser import IndiStreamParser, parse_message
from tests.support.servers import free_port


def msg(xml: str) -> Message:
    message = parse_message(xml.encode())
    assert isinstance(message, Message)
    return message


def define(device: str, name: str) -> Message:
    return msg(
        f'<defNumberVector device="{device}" name="{name}" perm="rw" state="Idle">'
        '<defNumber name="N" format="%g" min="0" max="1" step="0">0</defNumber></defNumberVector>'
    )


BLOB = msg(
    '<setBLOBVector device="Cam" name="IMG">'
    '<oneBLOB name="I" size="1" format=".f">YQ==</oneBLOB></setBLOBVector>'
)
NUMBER = msg('<setNumberVector device="Cam" name="TEMP"><oneNumber name="T">1</oneNumber></setNumberVector>')


async def eventually(condition: Callable[[], Any], timeout: float = 10, what: str = "condition") -> Any:
    """Wait (on the loop) until ``condition()`` is truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not (result := condition()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
    return result


class Client:
    """A raw client socket on the loop, with what it received parsed."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.messages: list[Message] = []
        self.closed = False
        self._parser = IndiStreamParser()
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, port: int) -> Client:
        sock = socket.socket()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
        return cls(sock)

    async def _read(self) -> None:
        while data := await asyncio.get_running_loop().sock_recv(self.sock, 65536):
            self.messages += [m for m in self._parser.feed(data) if isinstance(m, Message)]
        self.closed = True

    async def send(self, *xml: str) -> None:
        await asyncio.get_running_loop().sock_sendall(self.sock, "".join(xml).encode())

    async def close(self) -> None:
        await cancel_and_wait([self._reader])
        self.sock.close()


def run_port(
    body: Callable[[PortLink, Channel[FromIndiItem], Channel[Message], int], Awaitable[None]],
    to_indi_size: int = 100_000,
) -> None:
    async def main() -> None:
        from_indi: Channel[FromIndiItem] = Channel(100_000)
        to_indi: Channel[Message] = Channel(to_indi_size)
        port = free_port()
        link = PortLink(port, "127.0.0.1")
        task = asyncio.ensure_future(link.run(from_indi, to_indi))
        try:
            await eventually(lambda: link.state.connected, what="the port to listen")
            await body(link, from_indi, to_indi, port)
        finally:
            await cancel_and_wait([task])

    asyncio.run(main())


def taken(to_indi: Channel[Message]) -> list[Message]:
    items = [item for item, _ in to_indi._items]  # noqa: SLF001 - what the port passed on, in order
    to_indi._items.clear()  # noqa: SLF001
    to_indi._bytes = 0  # noqa: SLF001
    return items


def commands(count: int) -> list[str]:
    return [
        f'<newNumberVector device="Cam" name="TEMP"><oneNumber name="T">{i}</oneNumber></newNumberVector>'
        for i in range(count)
    ]


def test_a_half_closed_client_is_served_to_the_end_of_its_input(caplog: pytest.LogCaptureFixture) -> None:
    async def body(
        link: PortLink, from_indi: Channel[FromIndiItem], to_indi: Channel[Message], port: int
    ) -> None:
        client = await Client.connect(port)
        await client.send(*commands(500))
        client.sock.shutdown(socket.SHUT_WR)  # as indi_setprop does
        await eventually(lambda: client.closed, what="the port to close after the client's input ended")
        sent = taken(to_indi)
        assert [m.members[0].text for m in sent] == [str(i) for i in range(500)]
        await client.close()

    caplog.set_level(logging.DEBUG)
    run_port(body)
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("asyncio") or r.exc_info
    ]


def test_a_client_that_resets_with_unread_data_loses_nothing_it_sent(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """indi_setprop's way: send, shut down for writing, close with unread data (the kernel resets the
    connection).  The port is held back (its to_indi channel full) until after the reset: what the
    client sent is read all the same."""

    async def body(
        link: PortLink, from_indi: Channel[FromIndiItem], to_indi: Channel[Message], port: int
    ) -> None:
        loop = asyncio.get_running_loop()
        sock = socket.socket()
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        await eventually(lambda: link.clients, what="the client to be served")
        text = "x" * 60000
        flood = msg(
            f'<setTextVector device="Cam" name="LOG"><oneText name="T">{text}</oneText></setTextVector>'
        )
        for _ in range(300):  # 18 MB the client never reads: more than the socket buffers hold
            from_indi.put_nowait(flood)
        await eventually(lambda: not len(from_indi), what="the port to take the flood")
        for _ in range(to_indi.maxsize):  # hold the port's reading back
            to_indi.put_nowait(NUMBER)
        await loop.sock_sendall(sock, "".join(commands(200)).encode())
        sock.shutdown(socket.SHUT_WR)
        sock.close()  # unread data: a reset
        received: list[Message] = []
        while len(received) < to_indi.maxsize + 200:
            received += await asyncio.wait_for(to_indi.get_batch(), 10)
        assert [m.members[0].text for m in received[to_indi.maxsize :]] == [str(i) for i in range(200)]
        await eventually(lambda: not link.clients, what="the client to be gone")

    caplog.set_level(logging.DEBUG)
    run_port(body, to_indi_size=10)
    assert not [
        r
        for r in caplog.records
        if r.levelno >= logging.WARNING and r.name.startswith("asyncio") or r.exc_info
    ]


def test_blob_policy_is_each_clients_own_and_upstream_asks_for_the_union() -> None:
    async def body(
        link: PortLink, from_indi: Channel[FromIndiItem], to_indi: Channel[Message], port: int
    ) -> None:
        only, other = await Client.connect(port), await Client.connect(port)
        await eventually(lambda: len(link.clients) == 2, what="both clients")
        await only.send('<enableBLOB device="Cam">Only</enableBLOB>')
        asked = await eventually(lambda: taken(to_indi), what="a request upstream")
        assert [(m.tag, m.device, m.name, m.attrs["instruction"]) for m in asked] == [
            ("enableBLOB", "Cam", "", "Also")  # what one client wants, never Only: the other needs the rest
        ]
        from_indi.put_nowait(NUMBER)
        from_indi.put_nowait(BLOB)
        await eventually(lambda: len(other.messages) == 1 and len(only.messages) == 1, what="the traffic")
        assert other.messages[0].tag == "setNumberVector" and only.messages[0].tag == "setBLOBVector"
        await only.close()  # it leaves: back to the default upstream
        asked = await eventually(lambda: taken(to_indi), what="a request upstream")
        assert [(m.device, m.name, m.attrs["instruction"]) for m in asked] == [("Cam", "", "Never")]
        from_indi.put_nowait(BLOB)
        from_indi.put_nowait(NUMBER)
        await eventually(lambda: len(other.messages) == 2, what="the traffic")
        assert [m.tag for m in other.messages] == ["setNumberVector", "setNumberVector"]
        await other.close()

    run_port(body)


def test_after_a_reset_clients_get_delproperty_for_what_vanished_and_blob_requests_are_repeated(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(portmodule, "RESYNC_QUIET", 0.3)

    async def body(
        link: PortLink, from_indi: Channel[FromIndiItem], to_indi: Channel[Message], port: int
    ) -> None:
        client = await Client.connect(port)
        await eventually(lambda: link.clients, what="the client")
        await client.send('<enableBLOB device="Cam" name="IMG">Also</enableBLOB>')
        await eventually(lambda: taken(to_indi), what="the request upstream")
        for device, name in (("Cam", "TEMP"), ("Cam", "COOLER"), ("Mount", "COORD")):
            from_indi.put_nowait(define(device, name))
        await eventually(lambda: len(client.messages) == 3, what="the definitions")
        from_indi.put_nowait(Reset())  # the INDI side reconnected: fresh definitions follow
        asked = await eventually(lambda: taken(to_indi), what="the BLOB request again")
        assert [(m.device, m.name, m.attrs["instruction"]) for m in asked] == [("Cam", "IMG", "Also")]
        from_indi.put_nowait(define("Mount", "COORD"))
        from_indi.put_nowait(define("Cam", "TEMP"))
        from_indi.put_nowait(
            msg(
                '<defBLOBVector device="Cam" name="IMG" perm="ro" state="Idle">'
                '<defBLOB name="I"/></defBLOBVector>'
            )
        )
        deleted = await eventually(
            lambda: [m for m in client.messages if m.tag == "delProperty"],
            what="delProperty for what vanished",
        )
        assert [(m.device, m.name) for m in deleted] == [("Cam", "COOLER")]
        assert [m.tag for m in client.messages[3:6]] == [
            "defNumberVector",
            "defNumberVector",
            "defBLOBVector",
        ]
        asked = taken(to_indi)  # the definition of a BLOB property it asks for: asked again
        assert [(m.device, m.name, m.attrs["instruction"]) for m in asked] == [("Cam", "IMG", "Also")]
        await client.close()

    run_port(body)


def test_a_client_that_reads_keeps_up_with_frames_larger_than_half_its_share() -> None:
    async def body() -> None:
        frame = bytes(67 * 1024 * 1024)  # a 50 MB frame in base64
        reading = portmodule.PortClient("127.0.0.1:1", budget=128 * 1024 * 1024)
        for _ in range(10):  # one frame on its way while the next arrives, as on any real link
            batch = reading.take() if reading.queue else []
            reading.offer([frame])
            reading.written(batch)
        assert not reading.too_slow.is_set()
        stalled = portmodule.PortClient("127.0.0.1:2", budget=128 * 1024 * 1024)
        stalled.offer([frame])
        stalled.take()  # its writer is stuck in this one: the client reads nothing
        stalled.offer([frame])
        assert not stalled.too_slow.is_set()  # one frame waits behind the one being written
        stalled.offer([frame])
        assert stalled.too_slow.is_set()  # two would exceed its share
        assert stalled.behind == (3 * len(frame), 3)  # what it was behind, the frame being written included

    asyncio.run(body())
