"""A stand-in indiserver for tests: a real TCP listener on 127.0.0.1 that sends scripted bytes.

Used in addition to the real indiserver, for input no real driver produces
(malformed XML, bursts, hostile names).
"""

from __future__ import annotations

import socket
import threading


class FakeIndiServer:
    """Accepts INDI clients; ``send`` writes to every connected client; ``received`` collects their bytes."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.port = self.listener.getsockname()[1]
        self.clients: list[socket.socket] = []
        self.received = bytearray()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.clients.append(conn)
            threading.Thread(target=self._read, args=(conn,), daemon=True).start()

    def _read(self, conn: socket.socket) -> None:
        while True:
            try:
                data = conn.recv(65536)
            except OSError:
                return
            if not data:
                return
            with self._lock:
                self.received += data
            self.on_data(conn, data)

    def on_data(self, conn: socket.socket, data: bytes) -> None:
        """Called with what a client sent, after it is recorded in ``received`` (a hook for subclasses)."""

    def send(self, data: bytes) -> None:
        with self._lock:
            clients = list(self.clients)
        for conn in clients:
            conn.sendall(data)

    def drop_clients(self) -> None:
        with self._lock:
            clients, self.clients = self.clients, []
        for conn in clients:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # wakes the reader thread and sends FIN
            except OSError:
                pass
            conn.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.drop_clients()

    def __enter__(self) -> FakeIndiServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
